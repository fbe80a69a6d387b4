"""The door to the scheduler (`hpc.scheduler`): what the core asks, answered by the Slurm
backend (from recorded output) and by the local one; and the rule that keeps it one door."""

import ast
import os
import pathlib

import pytest

import hpc
from hpc import launch, scheduler, slurm
from hpc.slurm.backend import SlurmScheduler
from hpc.status import STATES, run_states
from hpc.sweep import Sweep

RECORDED = pathlib.Path(__file__).parent / "recorded"
HPC = pathlib.Path(hpc.__file__).parent


def test_a_slurm_task_knows_itself_from_its_variables():
    variables = {
        "SLURM_JOB_ID": "57",
        "SLURM_ARRAY_JOB_ID": "41",
        "SLURM_ARRAY_TASK_ID": "3",
        "SLURM_CPUS_PER_TASK": "2",
        "SLURMD_NODENAME": "compute-a5",
        "SLURM_RESTART_COUNT": "1",
        "HOME": "/home/u",
    }
    env = SlurmScheduler().env(variables)
    assert (env.job_id, env.task_name, env.cpus, env.node, env.restart_count) == ("57", "41_3", 2, "compute-a5", 1)
    assert env.fields["array_task_id"] == "3" and "HOME" not in str(env.fields)  # what a result records
    outside = SlurmScheduler().env({"HOME": "/home/u"})
    assert outside == scheduler.TaskEnv() and outside.task_name is None and outside.restart_count == 0


def test_a_process_is_a_slurm_task_inside_a_job_and_a_local_one_outside(monkeypatch):
    for var in [v for v in os.environ if v.startswith("SLURM")]:
        monkeypatch.delenv(var)
    assert scheduler.here() is launch.backend("local") and scheduler.here().env() == scheduler.TaskEnv()
    monkeypatch.setenv("SLURM_JOB_ID", "57")
    assert scheduler.here() is launch.backend("slurm") is scheduler.cluster()
    assert scheduler.here().env().job_id == "57"
    with pytest.raises(ValueError, match="no scheduler called 'pbs'; there are: local, slurm"):
        launch.backend("pbs")


def test_the_local_backend_has_no_jobs_to_list_requeue_or_cancel():
    local = launch.backend("local")
    assert local.installed() and local.unanswered() is None
    assert local.tasks(["41"], ["grid"]) == {} and local.live_jobs() == set() and local.allocated_cpus("1", "n") == []
    assert local.preemption("41", 0) is None and local.final_state("/x", "41_0", "FAILED") == "FAILED"
    with pytest.raises(NotImplementedError, match="local cannot requeue"):
        local.requeue("41")


def test_slurm_states_are_states_we_know():
    backend = launch.backend("slurm")
    assert set(backend.active.values()) | set(backend.final.values()) <= set(STATES)
    assert backend.completed not in backend.final and backend.completed not in backend.active


class RecordedSlurm(SlurmScheduler):
    """Slurm as the recorded `sacct` listing shows it (`tests/recorded/sacct.txt`)."""

    def tasks(self, job_ids=(), names=()):
        listed = slurm.read_listing((RECORDED / "sacct.txt").read_text())
        return {t.task_id: t for t in listed if t.job_id in set(job_ids) or t.name in set(names)}

    def live_jobs(self):
        return set()


def test_run_states_from_recorded_slurm_output(tmp_path):
    sweep = Sweep.create(tmp_path, "grid", "train:APP")
    for rid in "abcdef":
        sweep.add_run(rid, [f"x={rid}"], "x: 1\n")
    sweep.add_submission("slurm", "41", list("abcde"), {}, [f"41_{i}" for i in range(5)])
    sweep.add_submission("manifest", None, ["f"], {}, job_name="grid-20261202-044209-008b-s1")  # found by name
    states = {s.run_id: s for s in run_states(sweep, RecordedSlurm())}
    assert {r: s.status for r, s in states.items()} == {
        "a": "lost",  # COMPLETED without a result
        "b": "timeout",
        "c": "cancelled",
        "d": "out_of_memory",
        "e": "lost",  # 41_4 is in a pending range that the listing leaves out: no task Slurm knows
        "f": "node_fail",
    }
    assert states["b"].reason.startswith("Slurm TIMEOUT") and states["f"].job == "42"
    assert "the task ended without writing a result" in states["a"].reason


def test_a_failed_task_whose_log_says_out_of_memory_is_out_of_memory(tmp_path):
    backend = launch.backend("slurm")
    assert backend.final_state(tmp_path, "43_0", "FAILED") == "FAILED"
    (tmp_path / "slurm").mkdir()
    log = tmp_path / "slurm" / "43_0.out"
    log.write_text("...\nslurmstepd: error: Detected 1 oom-kill event(s) in StepId=43.0\n")
    assert backend.final_state(tmp_path, "43_0", "FAILED") == "OUT_OF_MEMORY"
    assert backend.final_state(tmp_path, "43_0", "TIMEOUT") == "TIMEOUT"


def _imports(path: pathlib.Path) -> set[str]:
    """The modules `path` (a module of `hpc`) imports, relative imports resolved."""
    package = ["hpc", *path.relative_to(HPC).parent.parts]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            out.add(module)
            out.update(f"{module}.{alias.name}" for alias in node.names)
    return out


def test_the_core_never_imports_the_slurm_backend_nor_the_backend_the_core_task():
    core = [p for p in HPC.rglob("*.py") if "slurm" not in p.relative_to(HPC).parts]
    importing = {p.name for p in core if any(m.startswith("hpc.slurm") for m in _imports(p))}
    assert importing == {"launch.py"}  # its choice of backend
    backend = [p for p in (HPC / "slurm").rglob("*.py")]
    assert not [p.name for p in backend if any(m.startswith(("hpc.task", "hpc.run")) for m in _imports(p))]
