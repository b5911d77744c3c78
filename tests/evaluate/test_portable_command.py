"""The regenerate command in summary.md and the run's config.json name sample data portably (no
machine-specific cache path), so committed runs resume on other machines."""

from __future__ import annotations

import argparse
import json
import subprocess

from medseg.cli.benchmark_protocol import _command, add_arguments
from medseg.evaluate.runner import portable_path


def _expand(word: str, env: dict) -> str:
    return subprocess.run(["bash", "-c", f"printf %s {word}"], env=env, capture_output=True, text=True,
                          check=True).stdout


def test_sample_data_path_uses_the_cache_variable(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    data = cache / "benchmarks" / "Colin27AAL"
    data.mkdir(parents=True)
    monkeypatch.setenv("MEDSEG_DATA", str(cache))
    word = portable_path(data, shell=True)
    assert portable_path(data) == "${MEDSEG_DATA:-$HOME/.cache/medseg/data}/benchmarks/Colin27AAL"
    assert word == '"${MEDSEG_DATA:-$HOME/.cache/medseg/data}/benchmarks/Colin27AAL"'
    assert _expand(word, {"MEDSEG_DATA": str(cache), "HOME": "/nowhere"}) == str(data)
    assert _expand(word, {"HOME": "/home/u"}) == "/home/u/.cache/medseg/data/benchmarks/Colin27AAL"


def test_other_paths_relative_to_the_working_folder_or_as_given(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSEG_DATA", str(tmp_path / "cache"))
    (tmp_path / "work" / "my data").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "work")
    assert portable_path(tmp_path / "work" / "my data", shell=True) == "'my data'"
    assert portable_path(tmp_path / "work" / "my data") == str(tmp_path / "work" / "my data")
    assert portable_path("/elsewhere/d", shell=True) == "/elsewhere/d"


def test_command_lists_only_changed_options(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSEG_DATA", str(tmp_path))
    (tmp_path / "benchmarks" / "D").mkdir(parents=True)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--protocol", "sammed3d", "--data", str(tmp_path / "benchmarks" / "D"),
                              "--labels", "2,4", "--out", "o"])
    assert _command(args) == ('medseg benchmark-protocol --protocol sammed3d --data '
                              '"${MEDSEG_DATA:-$HOME/.cache/medseg/data}/benchmarks/D" --out o --labels 2,4')


def test_committed_run_resumes_with_the_sample_data_elsewhere(tmp_path, monkeypatch):
    import shutil

    from test_protocols import BoxFiller, make_dataset

    from medseg.evaluate.datasets import open_dataset
    from medseg.evaluate.protocols import ProtocolConfig
    from medseg.evaluate.runner import CONFIG, run_protocol

    monkeypatch.setenv("MEDSEG_DATA", str(tmp_path / "mine"))
    dataset = make_dataset(tmp_path / "mine" / "benchmarks" / "D", cases=("a",))
    run_protocol(dataset, BoxFiller, ProtocolConfig("box2d"), tmp_path / "run", progress=False)
    config = json.loads((tmp_path / "run" / CONFIG).read_text())
    assert config["data"] == "${MEDSEG_DATA:-$HOME/.cache/medseg/data}/benchmarks/D"
    # another machine: the same dataset in another cache folder; nothing is refused or recomputed
    shutil.copytree(tmp_path / "mine", tmp_path / "theirs")
    monkeypatch.setenv("MEDSEG_DATA", str(tmp_path / "theirs"))
    built = []
    records = run_protocol(open_dataset(tmp_path / "theirs" / "benchmarks" / "D"), lambda: built.append(1),
                           ProtocolConfig("box2d"), tmp_path / "run", progress=False)
    assert [r["case"] for r in records] == ["a"] and built == []
