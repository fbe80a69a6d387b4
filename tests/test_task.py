"""What runs on a node: the settings from a profile and the record, the app loaded and called."""

import os
import pathlib
import signal
import sys
import threading

import h5py
import pytest
import yaml

from conftest import LSQ_DIR
from hpc import Profile, task
from hpc.layout import ROOT_VARIABLE
from hpc.store import read_note, read_status


def test_task_settings_come_from_the_profile_and_the_record():
    profile = Profile(cpus_per_task=4, gpus_per_task=1, shared_gpu=True, node_local_tmp="/local", xla_flags="--x")
    settings = task.TaskSettings(profile, "/w", "/r")
    assert settings.profile == profile  # one form: the runs take it as their config's `cluster`
    assert (settings.workdir, settings.results_root) == ("/w", "/r")
    assert task.TaskSettings({"cpus_per_task": 2}, "/w").profile == Profile(cpus_per_task=2)  # a mapping is made one
    assert task.TaskSettings().cluster == Profile()  # none given: the defaults (each run keeps its planned one)
    with pytest.raises(ValueError, match="`cluster.cpus` is not a cluster setting"):
        task.TaskSettings({"cpus": 2})


def test_a_task_applies_its_profile_to_the_process(tmp_path, monkeypatch):
    monkeypatch.setattr(task.tempfile, "tempdir", None)
    saved = dict(os.environ)  # what the task sets is undone after the test, every variable of it
    try:
        for var in [v for v in os.environ if v.startswith("SLURM")] + [task.PREPARED]:
            os.environ.pop(var, None)
        profile = Profile(cpus_per_task=1, node_local_tmp=str(tmp_path), xla_flags="--xla_dump_to=/dev/null")
        task.apply_task_env(task.TaskSettings(profile, "/w", str(tmp_path / "root")))
        assert os.environ[ROOT_VARIABLE] == str(tmp_path / "root") and os.environ["OMP_NUM_THREADS"] == "1"
        assert "--xla_dump_to=/dev/null" in os.environ["XLA_FLAGS"]
        assert os.environ["TMPDIR"].startswith(str(tmp_path)) and os.environ[task.PREPARED] == "1"
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_a_run_takes_the_cluster_settings_its_task_was_submitted_with():
    # the sweep planned max_requeues 3; a resubmit sent the task with 10: the run reads 10
    planned = yaml.safe_dump({"seed": 1, "cluster": Profile(max_requeues=3).to_dict()})
    settings = task.TaskSettings(Profile(max_requeues=10, checkpoint_steps=5), "/w")
    config = task.submitted_config(planned, settings)
    assert config.cluster.max_requeues == 10 and config.cluster.checkpoint_steps == 5 and config.seed == 1
    assert task.submitted_config(planned, task.TaskSettings()).cluster.max_requeues == 3  # no profile given: as planned


def test_a_task_calls_its_apps_entry_and_fails_unless_the_run_is_healthy(tmp_path, monkeypatch):
    (tmp_path / "tiny_task_app.py").write_text(
        "import hpc\n"
        "def entry(cfg):\n"
        "    return {'status': cfg.status, 'run_id': 'r1'}\n"
        "APP = hpc.App(name='tiny', entry=entry, prepare=lambda config, overrides: None)\n"
    )
    monkeypatch.setenv(task.PREPARED, "1")  # the hygiene is applied once per process: not again here
    monkeypatch.setenv(ROOT_VARIABLE, "")  # the task pins the root: monkeypatch undoes it after the test
    settings = task.TaskSettings(None, str(tmp_path), str(tmp_path / "root"))
    for status in task.TASK_OK:
        assert task.run_task("tiny_task_app:APP", yaml.safe_dump({"status": status}), settings)["status"] == status
    assert os.environ[ROOT_VARIABLE] == str(tmp_path / "root")  # the sweep's root, pinned
    with pytest.raises(task.RunFailed, match="run r1 ended with status stalled"):
        task.run_task("tiny_task_app:APP", yaml.safe_dump({"status": "stalled"}), settings)
    with pytest.raises(ValueError, match="tiny_task_app has no nothing"):
        task.run_task("tiny_task_app:nothing", "{}", settings)
    with pytest.raises(ValueError, match="'json:dumps' is not an hpc.App"):
        task.run_task("json:dumps", "{}", settings)
    assert task.run_task("tiny_task_app:entry", "{status: completed}", settings)["run_id"] == "r1"  # an older record


def _lsq_runs(root, *changes) -> list:
    """`(run id, result path, config YAML)` of second-app (`tests/lsq_app`) runs, as a sweep's
    record gives them to a task, one per mapping of config changes."""
    sys.path.insert(0, str(LSQ_DIR))
    import lsq

    base = yaml.safe_load((LSQ_DIR / "conf" / "config.yaml").read_text())
    base.pop("defaults"), base.pop("hydra")
    out = []
    for change in changes:
        config = {**base, "results_root": str(root), **change}
        rid, _, path = lsq.place(config)
        out.append((rid, str(path), yaml.safe_dump(config)))
    return out


@pytest.fixture
def in_task(tmp_path, monkeypatch):
    monkeypatch.setenv(task.PREPARED, "1")
    monkeypatch.setenv(ROOT_VARIABLE, "")
    for var in [v for v in os.environ if v.startswith("SLURM_")]:
        monkeypatch.delenv(var)  # outside Slurm: no requeue
    return task.TaskSettings(None, str(LSQ_DIR), str(tmp_path / "root"))  # the default max_requeues (3)


def test_the_runs_of_a_task_train_in_turn_and_a_failure_stops_none(tmp_path, in_task):
    flag = tmp_path / "fail"
    flag.touch()
    runs = _lsq_runs(
        tmp_path / "root", {"degree": 1}, {"degree": 2, "fail_degree": 2, "fail_flag": str(flag)}, {"degree": 3}
    )
    with pytest.raises(task.RunFailed, match=f"1 of the task's 3 runs did not complete: {runs[1][0]} \\(RuntimeError"):
        task.run_tasks("lsq:APP", runs, in_task)
    assert [read_status(path)["status"] for _, path, _ in runs] == ["completed", "failed", "completed"]
    flag.unlink()
    outs = task.run_tasks("lsq:APP", runs, in_task)  # a rerun skips the completed runs and trains the failed one
    assert [o["status"] for o in outs] == ["skipped", "completed", "skipped"]


def test_a_time_limit_in_a_task_starts_no_further_run(tmp_path, in_task):
    """SIGUSR2 (the time limit near) with no requeue (outside Slurm): the run in progress ends
    `timeout` with its checkpoint, and the runs after it are not started: each gets a note that
    `hpc status` shows as timeout."""
    runs = _lsq_runs(tmp_path / "root", {"steps": 40, "step_s": 0.05}, {"degree": 2}, {"degree": 4})
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGUSR2))
    timer.start()
    try:
        with pytest.raises(task.RunFailed, match="not started: time limit"):
            task.run_tasks("lsq:APP", runs, in_task)
    finally:
        timer.cancel()
    first = read_status(runs[0][1])
    assert first["status"] == "timeout" and "time limit reached at step" in first["message"]
    assert pathlib.Path(runs[0][1]).with_suffix(".ckpt").exists()  # kept: a resubmit resumes it
    for _, path, _ in runs[1:]:
        assert not pathlib.Path(path).exists()
        note = read_note(path)
        assert note["status"] == "timeout" and note["message"].startswith("not started: its task (3 runs per task)")
    outs = task.run_tasks("lsq:APP", runs, in_task)  # the rerun resumes the first and trains the others
    assert [o["status"] for o in outs] == ["completed"] * 3 and read_note(runs[1][1]) is None
    with h5py.File(runs[0][1]) as f:  # resumed: this pass made only the steps after the checkpoint
        steps = f["passes/steps"][()]
        assert 1 < steps[0] and steps[-1] == 40


# a changed, valid value of every cluster setting, as `hpc resubmit --set KEY=VALUE` would take it
RESUBMIT_CHANGES = {
    "name": "other",
    "submit": "local",
    "detach": "true",
    "hold": "true",
    "partition": "debug",
    "account": "lab-prj",
    "qos": "high",
    "time_min": "240",
    "cpus_per_task": "4",
    "mem_per_cpu_mb": "8000",
    "gpus_per_task": "2",
    "gpu_type": "a100",
    "shared_gpu": "true",
    "gpu_mem_fraction": "0.5",
    "runs_per_task": "8",
    "ensemble": "4",
    "array_parallelism": "16",
    "max_submit_jobs": "100",
    "checkpoint_min": "2.5",
    "checkpoint_steps": "50",
    "max_requeues": "10",
    "signal_before_s": "90",
    "node_local_tmp": "/local",
    "results_root": "/scratch/r",
    "python": "/opt/py/bin/python",
    "xla_flags": "--xla_cpu_multi_thread_eigen=false",
    "setup": "[module load gcc]",
    "environment": "{kind: venv, venv: /scratch/venv}",
}


@pytest.mark.parametrize("key", sorted(RESUBMIT_CHANGES))
def test_every_setting_a_resubmit_sets_reaches_the_tasks_runs_and_sbatch(tmp_path, key):
    from omegaconf import OmegaConf

    from hpc import launch
    from hpc.profile import FIELDS, slurm_options
    from hpc.sweep import Sweep

    assert set(RESUBMIT_CHANGES) == set(FIELDS)  # a new field gets a line here
    planned = Profile(gpus_per_task=1) if key in ("gpu_type", "gpu_mem_fraction", "shared_gpu") else Profile()
    planned = planned.replace(runs_per_task=4) if key == "ensemble" else planned
    sweep = Sweep.create(tmp_path, "exp", "train:APP")
    sweep.add_run("r1", [], yaml.safe_dump({"seed": 1, "cluster": planned.to_dict()}))
    sweep.add_submission("local", None, ["r1"], planned.to_dict())
    spelling = f"cluster.{key}" if len(key) % 2 else key  # either spelling is taken
    profile = launch.resubmit_profile(sweep, ["r1"], [f"{spelling}={RESUBMIT_CHANGES[key]}"])
    wanted = Profile.from_dict({**planned.to_dict(), key: yaml.safe_load(RESUBMIT_CHANGES[key])}).to_dict()[key]
    assert profile.to_dict()[key] == wanted and getattr(planned, key) != getattr(profile, key)
    # what the task's runs read as their config's `cluster` (the lifeline, `hpc.Profile.from_dict`)
    config = task.submitted_config(sweep.config_yaml("r1"), task.TaskSettings(profile, "/w"))
    assert config.cluster[key] == wanted
    assert Profile.from_dict(OmegaConf.to_container(config.cluster)) == profile
    if key in ("partition", "account", "qos", "time_min", "cpus_per_task", "mem_per_cpu_mb", "gpus_per_task"):
        assert slurm_options(profile) != slurm_options(planned)  # and what sbatch is asked for
