"""The sweep record: what was submitted, so status, failed and resubmit work from it alone."""

import dataclasses
import datetime
import json
import os
import pathlib
import tempfile

RECORD = "sweep.json"


@dataclasses.dataclass
class Sweep:
    """A sweep directory `<results root>/<experiment>/sweeps/<sweep id>/` and its record.

    `runs` maps run id -> `{"overrides": [...]}`; each run's resolved config is kept in
    `configs/<run id>.yaml`; `submissions` lists each array job (or local batch) with the
    run ids in array-index order.
    """

    path: pathlib.Path
    sweep_id: str
    experiment: str
    results_root: str
    entry: str
    created: str
    argv: str = ""
    runs: dict = dataclasses.field(default_factory=dict)
    submissions: list = dataclasses.field(default_factory=list)

    @classmethod
    def create(cls, results_root, experiment: str, entry: str, argv: str = "") -> "Sweep":
        now = datetime.datetime.now().astimezone()
        sweep_id = now.strftime("%Y%m%d-%H%M%S-") + os.urandom(2).hex()
        path = pathlib.Path(results_root) / experiment / "sweeps" / sweep_id
        (path / "configs").mkdir(parents=True)
        return cls(path, sweep_id, experiment, str(results_root), entry, now.isoformat(), argv)

    @classmethod
    def load(cls, path) -> "Sweep":
        path = pathlib.Path(path)
        data = json.loads((path / RECORD).read_text())
        return cls(path=path, **data)

    def add_run(self, run_id: str, overrides: list[str], config_yaml: str) -> None:
        self.runs[run_id] = {"overrides": list(overrides)}
        (self.path / "configs" / f"{run_id}.yaml").write_text(config_yaml)

    def config_yaml(self, run_id: str) -> str:
        return (self.path / "configs" / f"{run_id}.yaml").read_text()

    def result_path(self, run_id: str) -> pathlib.Path:
        return pathlib.Path(self.results_root) / self.experiment / f"{run_id}.h5"

    def add_submission(self, kind: str, job_id: str | None, run_ids: list[str], cluster: dict,
                       tasks: list[str] | None = None) -> None:
        """Record a submission; `tasks` are the Slurm task ids of `run_ids`, in order."""
        self.submissions.append({"kind": kind, "job_id": job_id, "runs": list(run_ids), "tasks": tasks or [],
                                 "cluster": cluster, "submitted": datetime.datetime.now().astimezone().isoformat()})
        self.save()

    def latest_submission(self, run_id: str) -> tuple[int, dict, int] | None:
        """`(position in submissions, submission, index of the run in it)` of the last
        submission that holds `run_id`."""
        for n in range(len(self.submissions) - 1, -1, -1):
            sub = self.submissions[n]
            if run_id in sub["runs"]:
                return n, sub, sub["runs"].index(run_id)
        return None

    def save(self) -> None:
        data = {k: v for k, v in dataclasses.asdict(self).items() if k != "path"}
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".sweep.", suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1, default=str)
        os.replace(tmp, self.path / RECORD)


def find(name: str, results_root) -> pathlib.Path:
    """A sweep directory from a path, a sweep id, or `latest`, under `results_root`."""
    candidate = pathlib.Path(name)
    if (candidate / RECORD).exists():
        return candidate
    sweeps = sorted(pathlib.Path(results_root).glob(f"*/sweeps/*/{RECORD}"), key=lambda p: p.parent.name)
    if name == "latest" and sweeps:
        return sweeps[-1].parent
    for record in sweeps:
        if record.parent.name == name or record.parent.name.startswith(name):
            return record.parent
    known = ", ".join(p.parent.name for p in sweeps[-5:]) or "none"
    raise FileNotFoundError(f"No sweep {name!r} under {results_root} (give a sweep directory, an id or "
                            f"`latest`; recent sweeps: {known}).")
