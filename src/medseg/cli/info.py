"""`medseg info`: models, checkpoint status and CPU features."""

from __future__ import annotations

import argparse

from medseg.errors import MedsegError

NAME = "info"
HELP = "List models, whether their checkpoints are installed, the 3D correction network, and the CPU's features."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--verify", action="store_true", help="also check each checkpoint's sha256 (slower)")


def _checkpoint_status(card, verify: bool) -> str:
    from medseg.checkpoints import packaged_checkpoint

    src = card.checkpoint
    if src is None:
        return "no packaged checkpoint"
    try:
        import importlib.metadata

        path = importlib.metadata.distribution(src.distribution).locate_file(src.resource)
    except importlib.metadata.PackageNotFoundError:
        return f"not installed ({src.install})"
    if verify:
        try:
            packaged_checkpoint(card)
        except MedsegError as exc:
            return f"INVALID: {exc}"
        return f"{path} (sha256 verified)"
    return str(path)


def _packaged_status(src, what: str, verify: bool) -> str:
    """A weights file shipped inside medseg: its path, or why it cannot be used."""
    from medseg.checkpoints import packaged_file, packaged_path

    path = packaged_path(src)
    if not verify:
        return str(path) if path.is_file() else f"MISSING at {path} ({src.install})"
    try:
        return f"{packaged_file(src, what)} (sha256 verified)"
    except MedsegError as exc:
        return f"INVALID: {exc}"


def check_env_checkpoint() -> None:
    """A $MEDSEG_CHECKPOINT that `medseg segment` would refuse is refused here, with the same one line.

    Only when the variable is set (it then costs the model build, about a second): a bad file is found
    before anything is printed, so ``info`` never lists a setup that cannot segment.
    """
    import os

    from medseg.checkpoints import CHECKPOINT_ENV

    if os.environ.get(CHECKPOINT_ENV):
        from medseg.build import build_model

        build_model()


def run(args: argparse.Namespace) -> int:
    from medseg import __version__
    from medseg.cpu import cpu_info
    from medseg.registry import CLICK_MODEL, CORRECTION_NET, DEFAULT_MODEL, MODELS

    check_env_checkpoint()
    print(f"medseg {__version__}")
    print("models:")
    for card in MODELS.values():
        roles = [r for r, name in (("default", DEFAULT_MODEL), ("for clicks", CLICK_MODEL)) if name == card.name]
        default = f" ({', '.join(roles)})" if roles else ""
        print(f"  {card.name}{default}: {card.description}")
        print(f"    family {card.family}, input {card.input_size}x{card.input_size}, licence {card.license}")
        print(f"    checkpoint: {_checkpoint_status(card, args.verify)}")
    print("3d correction network (answers refused negative 3D corrections): "
          f"{_packaged_status(CORRECTION_NET, 'the 3D correction network weights', args.verify)}")
    cpu = cpu_info()
    print(f"cpu: {cpu['model']}, {cpu['cores']} logical cores")
    print(f"cpu features: {', '.join(cpu['features']) or 'none of ' + ', '.join(('avx2', 'avx512f'))}")
    return 0
