"""Find and verify checkpoint files (no torch import, so `medseg info` stays fast)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import warnings
from pathlib import Path

from medseg.errors import MedsegError
from medseg.registry import CheckpointSource, ModelCard

CHECKPOINT_ENV = "MEDSEG_CHECKPOINT"
SAFE_GLOBALS = ("torch.", "collections.OrderedDict", "builtins.set")  # what weights_only=True allows anyway


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def packaged_checkpoint(card: ModelCard) -> Path:
    """Locate the card's checkpoint inside its installed package; verify size and sha256."""
    src = card.checkpoint
    if src is None:
        raise MedsegError(f"model '{card.name}' has no packaged checkpoint; pass --checkpoint PATH")
    # importlib.metadata finds the file without importing the package: its code imports timm,
    # which is deliberately not installed (it would pull a CUDA torch).
    try:
        dist = importlib.metadata.distribution(src.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise MedsegError(f"the {card.name} checkpoint is not installed; run: {src.install}") from None
    path = Path(str(dist.locate_file(src.resource)))
    if not path.is_file():
        raise MedsegError(f"the {card.name} checkpoint is missing at {path}; run: {src.install}")
    if path.stat().st_size != src.size or sha256_of(path) != src.sha256:
        raise MedsegError(f"checkpoint {path} does not match the expected size/sha256; reinstall: {src.install}")
    return path


def packaged_decoder(card: ModelCard) -> Path | None:
    """The card's decoder file shipped inside medseg (None if it has none); size and sha256 verified."""
    return None if card.decoder is None else packaged_file(card.decoder, f"the {card.name} decoder weights")


def packaged_path(src: CheckpointSource) -> Path:
    """Where a weights file shipped inside medseg lies (``src.resource``: "medseg/weights/<file>"); unchecked."""
    return Path(__file__).resolve().parents[1] / src.resource


def packaged_file(src: CheckpointSource, what: str) -> Path:
    """A weights file shipped inside medseg; size and sha256 verified."""
    path = packaged_path(src)
    if not path.is_file():
        raise MedsegError(f"{what} are missing at {path}; reinstall: {src.install}")
    if path.stat().st_size != src.size or sha256_of(path) != src.sha256:
        raise MedsegError(f"{what} at {path} do not match the expected size/sha256; reinstall: {src.install}")
    return path


def resolve_checkpoint(card: ModelCard, checkpoint: str | os.PathLike | None) -> Path:
    """--checkpoint, then $MEDSEG_CHECKPOINT, then the packaged file."""
    chosen = checkpoint or os.environ.get(CHECKPOINT_ENV)
    if chosen:
        path = Path(chosen).expanduser()
        if path.is_dir():
            raise MedsegError(f"checkpoint {path} is a folder; give the .pt or .pth file")
        if not path.is_file():
            raise MedsegError(f"checkpoint not found: {path}")
        return path
    return packaged_checkpoint(card)


def load_torch_file(path: str | os.PathLike, what: str = "checkpoint") -> object:
    """``torch.load(path, weights_only=True)`` on the CPU, any failure as a one-line MedsegError.

    Nothing in the file runs: a pickle that names code (``os.system``, a class) is refused, not loaded,
    and torch's own advice to load it with ``weights_only=False`` is never passed on. Its warnings are
    not shown.

    Args:
        path: the file. what: how messages name it ("checkpoint", "--resume", ...).
    """
    import torch

    file = Path(path)
    if file.is_dir():
        raise MedsegError(f"{what} {file} is a folder; give the .pt or .pth file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(file, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise MedsegError(f"{what} not found: {file}") from None
    except OSError as exc:
        raise MedsegError(f"cannot read {what} {file}: {exc.strerror or exc}") from None
    except Exception as exc:  # torch raises many types for corrupt, foreign or hostile files
        raise MedsegError(f"{what} {file}: {_why_not(file, exc)}") from None


def _why_not(file: Path, exc: Exception) -> str:
    named = re.search(r"GLOBAL ([\w.]+)", str(exc))
    code = named.group(1) if named else _code_named_in(file)
    if code or "Unsupported class" in str(exc):
        example = f", e.g. {code}" if code else ""
        return (f"not a checkpoint medseg can load safely (it holds code or objects other than tensors{example}); "
                "use plain weights (a state_dict) from a source you trust")
    if file.stat().st_size == 0:
        return "the file is empty; it is not a checkpoint (was its download or copy cut short?)"
    return ("not a PyTorch checkpoint, or a damaged one (truncated or corrupt); "
            "download or copy it again, or give the right file")


def _code_named_in(file: Path) -> str | None:
    """The first global other than torch's a whole pickle names, read with pickletools: nothing runs."""
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(file):
            with zipfile.ZipFile(file) as archive:
                member = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
                data = archive.read(member) if member else b""
        else:
            data = file.read_bytes()[:64 << 20]
        strings: list[str] = []
        found = None
        for op, arg, _ in pickletools.genops(data):  # raises on anything but a whole pickle
            if isinstance(arg, str):
                strings.append(arg)
            name = arg.replace(" ", ".") if op.name == "GLOBAL" else ".".join(strings[-2:])
            if op.name in ("GLOBAL", "STACK_GLOBAL") and not name.startswith(SAFE_GLOBALS) and found is None:
                found = name
        return found
    except Exception:  # not a pickle at all: damaged or foreign
        return None
