"""Shared fixtures: run the command line in a subprocess and read its outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


class CLIResult:
    """Exit code, output and (for runs) the output folder of one CLI call."""

    def __init__(self, proc: subprocess.CompletedProcess, out: Path | None):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.out = out

    def results(self) -> dict:
        assert self.out is not None
        return json.loads((self.out / "results.json").read_text())


@pytest.fixture
def run_cli(tmp_path):
    """Call ``python -m sciprob ARGS...`` on the CPU; ``out=`` adds ``--out`` in tmp_path.

    Usage: ``res = run_cli("run", "tsc", "--preset", "tiny", out="tsc")``.
    """

    def _run(*args: str, out: str | None = None, timeout: float = 600) -> CLIResult:
        cmd = [sys.executable, "-m", "sciprob", *args]
        out_dir = None
        if out is not None:
            out_dir = tmp_path / out
            cmd += ["--out", str(out_dir)]
        env = dict(os.environ, SCIPROB_DEBUG="", MPLBACKEND="Agg")
        env.pop("SCIPROB_DEBUG")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path)
        return CLIResult(proc, out_dir)

    return _run
