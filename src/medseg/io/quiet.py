"""Third-party chatter kept away from the user while a file is read.

ITK prints warnings ("Non uniform sampling or missing slices", ...) to stderr unless its global
warning display is off; MetaIO and GDCM write straight to the C++ ``std::cerr``; Pillow, tifffile and
pydicom use Python warnings or loggers. ``silenced()`` covers all of them for the duration of a read:
Python warnings ignored, those loggers muted, and file descriptor 2 sent to a temporary file whose
text is handed back (readers may use it to explain a failure) instead of reaching the terminal.
Reads in several threads take turns inside ``silenced()`` (a lock), as the redirection is per process.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import SimpleITK as sitk

_LOGGERS = ("PIL", "tifffile", "pydicom", "imagecodecs")
_LOCK = threading.RLock()  # file descriptor 2 is per process: one thread redirects it at a time


def itk_warnings_off() -> None:
    """Turn ITK's global warning display off (idempotent)."""
    sitk.ProcessObject.SetGlobalWarningDisplay(False)


@dataclass
class Captured:
    """What third-party code wrote to stderr inside ``silenced()`` (filled when the block ends)."""

    text: str = ""


@contextmanager
def _muted_loggers() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextmanager
def _stderr_to(captured: Captured) -> Iterator[None]:
    """Send file descriptor 2 to a temporary file; its text goes to ``captured`` afterwards."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable stderr: nothing to protect
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode(errors="replace")


@contextmanager
def silenced() -> Iterator[Captured]:
    """Run a read with every third-party warning and stderr line kept from the user.

    Yields:
        Captured: its ``text`` holds what was written to stderr, once the block has ended.
    """
    itk_warnings_off()
    captured = Captured()
    with _LOCK, warnings.catch_warnings(), _muted_loggers(), _stderr_to(captured):
        warnings.simplefilter("ignore")
        yield captured
