"""interactive_eval.py / training_clicks.py with another correction network file and gate:
eval_with.py NET GATE SCRIPT args...  (NET 'packaged' keeps the shipped one; GATE refused|all)"""
import runpy, sys
from pathlib import Path
import medseg.build as b
import medseg.predict.volume as v
net, gate, script = sys.argv[1], sys.argv[2], sys.argv[3]
if net != "packaged":
    b._packaged_correction_net = lambda: b._correction_net(Path(net))
init = v.VolumeSession.__init__
def patched(self, *a, **k):
    init(self, *a, **k); self.net_answers = gate
v.VolumeSession.__init__ = patched
sys.argv = [script] + sys.argv[4:]
sys.path.insert(0, "/work/main/benchmarks")
runpy.run_path(f"/work/main/benchmarks/{script}", run_name="__main__")
