"""At most one live copy of a run: a claim file beside its result names the process training it.

`<run id>.claim` (JSON: host, pid, Slurm job id, time) is created with `O_EXCL` when a run
starts and removed when it ends. A claim whose owner is gone (its Slurm job no longer pending
or running, or its process dead on this host) is taken over, so a crash never blocks a run.
An owner that cannot be checked (Slurm unreachable, a process on another host) is honoured.
"""

import datetime
import json
import os
import pathlib
import socket
import time

from . import scheduler
from .atomic import write_error

SUFFIX = ".claim"


class Busy(RuntimeError):
    """Another live process owns the run."""


def claim_path(result_path) -> pathlib.Path:
    return pathlib.Path(result_path).with_suffix(SUFFIX)


def me() -> dict:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "job": scheduler.here().env().job_id,
        "since": datetime.datetime.now().astimezone().isoformat(),
    }


def owner_text(owner: dict) -> str:
    """Who holds a claim, for a message: `Slurm job 12 on node3 (since ...)` or `process ...`."""
    if not owner:
        return "another process, writing its claim"
    where = f"Slurm job {owner['job']}" if owner.get("job") else f"process {owner.get('pid')}"
    return f"{where} on {owner.get('host')} (since {owner.get('since', '?')})"


def owner_alive(owner: dict, live_jobs: set[str] | None = None) -> bool:
    """Whether the claim's owner may still be training. `live_jobs`: the raw ids of the
    scheduler's jobs pending or running (asked here when not given)."""
    job = owner.get("job")
    if job:
        if job == scheduler.here().env().job_id:
            return False  # this very task, started again after a requeue
        try:
            return job in (live_jobs if live_jobs is not None else scheduler.cluster().live_jobs())
        except scheduler.Unreachable:
            return True
    return process_alive(owner.get("host"), owner.get("pid")) is not False


def process_alive(host, pid) -> bool | None:
    """Whether process `pid` of `host` lives; `None` when it cannot be told from here
    (another host, a malformed record)."""
    if host != socket.gethostname():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError):
        return None if not isinstance(pid, int) else True
    return True


WRITING_S = 30  # a claim's owner writes it within this of creating it; an unreadable one older is dead


def _written_within(path, seconds: float) -> bool:
    """Whether `path` was modified within the last `seconds` (a missing file: no)."""
    try:
        return time.time() - os.stat(path).st_mtime < seconds
    except FileNotFoundError:
        return False


def read(path) -> dict | None:
    try:
        return json.loads(pathlib.Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # half-written: by its owner this instant, or by one that died (`WRITING_S`)


class Claim:
    """This process's claim on a run; `release()` gives it up."""

    def __init__(self, result_path):
        self.path = claim_path(result_path)
        self.owner = me()

    def acquire(self) -> "Claim":
        """Claim the run, taking over a dead owner's claim; raises `Busy` naming a live one."""
        for _ in range(3):
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)  # less the umask
            except FileExistsError:
                owner = read(self.path)
                if owner is None:
                    continue  # released meanwhile
                if owner and owner_alive(owner):
                    raise Busy(f"already being trained by {owner_text(owner)}; claim {self.path}")
                if not owner and _written_within(self.path, WRITING_S):  # its owner may be writing it now
                    raise Busy(f"being claimed right now by another process; claim {self.path}")
                self.path.unlink(missing_ok=True)  # its owner is gone
                continue
            except OSError as exc:
                raise write_error(exc, self.path) from exc
            try:
                with os.fdopen(fd, "w") as handle:
                    json.dump(self.owner, handle)
            except OSError as exc:  # a full disk: no empty claim is left behind to puzzle anyone
                self.path.unlink(missing_ok=True)
                raise write_error(exc, self.path) from exc
            return self
        raise Busy(f"could not claim {self.path}: other processes keep claiming it")

    def release(self) -> None:
        if read(self.path) == self.owner:
            self.path.unlink(missing_ok=True)
