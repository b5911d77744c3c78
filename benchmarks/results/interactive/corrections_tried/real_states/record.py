"""Record the shipped pipeline's real correction states on training structures (none evaluated anywhere)."""
import sys, time, pickle, numpy as np
sys.path.insert(0, "/work/main/benchmarks")
from pathlib import Path
from interactive_eval import load
from medseg.data.loaders import load_labelled
from medseg.evaluate.protocols import cvpr25_click, sammed3d_click
from medseg.predict.volume import VolumeSession
from medseg.predict.correct3d import crop_box

out = Path(sys.argv[1]); clicks_n = int(sys.argv[2])
p = load("litemedsam", None, {}, "auto", Path("/tmp/s55/enc"))
if len(sys.argv) > 3 and sys.argv[3] != "packaged":
    import medseg.build as b
    b._packaged_correction_net = lambda: b._correction_net(Path(sys.argv[3]))
used = set(range(1, 117, 8)) | set(range(3, 117, 8)) | set(range(5, 117, 8))
aal = [v for v in range(2, 117) if v not in used][int(sys.argv[4]) if len(sys.argv) > 4 else 0::2]   # 36 AAL structures never used by any check
CASES = [("spine", "ct_subreg", None), ("dcmqi_liver", "liver", None), ("colin27", "aal", aal)]
states = []
t0 = time.time()
for dataset, case, labels in CASES:
    c = load_labelled(dataset, [case])[0]
    s = VolumeSession(p, progress=False); s.set_volume(c.image, "auto"); s.click_atlas = False
    vol = s._volume().data
    labs = labels or [int(v) for v in np.unique(c.labels)[1:]]
    for li, lab in enumerate(labs):
        truth = c.labels == lab
        if truth.sum() < 30: continue
        for proto in ("cvpr25", "random"):
            s.reset(); rng = np.random.default_rng(lab)
            mask = np.zeros_like(truth); obj = None; clicks = []
            for i in range(clicks_n):
                nxt = cvpr25_click(mask, truth) if proto == "cvpr25" else sammed3d_click(None if obj is None else mask, truth, rng)
                if nxt is None: break
                (x, y, z), pos = nxt
                if obj is None:
                    obj = s.add_point(x, y, z, positive=True, new_object=True); clicks.append((z, y, x, True))
                else:
                    cl = clicks + [(z, y, x, pos)]
                    box = crop_box(mask, cl, truth.shape)
                    states.append({"src": f"{dataset}/{case}/{lab}/{proto}", "step": i, "image": np.asarray(vol[box]).astype(np.uint8),
                                   "mask": mask[box].copy(), "truth": truth[box].copy(),
                                   "clicks": [(a - box[0].start, b - box[1].start, d - box[2].start, q) for a, b, d, q in cl],
                                   "dice_before": float(2 * (mask & truth).sum() / (mask.sum() + truth.sum()))})
                    s.add_point(x, y, z, positive=pos, obj=obj); clicks = cl
                    new = s.object_mask(obj).astype(bool)
                    states[-1]["after"] = new[box].copy()
                    states[-1]["outside_changed"] = bool((new != mask).sum() != (new[box] != mask[box]).sum())
                mask = s.object_mask(obj).astype(bool)
            d = 2 * (mask & truth).sum() / (mask.sum() + truth.sum())
            print(f"{dataset}/{case}/{lab} {proto} final {d:.3f} states {len(states)} {time.time() - t0:.0f}s", flush=True)
        pickle.dump(states, open(out, "wb"))
pickle.dump(states, open(out, "wb"))
