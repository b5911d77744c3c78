"""Every command, every bad value: one line ``medseg: error: ...`` naming the option, exit 2, no output.

Pure argument cases run ``main`` in this process (fast); a few run the real command in a child process,
where argparse's usage block, library warnings or a traceback would show.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from tests.robustness.conftest import assert_clean_failure, run_medseg

from medseg.cli import main as cli

# option -> "int+" (whole >= 1), "int0" (whole >= 0), "real+" (> 0), "real0" (>= 0), "frac" ([0, 1))
OPTIONS = {
    "segment": {"--slice": "int0", "--embedding-budget": "real+"},
    "evaluate": {"--nsd-tolerance": "real0"},
    "train": {"--lr": "real+", "--epochs": "int+", "--max-steps": "int+", "--batch-size": "int+", "--rounds": "int+",
              "--val-fraction": "frac", "--val-every": "int0", "--save-every": "int+", "--slices-per-case": "int+",
              "--focal": "real0", "--nproc": "int+", "--seed": "int0", "--depth": "int+", "--crop": "int+",
              "--minutes": "real+"},
    "benchmark-protocol": {"--seed": "int0", "--limit": "int+", "--jitter": "int0", "--slices": "int0",
                           "--clicks": "int0", "--nsd-tolerance": "real0", "--montage": "int0"},
    "benchmark": {"--repeats": "int+", "--process-runs": "int+", "--slices": "int+"},
}
BAD_ANYWHERE = ["nan", "NaN", "inf", "-inf", "-Infinity", "1e309", "abc", "true", "", "１２", "-1", "-5,3", "0x10",
                "1e23"]
BAD_FOR = {"int+": ["0", "1.5", "99999999999999999999999"], "int0": ["2.5", "99999999999999999999999"],
           "real+": ["0", "-0.0"], "real0": ["-1e-9"], "frac": ["1", "1.5"]}


def base_args(command: str, tmp: Path) -> list[str]:
    """Arguments that are fine on their own, so the option under test is the only fault."""
    return {"segment": ["segment", str(tmp / "scan.nii.gz"), "-o", str(tmp / "out" / "m.nii.gz"), "--box", "1,1,5,5"],
            "evaluate": ["evaluate", "--pred", str(tmp / "p.nii.gz"), "--gt", str(tmp / "g.nii.gz")],
            "train": ["train", "--data", str(tmp / "data"), "--mode", "decoder", "--out", str(tmp / "out")],
            "benchmark-protocol": ["benchmark-protocol", "--protocol", "box2d", "--data", str(tmp / "data"),
                                   "--out", str(tmp / "out")],
            "benchmark": ["benchmark", "--engines", "eager"]}[command]


CASES = [(c, o, v) for c, opts in OPTIONS.items() for o, kind in opts.items() for v in BAD_ANYWHERE + BAD_FOR[kind]]


def run_main(args: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line(code: int, out: str, err: str, *words: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("medseg: error: ") and "usage:" not in err and "Traceback" not in err
    assert out == ""
    for word in words:
        assert word.lower() in lines[0].lower(), (word, lines[0])


@pytest.mark.parametrize(("command", "option", "value"), CASES, ids=[f"{c} {o} {v!r}" for c, o, v in CASES])
def test_bad_number_is_one_line(command, option, value, tmp_path, capsys):
    code, out, err = run_main([*base_args(command, tmp_path), option, value], capsys)
    assert_one_line(code, out, err, option)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("option", "text", "ok"), [
    ("--lr", "1e-4", 1e-4), ("--epochs", "3", 3), ("--val-fraction", "0", 0.0), ("--seed", "4294967295", 2**32 - 1),
    ("--focal", "0.5", 0.5), ("--nproc", "2", 2)])
def test_good_numbers_still_parse(option, text, ok, tmp_path):
    parser = cli.build_parser()
    args = parser.parse_args(cli.join_negative_values(parser, [*base_args("train", tmp_path), option, text]))
    assert getattr(args, option[2:].replace("-", "_")) == ok


@pytest.fixture()
def scan(tmp_path) -> Path:
    image = sitk.GetImageFromArray(np.random.default_rng(0).integers(0, 1000, (6, 40, 50)).astype(np.int16))
    sitk.WriteImage(image, str(tmp_path / "scan.nii.gz"))
    return tmp_path / "scan.nii.gz"


PROMPT_FLAGS = {
    "box starting with minus": (["--box", "-5,3,10,10", "--slice", "2"], ["outside"]),
    "box minus inf": (["--box", "-inf,3,10,10", "--slice", "2"], ["--box", "finite"]),
    "box nan": (["--box", "nan,1,5,5", "--slice", "2"], ["--box", "finite"]),
    "box true": (["--box", "true,1,5,5", "--slice", "2"], ["--box"]),
    "box huge": (["--box", "1e309,1,5,5", "--slice", "2"], ["--box"]),
    "box unicode digits": (["--box", "１,1,5,5", "--slice", "2"], ["--box"]),
    "box empty": (["--box", "", "--slice", "2"], ["--box"]),
    "box 5 numbers": (["--box", "1,2,3,4,5"], ["--box", "4 numbers"]),
    "point starting with minus": (["--point", "-1,2,3"], ["outside"]),
    "point 2 numbers on a volume": (["--point", "-1,2"], []),
    "point fractional slice": (["--point", "1,2,2.5"], ["--point", "whole"]),
    "point huge slice": (["--point", "1,2,1e300"], ["--point"]),
    "negative point alone": (["--negative-point", "10,10,2"], ["negative", "alone"]),
    "two negative points alone": (["--negative-point", "10,10,2", "--negative-point", "11,10,2"], ["alone"]),
    "slice negative": (["--box", "1,1,5,5", "--slice", "-3"], ["--slice"]),
    "slice beyond": (["--box", "1,1,5,5", "--slice", "99999999999"], ["--slice"]),
    "budget missing value": (["--box", "1,1,5,5", "--slice", "2", "--embedding-budget"], ["--embedding-budget"]),
    "window not a choice": (["--box", "1,1,5,5", "--slice", "2", "--window", "nope"], ["--window"]),
}


@pytest.mark.parametrize("name", list(PROMPT_FLAGS))
def test_bad_prompt_flag_is_one_line(name, scan, tmp_path, capsys, unchanged):
    args, words = PROMPT_FLAGS[name]
    with unchanged(tmp_path):
        code, out, err = run_main(["segment", str(scan), "-o", str(tmp_path / "m.nii.gz"), *args], capsys)
    assert_one_line(code, out, err, *words)


ARGPARSE = {
    "no command": ([], ["command"]),
    "unknown command": (["segmnt"], ["segmnt"]),
    "unknown option": (["info", "--bogus"], ["--bogus"]),
    "missing required": (["segment", "x.nii.gz"], ["--output"]),
    "missing value": (["train", "--data", "d", "--mode", "decoder", "--out", "o", "--lr"], ["--lr"]),
    "bad choice": (["benchmark-protocol", "--protocol", "nope", "--data", "d"], ["--protocol", "nope"]),
    "evaluate labels": (["evaluate", "--pred", "p", "--gt", "g", "--labels", "1,x"], ["--labels"]),
    "evaluate labels negative": (["evaluate", "--pred", "p", "--gt", "g", "--labels", "-1"], ["--labels"]),
    "train prompts": (["train", "--data", "d", "--mode", "decoder", "--out", "o", "--prompts", "mask"], ["--prompts"]),
    "train mode": (["train", "--data", "d", "--mode", "nope", "--out", "o"], ["nope"]),
    "fetch unknown dataset": (["fetch-data", "nosuch"], ["nosuch"]),
    "model file missing": (["segment", "s.nii.gz", "-o", "m.nii.gz", "--model", "nope.pt", "--box", "1,1,5,5"], []),
}


@pytest.mark.parametrize("name", list(ARGPARSE))
def test_argparse_complaints_are_one_line(name, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args, words = ARGPARSE[name]
    code, out, err = run_main(args, capsys)
    assert_one_line(code, out, err, *words)


def test_help_still_prints_and_exits_zero(capsys):
    code, out, _ = run_main(["segment", "--help"], capsys)
    assert code == 0 and "--embedding-budget" in out


def test_unexpected_error_is_one_line_exit_1(monkeypatch, capsys):
    from medseg.cli import info

    def broken(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(info, "run", broken)
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    code, out, err = run_main(["info"], capsys)
    assert code == 1
    assert err.strip().splitlines() == [err.strip()] and err.startswith("medseg: internal error: ZeroDivisionError")
    assert "MEDSEG_DEBUG=1" in err and "Traceback" not in err


def test_info_lists_the_3d_correction_network_and_verifies_it(capsys, monkeypatch):
    monkeypatch.delenv("MEDSEG_CHECKPOINT", raising=False)
    code, out, err = run_main(["info", "--verify"], capsys)
    line = [x for x in out.splitlines() if x.startswith("3d correction network")]
    assert code == 0 and len(line) == 1 and line[0].endswith("correction3d.pt (sha256 verified)")


def test_info_refuses_missing_env_checkpoint_like_segment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MEDSEG_CHECKPOINT", str(tmp_path / "missing.pt"))
    code, out, err = run_main(["info"], capsys)
    assert_one_line(code, out, err, "checkpoint not found", "missing.pt")


# ----- the real command in a child process: no usage block, no library warning, no traceback ---------------
CHILD = {
    "box starting with minus": (["segment", "{scan}", "-o", "{tmp}/m.nii.gz", "--box", "-5,3,10,10", "--slice", "2"],
                                ["outside"]),
    "point starting with minus": (["segment", "{scan}", "-o", "{tmp}/m.nii.gz", "--point", "-1,2,3"], ["outside"]),
    "lr nan": (["train", "--data", "{tmp}/d", "--mode", "decoder", "--out", "{tmp}/o", "--lr", "nan"], ["--lr nan"]),
    "unknown command": (["segmnt"], ["segmnt"]),
    "bad prompt file": (["segment", "{scan}", "-o", "{tmp}/m.nii.gz", "--prompts", "{tmp}/p.json"], ["NaN"]),
}


@pytest.mark.parametrize("name", list(CHILD))
def test_child_process_one_line(name, scan, tmp_path, unchanged):
    (tmp_path / "p.json").write_text('{"objects": [{"interactions": [{"box": [NaN, 1, 5, 5], "slice": 2}]}]}')
    args = [a.format(scan=scan, tmp=tmp_path) for a in CHILD[name][0]]
    with unchanged(tmp_path):
        run = run_medseg(args)
    assert_clean_failure(run, *CHILD[name][1])
    assert "usage:" not in run.err and run.out == ""


def test_broken_pipe_is_quiet():
    proc = subprocess.Popen([sys.executable, "-m", "medseg.cli.main", "info"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.read(1)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
