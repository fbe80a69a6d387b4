"""At most one live copy of a run: claims taken, honoured, and taken over from the dead."""

import json
import os
import socket
import stat
import subprocess
import sys

import pytest

from hpc import claim
from hpc.claim import Busy, Claim, claim_path
from hpc.run import Outcome, execute
from hpc.status import run_states
from hpc.sweep import Sweep


def _dead_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def _owner(**kw):
    return {"host": socket.gethostname(), "pid": os.getpid(), "job": None, "since": "t", **kw}


def test_a_live_claim_is_honoured_and_released(tmp_path):
    result = tmp_path / "exp" / "r.h5"
    mine = Claim(result).acquire()
    assert json.loads(claim_path(result).read_text())["pid"] == os.getpid()
    with pytest.raises(Busy, match=f"already being trained by process {os.getpid()} on {socket.gethostname()}"):
        Claim(result).acquire()
    mine.release()
    assert not claim_path(result).exists()
    Claim(result).acquire().release()


@pytest.mark.parametrize("left", ["dead", "half-written"])
def test_a_dead_or_half_written_claim_is_taken_over(tmp_path, left):
    left = json.dumps(_owner(pid=_dead_pid())) if left == "dead" else '{"host": "x", "pi'
    result = tmp_path / "r.h5"
    claim_path(result).write_text(left)
    old = claim_path(result).stat().st_mtime - claim.WRITING_S - 1  # half-written long ago: its writer died
    os.utime(claim_path(result), (old, old))
    taken = Claim(result).acquire()
    assert json.loads(claim_path(result).read_text())["pid"] == os.getpid()
    taken.release()


def test_a_claim_being_written_right_now_is_honoured(tmp_path):
    """Between a claimant's exclusive create and its write the file is empty: another process
    that reads it then must wait, not take it over (two `hpc resubmit`s at once on a busy
    machine both submitted before this)."""
    result = tmp_path / "r.h5"
    claim_path(result).write_text("")
    with pytest.raises(Busy, match="being claimed right now"):
        Claim(result).acquire()
    assert claim_path(result).read_text() == ""  # left to its writer


def test_an_owner_that_cannot_be_checked_is_honoured(tmp_path, monkeypatch):
    # a Slurm job while Slurm does not answer, or a process on another host
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "squeue").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "squeue").chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert claim.owner_alive(_owner(job="12345"))
    assert claim.owner_alive(_owner(host="another-node", pid=_dead_pid()))
    assert not claim.owner_alive(_owner(pid=_dead_pid()))


def test_execute_does_not_start_a_run_another_process_trains(tmp_path, capsys):
    result = tmp_path / "exp" / "r.h5"
    claim_path(result).parent.mkdir(parents=True)
    claim_path(result).write_text(json.dumps(_owner(pid=os.getppid())))  # alive: the test runner's parent
    calls = []

    def work(checkpoint):
        calls.append(1)
        return Outcome("completed", {})

    out = execute(result, work, run_id="r", config={}, config_yaml="")
    assert out["status"] == "busy" and calls == [] and not result.exists()
    assert "already being trained" in capsys.readouterr().out

    sweep = Sweep.create(tmp_path, "exp", "x:y")
    sweep.add_run("r", [], "")
    sweep.add_submission("local", None, ["r"], {})
    (state,) = run_states(sweep)
    assert state.status == "running" and f"process {os.getppid()}" in state.reason

    claim_path(result).write_text(json.dumps(_owner(pid=_dead_pid())))
    assert execute(result, work, run_id="r", config={}, config_yaml="")["status"] == "completed"
    assert calls == [1] and not claim_path(result).exists()
