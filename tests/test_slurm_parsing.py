"""Slurm's command output -> our task states, on recorded output (`tests/recorded/`), as
submitit tests its `read_info`; the live cluster tests (`test_slurm.py`) check the commands."""

import pathlib

from hpc import slurm
from hpc.status import STATES

RECORDED = pathlib.Path(__file__).parent / "recorded"


def _states(tasks) -> dict[str, str]:
    return {t.task_id: t.state for t in tasks}


def test_scontrol_lines_expand_pending_ranges_and_keep_final_states():
    tasks = slurm.read_jobs((RECORDED / "scontrol_show_job.txt").read_text())
    states = _states(tasks)
    assert states["1_0"] == states["1_1"] == "COMPLETED"
    assert [states[f"3_{i}"] for i in range(4)] == ["FAILED"] * 4 and states["4_0"] == "FAILED"
    assert states["8_0"] == "RUNNING" and [states[f"8_{i}"] for i in (1, 2, 3)] == ["PENDING"] * 3  # 1-3%1
    by_id = {t.task_id: t for t in tasks}
    assert by_id["8_2"].job_id == "8" and by_id["8_2"].index == 2 and by_id["8_2"].name.endswith("-s0")
    assert len(tasks) == 11


def test_squeue_lines():
    states = _states(slurm.read_listing((RECORDED / "squeue.txt").read_text()))
    assert states == {"8_0": "RUNNING", "8_1": "PENDING", "8_2": "PENDING", "8_3": "PENDING"}


def test_sacct_lines_drop_array_summaries_and_the_reason_after_a_state():
    tasks = slurm.read_listing((RECORDED / "sacct.txt").read_text())
    states = _states(tasks)
    assert states == {
        "41_0": "COMPLETED",
        "41_1": "TIMEOUT",
        "41_2": "CANCELLED",
        "41_3": "OUT_OF_MEMORY",
        "42": "NODE_FAIL",
        "43": "FAILED",
    }
    assert {t.task_id: t.index for t in tasks}["42"] is None
    for state in states.values():  # every state we read maps to one we print
        assert (slurm.FINAL.get(state) or slurm.ACTIVE.get(state) or "completed") in STATES


def test_the_cpus_slurm_allocated_are_read_from_scontrol():
    shown = (
        "JobId=5 JobName=x\n   NumNodes=1 NumCPUs=4 NumTasks=1 CPUs/Task=4\n"
        "     Nodes=node7 CPU_IDs=0-1,64-65 Mem=16000 GRES=\n   MinCPUsNode=4\n"
    )
    assert slurm.allocated_cpus(shown, "node7") == [0, 1, 64, 65]
    two = shown.replace("     Nodes=node7 CPU_IDs=0-1,64-65", "     Nodes=a CPU_IDs=3\n     Nodes=b CPU_IDs=5-6")
    assert slurm.allocated_cpus(two, "b") == [5, 6] and slurm.allocated_cpus(two, "c") == []


def test_preemption_is_read_from_the_job_line():
    assert slurm.preemption_shown("JobId=7 JobState=PENDING Restarts=2 PreemptTime=None", 1) == "requeued"
    assert slurm.preemption_shown("JobId=7 JobState=RUNNING Restarts=0 PreemptTime=Unknown", 0) is None
