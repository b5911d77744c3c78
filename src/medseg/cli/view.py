"""`medseg view SCAN`: a browser page (NiiVue) to segment a scan by clicks and boxes, on this machine."""

from __future__ import annotations

import argparse

NAME = "view"
HELP = "Open a scan in the browser and segment it by clicks and boxes (local server on 127.0.0.1)."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scan", help="a volume (.nii.gz, .nrrd, .mha, ...) or a DICOM series folder")
    p.add_argument("--port", type=int, default=1527, help="port on 127.0.0.1 (default 1527)")
    p.add_argument("--no-browser", action="store_true", help="print the address instead of opening a browser")
    p.add_argument("--model", default=None, help="model name or fine-tuned model.pt (default: the model for "
                   "clicks, see `medseg info`)")
    p.add_argument("--engine", default="auto", help="auto, eager, onnx, openvino or native (default auto)")
    p.add_argument("--planes", type=int, default=1, choices=(1, 3),
                   help="3: on a near-isotropic volume each new object is segmented along all three axes and the "
                        "voxels two of them hold are kept, corrections too; about 3x the time (docs/3d.md)")
    p.add_argument("--no-refine", action="store_true",
                   help="new 3D objects (a lone click's, a 3D box's, a propagated 2D box's) keep the model's border, "
                        "not drawn again by the scan's edges (docs/3d.md)")
    p.add_argument("--no-correction-net", action="store_true",
                   help="a negative click the correction rules refuse is answered by their intensity fallback, not "
                        "by medseg's 3D correction network (docs/interactive.md)")


def run(args: argparse.Namespace) -> int:
    import sys
    import threading
    import time
    import webbrowser

    from medseg.io import read_image
    from medseg.serve import niivue
    from medseg.serve.limits import Limits
    from medseg.serve.run import Background, build, check_port
    from medseg.validate import number

    number(args.port, "--port", integer=True, minimum=1, maximum=65535, example=1527)
    check_port("127.0.0.1", args.port)
    scan = read_image(args.scan)
    if niivue.load() is None:
        print(f"medseg: warning: {niivue.MISSING}")
    app, _ = build(Limits(), None, args.model, args.engine, viewer_scan=scan, planes=args.planes,
                   refine=not args.no_refine,
                   correction_net=not args.no_correction_net)
    server = Background(app, "127.0.0.1", args.port).start()
    print(f"medseg view: {server.url}  (Ctrl-C to stop)", flush=True)
    if not args.no_browser:
        webbrowser.open(server.url)
    try:
        while True:
            time.sleep(3600)
    finally:
        server.stop()
        if any(t.name == "medseg-atlas" and t.is_alive() for t in threading.enumerate()):
            print("medseg view: stopping when the atlas registration ends (at most about 20 s)", file=sys.stderr,
                  flush=True)
