"""`medseg` entry point: dispatches to one thin module per command.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
User errors (MedsegError, and argparse's own complaints) become one line on stderr and exit status 2,
with no usage block and no traceback; third-party warnings are not shown; anything unexpected is one
``medseg: internal error`` line and exit status 1 (MEDSEG_DEBUG=1 shows the traceback).
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
import warnings
from typing import NoReturn

from medseg.errors import MedsegError

COMMANDS = ["segment", "structures", "info", "fetch_data", "demo", "evaluate", "benchmark_protocol", "benchmark",
            "train", "serve", "view"]


DEBUG_ENV = "MEDSEG_DEBUG"


class Parser(argparse.ArgumentParser):
    """argparse, but its complaints are a MedsegError (one line, no usage block); used for subcommands too."""

    def error(self, message: str) -> NoReturn:
        raise MedsegError(f"{message} (see: {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="medseg", description=__doc__.splitlines()[0])
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


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parser and every subcommand's parser."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return [parser] + [p for a in subs for p in dict.fromkeys(a.choices.values())]


def join_negative_values(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``--box -5,3,10,10`` -> ``--box=-5,3,10,10``, so values that start with '-' reach their option.

    argparse takes ``-5,3,10,10`` (or ``-inf``) for an option and says "expected one argument"; joined
    with '=', the value reaches our own checks, which name it and say what would work. Only long
    options that take one value are joined, and only when the next word is not itself an option.
    """
    actions = [a for p in _parsers(parser) for a in p._actions]
    options = {s for a in actions for s in a.option_strings}
    takes_value = {s for a in actions if isinstance(a, (argparse._StoreAction, argparse._AppendAction))
                   and a.nargs is None for s in a.option_strings if s.startswith("--")}
    out, i = [], 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            return out + argv[i:]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if word in takes_value and nxt is not None and nxt.startswith("-") and nxt not in options and nxt != "--":
            out.append(f"{word}={nxt}")
            i += 2
            continue
        out.append(word)
        i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    """Run ``medseg ARGV``; returns the exit status (0 done, 2 user error, 1 internal error, 130 interrupted)."""
    with warnings.catch_warnings():
        if not os.environ.get(DEBUG_ENV):  # torch, numpy, PIL... speak to developers, not to users
            warnings.simplefilter("ignore")
        return _main(sys.argv[1:] if argv is None else list(argv))


def _main(argv: list[str]) -> int:
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(join_negative_values(parser, argv))
        except SystemExit as exc:  # --help, --version: argparse printed what was asked
            return exc.code if isinstance(exc.code, int) else 0
        return int(args._run(args) or 0)
    except MedsegError as exc:
        print(f"medseg: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except Terminated:
        print("medseg: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("medseg: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `medseg info | head -1`: the reader left; nothing more to say
        _silence_stdout()
        return 141
    except Exception as exc:  # a bug: one line, never a traceback, unless asked for
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"medseg: internal error: {type(exc).__name__}: {one_line(exc)} (please report; set "
              f"{DEBUG_ENV}=1 for the traceback)", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def one_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (or its type's name)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


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
