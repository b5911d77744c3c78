"""The one exception type users see: a one-line message they can act on."""

from __future__ import annotations


class MedsegError(Exception):
    """An error caused by the user's input or environment.

    The command line prints ``medseg: error: <message>`` and exits with status 2, without a
    traceback. The message names the file or value at fault and, where possible, what would work.
    """
