"""Shared checks of the promise: bad input or a failed write gives one line on stderr, exit 2, no
traceback, and leaves every file as it was (nothing new, nothing changed, no temporary file).

``run_medseg`` starts the real command in a child process (so resource limits, signals and
privileges apply to it alone); ``snapshot`` records a folder tree to compare before and after.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Run:
    code: int
    out: str
    err: str


def run_medseg(args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
               preexec: Callable[[], None] | None = None, timeout: float = 300) -> Run:
    """``medseg ARGS`` in a child process; ``env`` entries are added to this process's environment."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "medseg.cli.main", *map(str, args)], capture_output=True,
                          encoding="utf-8", errors="replace", env=full_env, cwd=cwd, preexec_fn=preexec,
                          timeout=timeout)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def without_root_override() -> None:
    """``preexec`` hook: the child loses root's right to ignore file permissions (a no-op for other users).

    Drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set (kept across ``exec``), so a
    folder with mode 0o555 is read-only to the child even when the tests run as root. Changing the user
    instead would not do: the interpreter may live under a home folder only root can enter.
    """
    if os.geteuid() != 0:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def snapshot(*folders: Path) -> dict[str, str]:
    """Every file under ``folders`` (hidden ones included) mapped to the sha256 of its bytes."""
    state = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file() and not path.is_symlink():
                state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            elif path.is_symlink() or path.is_dir():
                state[str(path)] = "link" if path.is_symlink() else "dir"
    return state


def assert_clean_failure(run: Run, *words: str, code: int = 2) -> None:
    """Exit ``code``, exactly one stderr line ``medseg: error: ...`` naming ``words``, no traceback."""
    assert run.code == code, (run.code, run.err)
    lines = [line for line in run.err.splitlines() if line.strip()]
    assert len(lines) == 1, run.err
    assert lines[0].startswith("medseg: error: ") or code != 2, lines[0]
    assert "Traceback" not in run.err + run.out
    for word in words:
        assert word.lower() in lines[0].lower(), (word, lines[0])


@pytest.fixture()
def unchanged():
    """``with unchanged(folder, ...):`` asserts the folders hold exactly the same files afterwards."""
    from contextlib import contextmanager

    @contextmanager
    def check(*folders: Path):
        before = snapshot(*folders)
        yield
        after = snapshot(*folders)
        assert after == before, {k: (before.get(k), after.get(k)) for k in set(before) | set(after)
                                 if before.get(k) != after.get(k)}

    return check
