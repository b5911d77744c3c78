"""Run a protocol over a dataset, resumably: one JSON line per finished case in ``OUT/results.jsonl``.

``OUT/config.json`` holds the run's settings (a dataset in the sample-data cache is named portably, see
:func:`portable_path`, so a committed run resumes on another machine); a rerun with the same settings
skips the cases already in ``results.jsonl`` (a half-written last line from an interrupted run is
ignored: each line is appended, flushed and fsynced whole, but an append is not atomic), a rerun
with other settings is refused. Every other file is written atomically (``medseg.files``). Predicted label maps go to
``OUT/predictions/CASE.nii.gz`` on the image grid.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import time
import zlib
from dataclasses import asdict
from pathlib import Path

import numpy as np

from medseg.errors import MedsegError
from medseg.evaluate.compare import json_safe
from medseg.evaluate.datasets import Dataset, load_case
from medseg.evaluate.protocols import CVPR25_CLICK_RULE, ProtocolConfig, run_case
from medseg.files import append_line, write_text

RESULTS = "results.jsonl"
CONFIG = "config.json"
PREDICTIONS = "predictions"


SAMPLE_ROOT = "${MEDSEG_DATA:-$HOME/.cache/medseg/data}"


def portable_path(path: str | Path, shell: bool = False) -> str:
    """A dataset path that reads the same on other machines.

    A folder in the sample-data cache becomes ``${MEDSEG_DATA:-$HOME/.cache/medseg/data}/...`` (double
    quoted when ``shell``, so a shell expands it); with ``shell``, a folder under the working folder
    becomes relative to it; anything else stays absolute (shell-quoted when ``shell``).
    """
    from medseg.data import sample

    resolved = Path(path).expanduser().resolve()
    root = sample.data_root().resolve()
    if resolved.is_relative_to(root):
        rel = resolved.relative_to(root).as_posix()
        if not shell:
            return f"{SAMPLE_ROOT}/{rel}"
        if not any(c in rel for c in '"$`\\'):
            return f'"{SAMPLE_ROOT}/{rel}"'
    if not shell:
        return str(resolved)
    if resolved.is_relative_to(Path.cwd().resolve()):
        return shlex.quote(resolved.relative_to(Path.cwd().resolve()).as_posix())
    return shlex.quote(str(path))


def case_rng(seed: int, case: str) -> np.random.Generator:
    """A generator that depends on the seed and the case name only (so --limit and resume agree)."""
    return np.random.default_rng([seed, zlib.crc32(case.encode())])


def finished_cases(out: Path) -> dict[str, dict]:
    """Case name -> record of every complete line of ``results.jsonl``."""
    done: dict[str, dict] = {}
    path = out / RESULTS
    if not path.is_file():
        return done
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by an interruption
        done[record["case"]] = record
    return done


def _check_config(out: Path, settings: dict) -> list[Path]:
    """Refuse a run folder holding other settings; start a new one. Returns what it created."""
    path = out / CONFIG
    if path.is_file():
        before = json.loads(path.read_text())
        if before != settings:
            changed = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
            raise MedsegError(f"{out} holds a run with other settings ({', '.join(changed)}); "
                              "use another --out or delete it")
        return []
    created = [p for p in (out, *out.parents) if not p.exists()][::-1]
    out.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(settings, indent=2) + "\n")
    return [*created, path]


def _undo_new_run(out: Path, created: list[Path]) -> None:
    """Remove what a new run wrote before any case finished: its config, orphan masks, new folders."""
    (out / CONFIG).unlink(missing_ok=True)
    shutil.rmtree(out / PREDICTIONS, ignore_errors=True)
    for folder in reversed([p for p in created if p != out / CONFIG]):
        with contextlib.suppress(OSError):
            folder.rmdir()


def run_protocol(dataset: Dataset, predictor_factory, cfg: ProtocolConfig, out: str | Path,
                 labels: list[int] | None = None, limit: int | None = None, model: str = "",
                 progress: bool = True) -> list[dict]:
    """Run ``cfg.protocol`` on the dataset's cases, skipping finished ones; returns every case record.

    Args:
        dataset: from :func:`medseg.evaluate.datasets.open_dataset`.
        predictor_factory: () -> Predictor, called once, only when a case needs running.
        cfg: protocol settings.
        out: run folder.
        labels: structures to prompt (default: every label of dataset.json, else every nonzero label).
        limit: only the first N cases (sorted by name).
    """
    out = Path(out)
    settings = {**asdict(cfg), "model": model, "labels": labels, "data": portable_path(dataset.root)}
    if cfg.protocol == "interactive":  # runs of the earlier click rule (protocols.cvpr25_click) are not resumed
        settings["click_rule"] = CVPR25_CLICK_RULE
    created = _check_config(out, settings)
    try:
        return _run_cases(dataset, predictor_factory, cfg, out, labels, limit, progress)
    except BaseException:
        if created and not finished_cases(out):  # nothing to resume: leave no run folder behind
            _undo_new_run(out, created)
        raise


def _run_cases(dataset: Dataset, predictor_factory, cfg: ProtocolConfig, out: Path, labels: list[int] | None,
               limit: int | None, progress: bool) -> list[dict]:
    from medseg.io import write_mask

    done = finished_cases(out)
    cases = dataset.cases[:limit] if limit else dataset.cases
    todo = [c for c in cases if c.name not in done]
    if progress and len(todo) < len(cases):
        print(f"resuming: {len(cases) - len(todo)} of {len(cases)} cases already done in {out / RESULTS}")
    predictor = predictor_factory() if todo else None
    bar = _progress(todo, cfg.protocol, progress)
    for case in bar:
        image, gt, instances = load_case(dataset, case)
        wanted = labels or sorted(dataset.names) or [int(v) for v in np.unique(gt) if v != 0]
        start = time.perf_counter()
        result = run_case(cfg.protocol, predictor, image, gt, wanted, cfg, case_rng(cfg.seed, case.name), instances)
        seconds = time.perf_counter() - start
        for row in result.rows:
            row.update(case=case.name, name=dataset.name_of(row["label"]))
        write_mask(result.prediction, image.geometry, out / PREDICTIONS / f"{case.name}.nii.gz")
        record = {"case": case.name, "seconds": seconds, "rows": result.rows}
        append_line(out / RESULTS, json.dumps(json_safe(record)))
        done[case.name] = json_safe(record)
    return [done[c.name] for c in cases if c.name in done]


def _progress(items, desc: str, show: bool):
    if not show:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="case", disable=None)  # silent off a terminal


def all_rows(records: list[dict]) -> list[dict]:
    """Flatten case records into rows; a JSON null HD95 (infinite) comes back as inf."""
    rows = []
    for record in records:
        for row in record["rows"]:
            rows.append({**row, "hd95": float("inf") if row.get("hd95") is None else row["hd95"]})
    return rows
