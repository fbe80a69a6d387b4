"""What runs on a node: the settings from a profile and the record, the app loaded and called."""

import pytest
import yaml

from hpc import Profile, task
from hpc.layout import ROOT_VARIABLE


def test_task_settings_come_from_the_profile_and_the_record():
    settings = task.task_settings(
        Profile(cpus_per_task=4, gpus_per_task=1, shared_gpu=True, node_local_tmp="/local", xla_flags="--x"), "/w", "/r"
    )
    assert settings == {
        "cpus": 4,
        "shared_gpu": True,
        "tmp_base": "/local",
        "xla_flags": "--x",
        "workdir": "/w",
        "results_root": "/r",
    }
    assert task.task_settings({"cpus_per_task": 2}, "/w")["shared_gpu"] is False  # a mapping is a profile too


def test_a_task_calls_its_apps_entry_and_fails_unless_the_run_is_healthy(tmp_path, monkeypatch):
    (tmp_path / "tiny_task_app.py").write_text(
        "import hpc\n"
        "def entry(cfg):\n"
        "    return {'status': cfg.status, 'run_id': 'r1'}\n"
        "APP = hpc.App(name='tiny', entry=entry, prepare=lambda config, overrides: None)\n"
    )
    monkeypatch.setenv(task.PREPARED, "1")  # the hygiene is applied once per process: not again here
    monkeypatch.setenv(ROOT_VARIABLE, "")  # the task pins the root: monkeypatch undoes it after the test
    settings = {"workdir": str(tmp_path), "results_root": str(tmp_path / "root")}
    for status in task.TASK_OK:
        assert task.run_task("tiny_task_app:APP", yaml.safe_dump({"status": status}), settings)["status"] == status
    import os

    assert os.environ[ROOT_VARIABLE] == str(tmp_path / "root")  # the sweep's root, pinned
    with pytest.raises(task.RunFailed, match="run r1 ended with status stalled"):
        task.run_task("tiny_task_app:APP", yaml.safe_dump({"status": "stalled"}), settings)
    with pytest.raises(ValueError, match="tiny_task_app has no nothing"):
        task.run_task("tiny_task_app:nothing", "{}", settings)
    with pytest.raises(ValueError, match="'json:dumps' is not an hpc.App"):
        task.run_task("json:dumps", "{}", settings)
    assert task.run_task("tiny_task_app:entry", "{status: completed}", settings)["run_id"] == "r1"  # an older record
