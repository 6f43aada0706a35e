"""The engine through the command line: kill and resume, executors, one-line refusals."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

TINY = ["run", "tsc", "--preset", "tiny", "--device", "cpu", "--set", "runs=2"]  # 2 x 2 x 2 = 8 units


def _metrics(folder):
    return json.loads((folder / "results.json").read_text())["metrics"]


def _snapshot(folder):
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def serial_metrics(tmp_path_factory):
    """Metrics of one uninterrupted serial run of the 8-unit grid."""
    out = tmp_path_factory.mktemp("serial") / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "sciprob", *TINY, "--executor", "serial", "--out", str(out)],
        capture_output=True,
        text=True,
        env=dict(os.environ, MPLBACKEND="Agg"),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return _metrics(out)


def test_killed_run_resumes_to_the_uninterrupted_metrics(run_cli, tmp_path, serial_metrics):
    killed = tmp_path / "killed"
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sciprob", *TINY, "--executor", "serial", "--out", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 300
    while len(list((killed / "units").glob("*.json"))) < 2:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list((killed / "units").glob("*.json")))
    assert 2 <= done_before < 8 and not (killed / "results.json").exists()

    resumed = run_cli(*TINY, "--executor", "serial", "--resume", out="killed")
    assert resumed.returncode == 0, resumed.stderr
    assert _metrics(killed) == serial_metrics
    invocations = json.loads((killed / "results.json").read_text())["invocations"]
    assert invocations[-1]["units_reused"] == done_before and invocations[-1]["units_run"] == 8 - done_before
    assert not list(killed.rglob("*.tmp"))

    before = _snapshot(killed)
    for change, named in [(["--set", "epochs=3"], "epochs"), (["--seed", "1"], "seed")]:
        res = run_cli(*TINY, *change, "--resume", out="killed")
        lines = [line for line in res.stderr.splitlines() if line.strip()]
        assert res.returncode != 0 and len(lines) == 1 and named in lines[0], res.stderr
    assert _snapshot(killed) == before


@pytest.mark.parametrize("executor", ["processes", "ray"])
def test_every_executor_gives_the_serial_metrics(run_cli, executor, serial_metrics):
    other = run_cli(*TINY, "--executor", executor, "--workers", "2", out=executor)
    assert other.returncode == 0, other.stderr
    assert _metrics(other.out) == serial_metrics  # exact: each unit's seed travels with it
    assert json.loads((other.out / "results.json").read_text())["invocations"][0]["executor"] == executor


def test_rerun_into_a_finished_folder_is_one_line(run_cli):
    first = run_cli("run", "tsc", "--preset", "tiny", "--device", "cpu", "--executor", "serial", out="r")
    assert first.returncode == 0, first.stderr
    before = _snapshot(first.out)
    again = run_cli("run", "tsc", "--preset", "tiny", "--device", "cpu", out="r")
    lines = [line for line in again.stderr.splitlines() if line.strip()]
    assert again.returncode == 2 and len(lines) == 1 and "--overwrite" in lines[0]
    assert _snapshot(first.out) == before
    report = (first.out / "report.md").read_bytes()
    (first.out / "report.md").unlink()
    rebuilt = run_cli("report", str(first.out))
    assert rebuilt.returncode == 0 and (first.out / "report.md").read_bytes() == report
