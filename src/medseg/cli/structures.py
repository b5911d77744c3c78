"""`medseg structures SCAN`: what a text prompt can ask for on this scan, and by which route."""

from __future__ import annotations

import argparse

NAME = "structures"
HELP = "List the structures `segment --text` can find on a scan, and the route that serves them."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="image file or DICOM folder (as for `medseg segment`)")
    p.add_argument("--series", default=None, metavar="UID", help="Series Instance UID in a DICOM folder")
    p.add_argument("--model", default=None, metavar="RUN/model.pt",
                   help="a SAM3D model file: list its classes (what `segment --text NAME --model` it serves)")


def run(args: argparse.Namespace) -> int:
    from medseg.io import read_image
    from medseg.text.routes import Router

    image = read_image(args.input, series=args.series)
    router = Router()
    if args.model:
        from medseg.predict.automatic import load_automatic
        from medseg.text.automatic_route import AutomaticRoute

        model = load_automatic(args.model)
        model.check(image)
        router = Router([AutomaticRoute(model, name=f"SAM3D {args.model}")])
    for route, names, groups in router.structures(image):
        print(f"route: {route} ({len(names)} structures; left/right/both, L/R, lt/rt, sinister/dexter, "
              "synonyms and typos accepted)")
        for name in names:
            print(f"  {name}")
        if groups:
            print(f"groups (one object each, with left/right/both): {', '.join(groups)}")
    return 0
