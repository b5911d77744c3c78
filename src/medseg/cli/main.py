"""`medseg` entry point: dispatches to one thin module per command.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
User errors (MedsegError) become one line on stderr and exit status 2, with no traceback.
SIGINT (Ctrl-C) and SIGTERM end a command through the same path as an exception, so every
temporary file and half-staged output is removed (``medseg.files``): one line on stderr, exit 130
(interrupted) or 143 (terminated), no output file.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from typing import NoReturn

from medseg.errors import MedsegError

COMMANDS = ["segment", "info", "fetch_data", "demo", "evaluate", "benchmark_protocol", "benchmark", "train"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medseg", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMANDS:
        module = importlib.import_module(f"medseg.cli.{module_name}")
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so ``finally`` blocks and transactions clean up."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        args = build_parser().parse_args(argv)
        return int(args._run(args) or 0)
    except MedsegError as exc:
        print(f"medseg: error: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        print("medseg: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("medseg: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def leave(code: int) -> NoReturn:
    """End the process with ``code`` now: streams flushed, the interpreter's teardown skipped.

    The teardown (ONNX Runtime's sessions, arena and thread pools, then every module) took about 75 ms
    of each command on 2 cores (CT 3D box process: 0.151 -> 0.077 s between the work's end and the
    process's, medians of 5; benchmarks/results/engines/README.md). Nothing is pending by then: every
    file medseg writes is complete and closed when its writer returns.
    """
    if "logging" in sys.modules:  # its handlers flushed, as at a normal exit
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            pass
    os._exit(code)


def entry() -> NoReturn:
    """The ``medseg`` console script: ``main`` on the command line's arguments, then ``leave``."""
    leave(main())


if __name__ == "__main__":
    entry()
