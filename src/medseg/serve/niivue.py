"""NiiVue, the WebGL viewer the browser page uses: obtained once from the npm registry, never at run time.

``python -m medseg.serve.niivue`` (run by ``make data``) calls ``npm pack @niivue/niivue@0.69.0``,
checks the tarball's sha256, and keeps its self-contained ES module ``dist/index.js`` (checked too) in
``$MEDSEG_NIIVUE`` or ``~/.cache/medseg/niivue/0.69.0/``. The server serves that file; without it the
page says how to get it. Nothing is fetched from a CDN and nothing is committed.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from medseg.errors import MedsegError

PACKAGE = "@niivue/niivue"
VERSION = "0.69.0"
TARBALL_SHA256 = "6e9a6a471b428eb3b258a0086beca9187d95e43a781a39e8a519c6da246af485"
MODULE_SHA256 = "d6c2be4feb1ad53b2ac76b4196da8d8fd2263b662b511c55ca0fd127eb6a6532"
MODULE = "package/dist/index.js"
MISSING = (f"NiiVue {VERSION} is not installed; run `python -m medseg.serve.niivue` (or `make data`), "
           "which needs npm and the npm registry once")


def folder() -> Path:
    env = os.environ.get("MEDSEG_NIIVUE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "medseg" / "niivue" / VERSION


def module_path() -> Path:
    return folder() / "niivue.js"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load() -> bytes | None:
    """The checked NiiVue module, or None when it is missing or not the pinned one."""
    path = module_path()
    if not path.is_file():
        return None
    data = path.read_bytes()
    return data if _sha256(data) == MODULE_SHA256 else None


def fetch() -> Path:
    """Get the pinned NiiVue from the npm registry into ``folder()`` (no-op when already there)."""
    if load() is not None:
        return module_path()
    npm = shutil.which("npm")
    if npm is None:
        raise MedsegError(f"npm is not installed; it is needed once to get {PACKAGE}@{VERSION}")
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run([npm, "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", tmp, "--silent"],
                             capture_output=True, text=True, timeout=600)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if run.returncode != 0 or len(tarballs) != 1:
            raise MedsegError(f"npm pack {PACKAGE}@{VERSION} failed: {(run.stderr or run.stdout).strip()[:200]}")
        blob = tarballs[0].read_bytes()
    if _sha256(blob) != TARBALL_SHA256:
        raise MedsegError(f"{PACKAGE}@{VERSION} from the registry has sha256 {_sha256(blob)}, "
                          f"expected {TARBALL_SHA256}; not using it")
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        member = tar.extractfile(MODULE)
        data = member.read() if member is not None else b""
    if _sha256(data) != MODULE_SHA256:
        raise MedsegError(f"{MODULE} in {PACKAGE}@{VERSION} has an unexpected sha256; not using it")
    from medseg.files import write_bytes

    return write_bytes(module_path(), data)


if __name__ == "__main__":
    try:
        print(fetch())
    except MedsegError as exc:
        print(f"medseg: error: {exc}", file=sys.stderr)
        sys.exit(2)
