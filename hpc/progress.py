"""Training progress: a live bar on a terminal, plain periodic lines in a log file."""

import sys
import time


class Progress:
    """Report `update(step, **fields)` calls for `total` steps.

    On a terminal (or `mode="bar"`) a tqdm bar shows steps/s and the fields; otherwise (a
    Slurm log, or `mode="log"`) one line is printed every `every_s` seconds and at the end.
    """

    def __init__(self, total: int, desc: str = "train", mode: str = "auto", every_s: float = 15.0, stream=None):
        if mode not in ("auto", "bar", "log", "off"):
            raise ValueError(f"`progress` must be one of auto, bar, log, off; got {mode!r}.")
        self.stream = stream or sys.stdout
        if mode == "auto":
            mode = "bar" if self.stream.isatty() else "log"
        self.mode, self.total, self.desc, self.every_s = mode, total, desc, every_s
        self.start = self.last = time.monotonic()
        self.first = None  # the step before this process's first update (a resumed run starts late)
        self.bar = None

    def update(self, step: int, **fields) -> None:
        if self.first is None:  # rates count the steps this process made, not those it resumed from
            self.first, self.start = step - 1, time.monotonic()
            if self.mode == "bar":
                from tqdm import tqdm

                self.bar = tqdm(total=self.total, initial=self.first, desc=self.desc, file=self.stream, unit="step")
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix({k: _fmt(v) for k, v in fields.items()}, refresh=False)
            return
        now = time.monotonic()
        if self.mode == "log" and (now - self.last >= self.every_s or step == self.total):
            self.last = now
            rate = (step - self.first - 1) / (now - self.start) if now > self.start else 0.0
            extra = " ".join(f"{k}={_fmt(v)}" for k, v in fields.items())
            print(f"[{self.desc}] step {step}/{self.total} {rate:.2f} steps/s {extra}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _fmt(value):
    return f"{value:.4g}" if isinstance(value, float) else value
