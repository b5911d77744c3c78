"""Every file medseg writes goes through here: written whole and checked, or not at all.

Rules:

- **Atomic write** (``write_file``): the content goes to a hidden temporary file in the target folder
  (``.NAME.<random>.tmp<ENDING>``, same ending, so writers that pick the format by ending work), is
  flushed and fsynced, then checked (size > 0, plus an optional ``verify`` read-back), and only then
  renamed over the target with ``os.replace``; the folder is fsynced last. On any failure (full disk,
  file too large, read-only folder, permission, a folder or a regular file in the way, an interrupt)
  the temporary file is removed, folders it created are removed again, and a one-line
  ``MedsegError`` names the path and the reason. The target is then untouched.
- **Transaction** (``Transaction``): a command's outputs appear together or not at all. Every output
  is first staged as a checked temporary file; only when all are staged are they renamed into place.
  If staging or a rename fails, every staged temporary and every already renamed new file is removed,
  and a file an output replaced (``--overwrite``) is put back from a hard link taken before the rename.

CPython ignores SIGXFSZ, so a file-size limit arrives as ``OSError(EFBIG)``; C++ writers (ITK) may
not report a short write at all: that is what the read-back check is for.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from medseg.errors import MedsegError

Writer = Callable[[Path], object]  # writes the whole file at the given (temporary) path
Verify = Callable[[Path], "str | None"]  # reason the written file is incomplete, or None

_REASONS = {
    errno.ENOSPC: "No space left on device",
    errno.EFBIG: "File too large",
    errno.EROFS: "Read-only file system",
    errno.EACCES: "Permission denied",
    errno.EPERM: "Permission denied",
    errno.EISDIR: "is a folder",
    errno.ENOTDIR: "Not a directory: a path under a regular file",
    errno.EDQUOT: "Disk quota exceeded",
}


def reason(exc: BaseException) -> str:
    """A short one-line reason for a failed write (errno names for OSError, first ERROR line for ITK)."""
    if isinstance(exc, OSError) and exc.errno in _REASONS:
        return _REASONS[exc.errno]
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = next((ln for ln in lines if "ERROR:" in ln), lines[-1] if lines else type(exc).__name__)
    text = re.sub(r"\w+\(0x[0-9a-fA-F]+\):\s*", "", text.split("ERROR:", 1)[-1])  # ITK's "Class(0x..): "
    text = re.sub(r"\S*/\.[^/\s]+\.tmp[^\s:]*:?", "", text)  # our temporary name means nothing
    text = " ".join(text.split()).rstrip(": ")[:200] or type(exc).__name__
    return text


def _ending(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix


def fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder; the rename is still atomic
        pass
    finally:
        os.close(fd)


def _make_parents(path: Path) -> list[Path]:
    """Create the missing folders above ``path``; returns them (deepest first) for a rollback."""
    made, folder = [], path.parent
    while not folder.exists() and folder != folder.parent:
        if folder.is_symlink():
            break
        made.append(folder)
        folder = folder.parent
    for new in reversed(made):
        os.mkdir(new)
    return made


def _remove_folders(folders: list[Path]) -> None:
    for folder in folders:  # deepest first; only while empty
        try:
            folder.rmdir()
        except OSError:
            return


def _stage(path: Path, write: Writer, verify: Verify | None) -> Path:
    """Write, fsync and check a temporary file beside ``path``; returns it (removed again on failure)."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp{_ending(path)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        os.close(fd)
        write(temp)
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        size = temp.stat().st_size
        problem = "the written file is empty" if size == 0 else (verify(temp) if verify else None)
        if problem:
            raise OSError(errno.EIO, f"the written file is incomplete ({problem}); is the disk full?")
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def _error(path: Path, exc: BaseException) -> MedsegError:
    hint = "; is the disk full?" if isinstance(exc, RuntimeError) else ""  # ITK's writers say no more
    return MedsegError(f"{path}: cannot write: {reason(exc)}{hint}")


_ERRORS = (OSError, RuntimeError, ValueError, EOFError)


class Transaction:
    """Outputs that appear together or not at all.

    ``with Transaction() as tx: tx.stage(path, write)`` stages each output; leaving the block without
    an exception renames them all into place (``commit``); an exception (``KeyboardInterrupt``
    included) removes every staged file (``abort``).
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []  # (temporary, target)
        self._made: list[Path] = []

    def stage(self, path: str | os.PathLike[str], write: Writer, verify: Verify | None = None) -> Path:
        """Write ``path``'s content to a checked temporary file; it replaces ``path`` at commit.

        Args:
            path: the output file.
            write: ``write(temp)`` writes the whole file at ``temp`` (same ending as ``path``).
            verify: ``verify(temp)`` returns why the file is incomplete, or None.

        Raises:
            MedsegError: one line naming ``path`` and the reason; nothing staged for it remains.
        """
        path = Path(path)
        try:
            self._made += _make_parents(path)
            self._staged.append((_stage(path, write, verify), path))
        except _ERRORS as exc:
            self.abort()
            raise _error(path, exc) from None
        except BaseException:
            self.abort()
            raise
        return path

    def abort(self) -> None:
        """Remove every staged temporary file and every folder this transaction created."""
        for temp, _ in self._staged:
            temp.unlink(missing_ok=True)
        self._staged = []
        _remove_folders(sorted(self._made, key=lambda p: len(p.parts), reverse=True))
        self._made = []

    def commit(self) -> list[Path]:
        """Rename every staged file into place; on failure undo the renames already done."""
        done: list[tuple[Path, Path | None]] = []  # (target, link to the file it replaced)
        target = None
        try:
            for temp, target in self._staged:
                old = _keep_aside(target) if len(self._staged) > 1 else None
                try:
                    os.replace(temp, target)
                except BaseException:
                    if old is not None:
                        old.unlink(missing_ok=True)
                    raise
                done.append((target, old))
        except BaseException as exc:
            for replaced, old in reversed(done):
                _undo(replaced, old)
            self.abort()
            if isinstance(exc, _ERRORS):
                raise _error(target, exc) from None
            raise
        for _, old in done:
            if old is not None:
                old.unlink(missing_ok=True)
        for folder in {target.parent for _, target in self._staged}:
            fsync_folder(folder)
        targets = [target for _, target in self._staged]
        self._staged, self._made = [], []
        return targets

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()


def _keep_aside(target: Path) -> Path | None:
    """A hard link to the existing ``target`` (to restore it), or None if there is none."""
    if not target.is_file() or target.is_symlink():
        return None
    old = target.with_name(f".{target.name}.{secrets.token_hex(4)}.old")
    try:
        os.link(target, old)
    except OSError:  # no hard links here: a copy does as well
        shutil.copy2(target, old)
    return old


def _undo(target: Path, old: Path | None) -> None:
    try:
        if old is not None:
            os.replace(old, target)
        else:
            target.unlink(missing_ok=True)
    except OSError:
        pass


def write_file(path: str | os.PathLike[str], write: Writer, verify: Verify | None = None,
               tx: Transaction | None = None) -> Path:
    """Write one file atomically (see the module rules), or stage it into ``tx`` if given.

    Returns:
        ``path`` as a Path.

    Raises:
        MedsegError: the write failed; neither the new file nor a temporary one is left.
    """
    if tx is not None:
        return tx.stage(path, write, verify)
    with Transaction() as single:
        single.stage(path, write, verify)
    return Path(path)


def write_bytes(path: str | os.PathLike[str], data: bytes, tx: Transaction | None = None) -> Path:
    """``data`` to ``path`` atomically; the check is that the file holds exactly ``len(data)`` bytes."""

    def write(temp: Path) -> None:
        with open(temp, "wb") as handle:
            handle.write(data)

    def verify(temp: Path) -> str | None:
        size = temp.stat().st_size
        return None if size == len(data) else f"{size} of {len(data)} bytes"

    return write_file(path, write, verify, tx)


def write_text(path: str | os.PathLike[str], text: str, tx: Transaction | None = None) -> Path:
    """UTF-8 ``text`` to ``path`` atomically (see ``write_bytes``)."""
    return write_bytes(path, text.encode("utf-8"), tx)


def append_line(path: str | os.PathLike[str], line: str) -> None:
    """Append one line, flushed and fsynced; a torn last line left by a crash is closed first.

    Appends are not atomic: a reader must skip a last line that does not parse (it was cut short).
    """
    with open(path, "a+b") as handle:
        handle.seek(0, 2)
        if handle.tell():
            handle.seek(-1, 2)
            if handle.read(1) != b"\n":
                handle.write(b"\n")
        handle.write(line.encode() + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
