"""The `medseg` command ends through ``leave``: its exit status, and all it printed, reach the caller."""

from __future__ import annotations

import subprocess
import sys


def test_leave_keeps_the_exit_status_and_flushes_both_streams():
    # Printed to pipes, both streams are block-buffered: without the flush, os._exit would drop them.
    code = ("import sys\nfrom medseg.cli.main import leave\n"
            "print('to stdout', end='')\nsys.stderr.write('to stderr')\nleave(3)\nprint('never')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, "to stdout", "to stderr")


def test_console_script_is_entry():
    from importlib.metadata import entry_points

    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts.get("medseg") == "medseg.cli.main:entry"
