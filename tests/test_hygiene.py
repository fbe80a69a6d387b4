"""A task's thread, temp-dir and file-locking settings, from Slurm's environment."""

import os

import pytest

from hpc.hygiene import private_tmp, task_env_vars
from hpc.slurm.env import slurm_info


def test_thread_settings_from_a_slurm_environment(tmp_path):
    info = slurm_info(
        {"SLURM_CPUS_PER_TASK": "4", "SLURM_ARRAY_JOB_ID": "12", "SLURM_ARRAY_TASK_ID": "3", "HOME": "/x"}
    )
    assert info == {"cpus_per_task": "4", "array_job_id": "12", "array_task_id": "3"}
    env = task_env_vars(int(info["cpus_per_task"]), shared_gpu=False, tmp_dir="/tmp/t")
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "4"
    assert "XLA_FLAGS" not in env and "XLA_PYTHON_CLIENT_PREALLOCATE" not in env
    assert env["TMPDIR"] == "/tmp/t"
    assert env["HDF5_USE_FILE_LOCKING"] == "FALSE"
    one = task_env_vars(1, shared_gpu=True, tmp_dir="/t")
    assert one["XLA_FLAGS"] == "--xla_cpu_multi_thread_eigen=false" and one["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    with pytest.raises(ValueError, match="`cpus_per_task`"):
        task_env_vars(0, shared_gpu=False, tmp_dir="/t")


def test_a_private_tmp_is_made_under_the_node_local_base(tmp_path):
    path = private_tmp(str(tmp_path), "hpc-task-12_3")
    assert path == tmp_path / "hpc-task-12_3" and path.is_dir() and os.access(path, os.W_OK)
