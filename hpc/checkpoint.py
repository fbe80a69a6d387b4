"""A run's checkpoint: one HDF5 file beside its result, written atomically, and when to write it.

The workload asks `due(step)` after each step and, when due, hands `save` its whole state as
named arrays; it stops once `stop` is set. At the end it may `offer` its final state, which is
written only should the result not fit. `stop` is set by the signals a batch system sends
before it ends a task: SIGUSR2 (`timeout`: the time limit is near; sbatch `--signal`) and
SIGTERM (`terminated`: `scancel`, preemption, node shutdown).

    ckpt = Checkpoint(checkpoint_path(result), every_s=600)
    with ckpt.signals():
        state = ckpt.load()          # None: start from scratch
        ... train, calling ckpt.due(step) / ckpt.save(arrays) / ckpt.stop ...
"""

import contextlib
import pathlib
import signal
import threading
import time

import h5py
import numpy as np

from .atomic import atomic_path

SUFFIX = ".ckpt"  # <run id>.ckpt beside <run id>.h5: not a result file, so never globbed as one
CAUSES = {signal.SIGUSR2: "timeout", signal.SIGTERM: "terminated"}


def checkpoint_path(result_path) -> pathlib.Path:
    return pathlib.Path(result_path).with_suffix(SUFFIX)


class UnusableCheckpoint(ValueError):
    """Raised by a workload whose checkpoint does not fit its run (another model, another
    version of the code): `hpc.execute` moves the checkpoint aside, and a rerun starts over."""


class Checkpoint:
    """The checkpoint at `path`: due every `every_s` seconds and/or `every_steps` steps (either
    `None`: never on that count), and at once after a stop signal."""

    def __init__(self, path, every_s: float | None = 600.0, every_steps: int | None = None):
        for name, value in (("every_s", every_s), ("every_steps", every_steps)):
            if value is not None and not value > 0:
                raise ValueError(f"checkpoint `{name}` must be > 0 or null (never), got {value!r}.")
        self.path = pathlib.Path(path)
        self.every_s, self.every_steps = every_s, every_steps
        self.stop: str | None = None  # why training should stop: a value of CAUSES
        self.saved_step: int | None = None
        self._last_time, self._last_step = time.monotonic(), 0
        self._offered = None  # (a function giving the arrays, step): the state at the end of the work

    def due(self, step: int) -> bool:
        """Whether to save after step `step` (counted from the start of the run)."""
        if self.stop:
            return True
        if self.every_steps is not None and step - self._last_step >= self.every_steps:
            return True
        return self.every_s is not None and time.monotonic() - self._last_time >= self.every_s

    def save(self, arrays: dict, step: int) -> None:
        """Write `arrays` (name -> array; `/` in a name makes groups) as the checkpoint of the
        work done up to `step` (kept as the file's `step` attribute)."""
        with atomic_path(self.path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs["step"] = int(step)
            for name, value in arrays.items():
                f.create_dataset(name, data=np.asarray(value))
        self._last_time, self._last_step, self.saved_step = time.monotonic(), int(step), int(step)

    def offer(self, arrays, step: int) -> None:
        """The state at the end of the work (`arrays()` gives what `save` takes), written only
        should the run's result not be written (a full disk, a quota; `hpc.execute` calls
        `save_offered`): a rerun then resumes at the end instead of training again."""
        self._offered = (arrays, int(step))

    def save_offered(self) -> bool:
        """Save the offered state, if any (see `offer`). **Returns:** whether one was saved."""
        if self._offered is None:
            return False
        arrays, step = self._offered
        self.save(arrays(), step)
        return True

    def load(self) -> dict | None:
        """The saved arrays, or `None` when there is no checkpoint. A checkpoint that does not
        read is reported and moved aside (`.corrupt`), and the run starts over."""
        if not self.path.exists():
            return None
        try:
            out = {}
            with h5py.File(self.path, "r") as f:
                f.visititems(
                    lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
                )
                step = int(f.attrs.get("step", 0))
        except OSError as exc:
            aside = self.set_aside("corrupt")
            print(f"Checkpoint {self.path} does not read ({exc}); moved to {aside}, starting over.", flush=True)
            return None
        self.saved_step = self._last_step = step
        return out

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def set_aside(self, why: str) -> pathlib.Path:
        """Move the checkpoint to `<name>.<why>` (kept for a look, never resumed from)."""
        aside = self.path.with_name(f"{self.path.name}.{why}")
        self.path.replace(aside)
        return aside

    def signals(self):
        """While inside, SIGUSR2 and SIGTERM set `stop` instead of ending the process (main
        thread only; elsewhere nothing changes). The previous handlers come back after."""

        def stop(cause: str, name: str) -> None:
            self.stop = self.stop or cause
            print(f"Received {name}: checkpointing, then stopping.", flush=True)

        return stop_signals(stop, self)


@contextlib.contextmanager
def stop_signals(on_signal, value=None):
    """While inside, SIGUSR2 and SIGTERM call `on_signal(cause, signal name)` (`cause`: a value
    of `CAUSES`) instead of ending the process; main thread only (elsewhere nothing changes).
    The previous handlers come back after. Yields `value`."""
    if threading.current_thread() is not threading.main_thread():
        yield value
        return
    previous = {
        s: signal.signal(s, lambda signum, frame: on_signal(CAUSES[signum], signal.Signals(signum).name))
        for s in CAUSES
    }
    try:
        yield value
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
