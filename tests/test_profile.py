"""The cluster profile: one checked dataclass, its defaults, and the one mapping to Slurm's options."""

import re

import pytest
import yaml

from conftest import ROOT
from hpc import Profile, slurm_options
from hpc.slurm.plan import write_plan
from hpc.slurm.submit import submitit_parameters
from hpc.sweep import Sweep

ZARATAN = {
    "submit": "slurm",
    "partition": "standard",
    "account": "my-alloc",
    "qos": None,
    "time_min": 240,
    "cpus_per_task": 4,
    "mem_per_cpu_mb": 4000,
    "gpus_per_task": 0,
    "array_parallelism": 50,
    "setup": ["module load python"],
}


def test_the_defaults_are_the_ones_the_config_shows():
    """`conf/cluster/default.yaml` documents the profile; the dataclass is the one source of defaults."""
    shown = yaml.safe_load((ROOT / "conf" / "cluster" / "default.yaml").read_text())
    assert Profile.from_dict(shown) == Profile()
    assert set(shown) == {f for f in Profile().to_dict()}  # every field is shown, none is made up


def test_submitit_parameters_from_a_profile():
    # What reaches sbatch is checked on the real cluster (test_slurm: `scontrol show job`).
    params = submitit_parameters(Profile.from_dict(ZARATAN), "grid")
    assert params == {
        "job_name": "grid",
        "time": 240,
        "cpus_per_task": 4,
        "ntasks_per_node": 1,
        "array_parallelism": 50,
        "stderr_to_stdout": True,
        "signal_delay_s": 300,
        "additional_parameters": {"requeue": True},
        "partition": "standard",
        "account": "my-alloc",
        "mem_per_cpu": "4000M",
        "setup": ["module load python"],
    }


@pytest.mark.slow  # runs both submission paths
def test_both_submission_paths_ask_slurm_for_the_same(tmp_path):
    """The plain sbatch script's directives and submitit's parameters come from `slurm_options`."""
    profile = Profile.from_dict({**ZARATAN, "gpus_per_task": 1, "qos": "high"})
    options = slurm_options(profile)
    assert options == {
        "partition": "standard",
        "account": "my-alloc",
        "qos": "high",
        "time": 240,
        "cpus_per_task": 4,
        "mem_per_cpu": "4000M",
        "gpus_per_task": 1,
    }
    assert {k: v for k, v in submitit_parameters(profile, "g").items() if k in options} == options
    sweep = Sweep.create(tmp_path, "exp", "app:APP")
    sweep.add_run("r1", ["x=1"], "")
    script = write_plan(sweep, ["r1"], profile, str(tmp_path), "app.py")[0].read_text()
    shown = dict(re.findall(r"^#SBATCH --([\w-]+)=(\S+)$", script, re.M))
    assert {k.replace("_", "-"): str(v) for k, v in options.items()}.items() <= shown.items()


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("mem_per_cpu_mb", "abc", "`cluster.mem_per_cpu_mb` must be an integer >= 1 or null, got 'abc'"),
        ("time_min", 0, "`cluster.time_min` must be an integer >= 1, got 0"),
        ("shared_gpu", "yes", "`cluster.shared_gpu` must be true or false, got 'yes'"),
        ("max_requeues", -1, "`cluster.max_requeues` must be an integer >= 0, got -1"),
        ("checkpoint_min", 0, "`cluster.checkpoint_min` must be a number > 0 or null, got 0"),
        ("setup", "module load python", "`cluster.setup` must be a list of strings"),
        ("partition", 5, "`cluster.partition` must be a string or null, got 5"),
        ("submit", "cloud", "`cluster.submit`='cloud'; allowed: auto, slurm, local"),
        ("parition", "debug", "`cluster.parition` is not a cluster setting; they are: name, submit"),
        ("environment", {"kind": "docker"}, "`cluster.environment.kind`='docker'; allowed: none, packed, conda, venv"),
        ("environment", {"kind": "packed"}, "`cluster.environment.tarball` must name the `hpc pack` tarball"),
        ("signal_before_s", 120, "`cluster.signal_before_s`=120 warns of the time limit before half of a 1-minute job"),
    ],
)
def test_every_field_is_checked_when_the_profile_is_made(field, value, message):
    local = {"submit": "local", "time_min": 1, "cpus_per_task": 1}
    assert Profile.from_dict(local).time_min == 1
    with pytest.raises(ValueError, match=re.escape(message)):
        Profile.from_dict({**local, field: value})


def test_the_warning_signal_scales_with_the_time_limit():
    # never 60 s out of a 60 s job; at most 5 minutes out of days
    assert [Profile(time_min=m).signal_s for m in (1, 2, 10, 60, 7 * 24 * 60)] == [20, 20, 60, 300, 300]
    assert Profile(time_min=1, signal_before_s=25).signal_s == 25


def test_a_profile_round_trips_through_the_record():
    profile = Profile.from_dict({**ZARATAN, "environment": {"kind": "venv", "venv": "/v"}})
    assert Profile.from_dict(profile.to_dict()) == profile and Profile.from_dict(profile) is profile
    assert profile.replace(time_min=30).time_min == 30 and profile.time_min == 240  # frozen
    assert hash(profile) == hash(Profile.from_dict(profile.to_dict()))  # a sweep groups runs by profile
