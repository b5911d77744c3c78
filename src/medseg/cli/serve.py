"""`medseg serve`: the nnInteractive v2 remote protocol over HTTP (3D Slicer's nnInteractive extension)."""

from __future__ import annotations

import argparse

NAME = "serve"
HELP = ("Serve interactive segmentation over HTTP (nnInteractive v2 remote protocol: 3D Slicer's "
        "nnInteractive extension, nninteractive-client).")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; any other needs --api-key)")
    p.add_argument("--port", type=int, default=1527, help="port (default 1527)")
    p.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY' (at least 8 characters)")
    p.add_argument("--max-sessions", type=int, default=4, help="clients at once (default 4); one more gets 503")
    p.add_argument("--cache-mib", type=float, default=1024,
                   help="embedding-cache budget shared by all sessions in MiB (default 1024)")
    p.add_argument("--idle-timeout", type=float, default=600, help="seconds without an action before a session "
                   "is dropped (default 600)")
    p.add_argument("--liveness-timeout", type=float, default=60, help="seconds without any request (heartbeats "
                   "count) before a crashed client's session is dropped (default 60)")
    p.add_argument("--ahead", type=int, default=2, help="slices past each end of an object to encode while the "
                   "server is idle, so that a click there does not wait for them (default 2; 0: none)")
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
    from medseg.serve.limits import Limits
    from medseg.serve.run import check_host, serve
    from medseg.validate import number

    number(args.port, "--port", integer=True, minimum=1, maximum=65535, example=1527)
    check_host(args.host, args.api_key)
    limits = Limits(max_sessions=args.max_sessions, cache_mib=args.cache_mib, idle_seconds=args.idle_timeout,
                    liveness_seconds=args.liveness_timeout, ahead=args.ahead)
    serve(args.host, args.port, limits, args.api_key, args.model, args.engine, planes=args.planes,
          refine=not args.no_refine, correction_net=not args.no_correction_net)
    return 0
