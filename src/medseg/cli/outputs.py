"""The output guard: nothing of the user's is overwritten without asking.

``check_outputs`` runs before any work (before the model loads) and refuses, with one line:

- an output that is one of the command's inputs: the same path, or the same file through a symlink
  or a hard link (``os.path.samefile``);
- an output inside an input folder (evaluate with folders, a DICOM series folder) that is already a
  file there, or whose ending is an image ending (it would become a case of that folder);
- two outputs that are the same file;
- an output whose ending its option does not allow (``--overlay`` must end in ``.png``, so PNG bytes
  never land in a ``.nii.gz``);
- an output that is an existing folder, or whose path runs under a regular file, or whose folder
  cannot be written (read-only file system, permission);
- an existing output without ``--overwrite`` ("OUT exists; add --overwrite to replace it").

With ``--overwrite`` an existing output is replaced atomically (a symlink output is replaced by the
new file; the file it pointed to is left alone).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from medseg.errors import MedsegError
from medseg.io._common import READ_ENDINGS, ending


def _same(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _under_file(path: Path) -> Path | None:
    """The regular file among ``path``'s parent folders, if any."""
    for parent in path.parents:
        if parent.exists() or parent.is_symlink():
            return parent if not parent.is_dir() else None
    return None


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _check_one(flag: str, path: Path, inputs: list[Path], allowed: tuple[str, ...] | None) -> None:
    if allowed and ending(path) not in allowed:
        raise MedsegError(f"{flag} {path}: must end in {' or '.join(allowed)} (it is written as "
                          f"{allowed[0].lstrip('.').upper()}); choose another name")
    blocker = _under_file(path)
    if blocker is not None:
        raise MedsegError(f"{flag} {path}: Not a directory: a path under the regular file {blocker}")
    if path.is_dir():
        raise MedsegError(f"{flag} {path}: is a folder; give a file name")
    folder = next(p for p in path.absolute().parents if p.exists())
    if not os.access(folder, os.W_OK | os.X_OK):
        why = "Read-only file system" if os.statvfs(folder).f_flag & os.ST_RDONLY else "Permission denied"
        raise MedsegError(f"{flag} {path}: cannot write into {folder}: {why}")
    for source in inputs:
        if source.is_dir() and _inside(path, source):
            if path.exists() or path.is_symlink() or ending(path) in READ_ENDINGS:
                raise MedsegError(f"{flag} {path} is inside the input folder {source}; write it elsewhere")
        elif _same(path, source):
            raise MedsegError(f"{flag} {path} is the input {source}; refusing to overwrite it, "
                              "choose another output path")


def check_outputs(outputs: Mapping[str, str | os.PathLike[str] | None],
                  inputs: Iterable[str | os.PathLike[str] | None], overwrite: bool,
                  endings: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, Path]:
    """Refuse outputs that would destroy the user's files (see the module rules); nothing is written.

    Args:
        outputs: option name (e.g. ``"--json"``) -> output path; None entries are skipped.
        inputs: the command's input files and folders; None entries are skipped.
        overwrite: the command's ``--overwrite``: existing outputs may be replaced.
        endings: option name -> the endings it may have (e.g. ``{"--overlay": (".png",)}``).

    Returns:
        option name -> output Path, for the outputs given.

    Raises:
        MedsegError: one line naming the option, the path and what would work.
    """
    sources = [Path(p).expanduser() for p in inputs if p is not None]
    checked: dict[str, Path] = {}
    for flag, given in outputs.items():
        if given is None:
            continue
        path = Path(given).expanduser()
        _check_one(flag, path, sources, (endings or {}).get(flag))
        for other_flag, other in checked.items():
            if _same(path, other):
                raise MedsegError(f"{flag} {path} is the same file as {other_flag} {other}; give two paths")
        checked[flag] = path
    if not overwrite:
        for path in checked.values():
            if path.exists() or path.is_symlink():
                raise MedsegError(f"{path} exists; add --overwrite to replace it")
    return checked
