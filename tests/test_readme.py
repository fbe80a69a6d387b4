"""The README's tour, run as written (each line a shell command) in a fresh results root
(`SCRATCH`) on the local Slurm cluster: a run, a sweep as one array job, status, wait,
failed, resubmit, report and `hpc runs`."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

from conftest import fenced_bash_block

ROOT = pathlib.Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def tour_commands() -> list[str]:
    """The lines of the fenced block after the README's `<!-- tour` marker, comments dropped."""
    block = fenced_bash_block("README.md", "<!-- tour")
    return [re.sub(r"\s+#.*$", "", line).strip() for line in block.splitlines() if line.strip()]


def test_the_tour_is_the_commands_it_promises():
    commands = tour_commands()
    assert commands[0].startswith("python train.py ") and commands[1].startswith("python train.py -m ")
    assert [c.split()[1] for c in commands[2:]] == ["status", "wait", "failed", "resubmit", "report", "runs"]


def test_the_readme_tour_runs_as_written(tmp_path, slurm_cluster):
    env = {
        **os.environ,
        "SCRATCH": str(tmp_path / "scratch"),
        "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    (tmp_path / "scratch").mkdir()
    outputs = []
    for command in tour_commands():
        done = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        outputs.append(done.stdout)
    root = tmp_path / "scratch" / "neuralode-hpc" / "tour"
    results = sorted(p.stem for p in root.glob("*.h5"))
    assert len(results) == 3  # the single run, which the sweep finds completed, and two more
    assert "1 already completed" in outputs[1] and "Submitted 2 runs as 1 array job(s)" in outputs[1], outputs[1]
    assert re.search(r"completed 3\b", outputs[3]), outputs[3]  # after `hpc wait`
    assert "0 of 3 runs did not complete" in outputs[4]
    assert "Nothing to resubmit" in outputs[5]
    assert list(root.glob("sweeps/*/report/report.html"))
    assert all(run_id in outputs[7] for run_id in results), outputs[7]
