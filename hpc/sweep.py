"""The sweep record: what was submitted, so status, failed and resubmit work from it alone."""

import collections
import contextlib
import dataclasses
import datetime
import json
import os
import pathlib
import re
import typing

from . import layout
from .atomic import atomic_path
from .profile import Profile

RECORD = "sweep.json"
CONFIGS = "configs.jsonl"  # every run's config, one line each (see `Sweep.add_run`); `configs/` before
SUBMIT_LOCK = "submitting"  # <sweep>/submitting.claim: who is submitting to the sweep now (`hpc.launch.exclusive`)


class Placement(typing.NamedTuple):
    """A run's place in a sweep's submissions."""

    position: int  # in `Sweep.submissions`
    submission: dict
    index: int  # of the run within that submission (its array index, less any offset)


@dataclasses.dataclass
class Sweep:
    """A sweep directory `<results root>/<experiment>/sweeps/<sweep id>/` and its record.

    `runs` maps run id -> `{"overrides": [...], "at": offset}`: each run's resolved config is a
    line of `configs.jsonl` starting at `offset` (records older than it keep one file per run,
    `configs/<run id>.yaml`); `submissions` lists each array job (or local batch) with the run
    ids in array-index order. A sweep is a handful of files whatever its size.
    """

    path: pathlib.Path
    sweep_id: str
    experiment: str
    results_root: str
    entry: str  # the application, `module:APP` (records older than `hpc.App`: `module:function`)
    created: str
    argv: str = ""
    workdir: str = ""  # where the sweep was launched (its application imports from there)
    app: dict = dataclasses.field(default_factory=dict)  # `hpc.App.record`: its name and table columns
    runs: dict = dataclasses.field(default_factory=dict)
    submissions: list = dataclasses.field(default_factory=list)
    damaged: str = ""  # why the record did not read: this is what could be read of it (`load`)

    def __post_init__(self):
        self._base: str | None = None  # the first line of configs.jsonl: the base config, as text
        self._base_tree: dict | None = None  # and read
        self._pending: list[bytes] = []  # lines of configs.jsonl not written yet (`save` writes them)
        self._end: int | None = None  # where the next line of configs.jsonl starts
        self._placed: tuple[int, dict] = (-1, {})  # (submissions seen, run id -> Placement)
        self._profiles: dict[int, Profile] = {}  # submission position -> its profile, read once

    @classmethod
    def create(
        cls, results_root, experiment: str, entry: str, argv: str = "", workdir: str = "", app: dict | None = None
    ) -> "Sweep":
        now = datetime.datetime.now().astimezone()
        sweep_id = now.strftime("%Y%m%d-%H%M%S-") + os.urandom(2).hex()
        results_root = pathlib.Path(results_root).resolve()  # found and written to from any directory
        path = layout.sweep_dir(results_root, experiment, sweep_id)
        path.mkdir(parents=True)
        layout.remember_sweep(path)
        return cls(path, sweep_id, experiment, str(results_root), entry, now.isoformat(), argv, workdir, app or {})

    @classmethod
    def load(cls, path, damaged_ok: bool = False) -> "Sweep":
        """The sweep at `path`. A record that does not read raises `ValueError`, or with
        `damaged_ok` gives what can be read (`salvage`), its `damaged` saying why."""
        path = pathlib.Path(path)
        text = (path / RECORD).read_bytes().decode(errors="replace")
        try:
            return cls(path=path, **{k: v for k, v in json.loads(text).items() if k != "damaged"})
        except (json.JSONDecodeError, TypeError, AttributeError) as exc:
            why = f"the sweep record {path / RECORD} is damaged ({type(exc).__name__}: {exc})"
            if damaged_ok:
                return cls.salvage(path, text, why)
            rerun = _salvaged_fields(text).get("argv")
            raise ValueError(
                f"{why}; it was left as it is. `hpc status {path}` shows what can still be read; to run "
                "its unfinished runs again, rerun the sweep's command"
                + (f" (`{rerun}`)" if rerun else "")
                + ", which skips its completed runs."
            ) from exc

    @classmethod
    def salvage(cls, path, text: str, why: str) -> "Sweep":
        """What a sweep directory still tells when its record is damaged: its runs (every line
        of `configs.jsonl`, or `configs/<run id>.yaml`), its results root and experiment (from
        where it lies), and whatever fields, runs' overrides and submissions the damaged text
        still holds whole."""
        path = pathlib.Path(path)
        fields = _salvaged_fields(text)
        decoder, runs, submissions = json.JSONDecoder(), {}, []
        for found in re.finditer(r'"(\w+)":\s*\{"overrides":\s*', text):
            with contextlib.suppress(ValueError):
                runs[found.group(1)] = {"overrides": decoder.raw_decode(text, found.end())[0]}
        for found in re.finditer(r'\{"kind":\s*"', text):
            with contextlib.suppress(ValueError):
                entry = decoder.raw_decode(text, found.start())[0]
                if {"kind", "job_id", "runs", "tasks", "cluster", "submitted"} <= set(entry):
                    submissions.append(entry)
        configs = {p.stem: {} for p in sorted((path / "configs").glob("*.yaml"))}  # records before configs.jsonl
        configs.update(_lines(path / CONFIGS))
        return cls(
            path=path,
            sweep_id=path.name,
            experiment=path.resolve().parent.parent.name,  # <results root>/<experiment>/sweeps/<sweep id>
            results_root=str(path.resolve().parent.parent.parent),
            entry=fields.get("entry", ""),
            created=fields.get("created", ""),
            argv=fields.get("argv", ""),
            workdir=fields.get("workdir", ""),
            runs={
                run_id: {"overrides": runs.get(run_id, {}).get("overrides", []), **configs.get(run_id, {})}
                for run_id in dict.fromkeys([*runs, *configs])
            },
            submissions=submissions,
            damaged=why,
        )

    def add_run(self, run_id: str, overrides: list[str], config_yaml: str) -> None:
        """Add a run with its resolved config (`config_yaml`: the text its task runs; written by
        the next `save`). In `configs.jsonl` the first run's config is the base, and each run is
        one line: the values in which its config differs from the base (`set`), or, where its
        config is not the base's shape (a group chosen otherwise) or not JSON, its whole text."""
        if self._end is None:
            self._end = (self.path / CONFIGS).stat().st_size if (self.path / CONFIGS).exists() else 0
            if self._end:
                self._base = self._read_line(0)["base"]
        entry: dict = {"run": run_id, "text": config_yaml}
        try:
            config = json.loads(config_yaml)
        except ValueError:  # YAML (inf, NaN): kept as it is
            config = None
        if self._base is None and isinstance(config, dict):
            self._base = config_yaml
            self._append({"base": config_yaml})
        if self._base is not None and self._base_tree is None:
            self._base_tree = json.loads(self._base)
        changes = _changes(self._base_tree, config) if config is not None and self._base is not None else None
        if changes is not None and json.dumps(_applied(self._base_tree, changes), allow_nan=False) == config_yaml:
            entry = {"run": run_id, "set": changes}  # rebuilt from it, the config is this very text
        self.runs[run_id] = {"overrides": list(overrides), "at": self._append(entry)}

    def _append(self, entry: dict) -> int:
        """Queue `entry` as a line of configs.jsonl; **returns:** where it will start."""
        line = (json.dumps(entry, allow_nan=False, separators=(",", ":")) + "\n").encode()
        self._pending.append(line)
        at, self._end = self._end, self._end + len(line)
        return at

    def _read_line(self, at: int) -> dict:
        with open(self.path / CONFIGS, "rb") as handle:  # a task reads its own line, not the file
            handle.seek(at)
            return json.loads(handle.readline())

    def config_yaml(self, run_id: str) -> str:
        """The resolved config run `run_id` runs, as text (exactly what the sweep recorded)."""
        at = self.runs[run_id].get("at")
        if at is None:  # a record older than configs.jsonl
            return (self.path / "configs" / f"{run_id}.yaml").read_text()
        line = self._read_line(at)
        if "text" in line:
            return line["text"]
        if self._base_tree is None:
            self._base = self._base or self._read_line(0)["base"]
            self._base_tree = json.loads(self._base)
        return json.dumps(_applied(self._base_tree, line["set"]), allow_nan=False)

    def result_path(self, run_id: str) -> pathlib.Path:
        return layout.result_path(self.results_root, self.experiment, run_id)

    def add_submission(
        self,
        kind: str,
        job_id: str | None,
        run_ids: list[str],
        cluster: "Profile | dict",
        tasks: list[str] | None = None,
        save: bool = True,
        **more,
    ) -> dict:
        """Record a submission (`more`: its `job_name`, ...); `tasks` are the Slurm task ids of
        `run_ids`, in order. Returns the record's entry."""
        entry = {
            "kind": kind,
            "job_id": job_id,
            "runs": list(run_ids),
            "tasks": tasks or [],
            "cluster": cluster.to_dict() if isinstance(cluster, Profile) else cluster,
            "submitted": datetime.datetime.now().astimezone().isoformat(),
            **more,
        }
        self.submissions.append(entry)
        if save:
            self.save()
        return entry

    def profile(self, position: int) -> Profile:
        """The cluster profile submission `position` was made with, as an `hpc.Profile`."""
        if position not in self._profiles:
            self._profiles[position] = Profile.from_dict(self.submissions[position].get("cluster"))
        return self._profiles[position]

    def latest_submission(self, run_id: str) -> "Placement | None":
        """Where `run_id` was last submitted (every run's place is found in one pass, once per
        number of submissions: a status of 100,000 runs is linear in them)."""
        if self._placed[0] != len(self.submissions):
            places = {}
            for n, sub in enumerate(self.submissions):
                places.update({r: Placement(n, sub, i) for i, r in enumerate(sub["runs"])})
            self._placed = (len(self.submissions), places)
        return self._placed[1].get(run_id)

    def save(self) -> None:
        if self.damaged:
            raise ValueError(f"{self.damaged}: not overwriting it with the part that could be read.")
        if self._pending:  # the runs' configs first: the record never names a line not written
            with open(self.path / CONFIGS, "ab") as handle:
                handle.write(b"".join(self._pending))
            self._pending = []
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("path", "damaged")}
        with atomic_path(self.path / RECORD, fsync=False) as tmp:
            tmp.write_text(json.dumps(data, default=str))


def _changes(base, config) -> list | None:
    """The leaves in which `config` differs from `base` (nested mappings), as `[keys, value]`
    pairs; `None` when their shapes differ (other keys, or in another order)."""
    out: list = []

    def walk(a, b, keys: tuple) -> bool:
        if isinstance(a, dict) and isinstance(b, dict):
            if list(a) != list(b):
                return False
            for k in a:  # equal subtrees are skipped whole (`add_run` checks the text rebuilt after)
                if (
                    a[k] is not b[k]
                    and (a[k] != b[k] or type(a[k]) is not type(b[k]))
                    and not walk(a[k], b[k], (*keys, k))
                ):
                    return False
            return True
        if isinstance(a, dict) or isinstance(b, dict) or not keys:
            return False
        out.append([list(keys), b])
        return True

    return out if walk(base, config, ()) else None


def _applied(base: dict, changes: list) -> dict:
    """`base` with `changes` (see `_changes`) set, copying only the mappings on their way."""
    tree = dict(base)
    for keys, value in changes:
        node = tree
        for key in keys[:-1]:
            node[key] = dict(node[key])
            node = node[key]
        node[keys[-1]] = value
    return tree


def _lines(path: pathlib.Path) -> dict[str, dict]:
    """Run id -> `{"at": offset}` for every whole run line of a configs.jsonl (salvage)."""
    out, at = {}, 0
    with contextlib.suppress(OSError), open(path, "rb") as handle:
        for line in handle:
            with contextlib.suppress(ValueError):
                run = json.loads(line).get("run")
                if run is not None and line.endswith(b"\n"):
                    out[run] = {"at": at}
            at += len(line)
    return out


def _salvaged_fields(text: str) -> dict:
    """The top-level text fields a damaged record still holds whole."""
    out, decoder = {}, json.JSONDecoder()
    for name in ("entry", "created", "argv", "workdir"):
        found = re.search(rf'"{name}":\s*"', text)
        if found:
            with contextlib.suppress(ValueError):
                out[name] = decoder.raw_decode(text, found.end() - 1)[0]
    return out


def find_sweep(name: str, results_root=None) -> pathlib.Path:
    """A sweep directory from a path, a sweep id (or its start), or `latest`: under
    `results_root`, or, when it is `None`, among every sweep this user created
    (`hpc.layout.remembered_sweeps`), wherever its results root. `latest` is the newest sweep of
    the root the user's environment names: of `results_root` (`--root`), else, when `SCRATCH`
    is set, the newest this user created under `$SCRATCH`, else the newest this user created."""
    candidate = pathlib.Path(name)
    if (candidate / RECORD).exists():
        return candidate
    scratch = os.environ.get("SCRATCH")
    if results_root is None:
        sweeps = [p for p in layout.remembered_sweeps() if (p / RECORD).exists()]  # in creation order
        where = "the sweeps you created (use --root to search a results root)"
        if name == "latest" and scratch:
            base = pathlib.Path(scratch).resolve()
            sweeps = [p for p in sweeps if p.resolve().is_relative_to(base)]
            where = f"the sweeps you created under $SCRATCH={scratch} (use --root for another results root)"
    else:
        sweeps = _by_creation([p for p in layout.sweep_dirs(results_root) if (p / RECORD).exists()])
        where = str(results_root)
    if name == "latest" and sweeps:
        return sweeps[-1]
    for path in reversed(sweeps):
        if path.name == name or path.name.startswith(name):
            return path
    known = ", ".join(p.name for p in sweeps[-5:]) or "none"
    raise FileNotFoundError(
        f"No sweep {name!r} under {where} (give a sweep directory, an id or `latest`; recent sweeps: {known})."
    )


def _by_creation(paths: list[pathlib.Path]) -> list[pathlib.Path]:
    """Sweep directories oldest first: by the time stamp their id starts with, and, for ids of
    the same second, by the creation time in their records (read only for those)."""
    stamp = lambda p: p.name.rsplit("-", 1)[0]  # noqa: E731
    shared = {s for s, n in collections.Counter(map(stamp, paths)).items() if n > 1}
    return sorted(paths, key=lambda p: (stamp(p), Sweep.load(p, damaged_ok=True).created if stamp(p) in shared else ""))


def known_roots() -> list[str]:
    """The roots of every sweep this user created (`hpc.layout.remembered_sweeps`) and the
    default roots of any application (`hpc.layout.default_roots`)."""
    return list(
        dict.fromkeys(
            [Sweep.load(p, damaged_ok=True).results_root for p in layout.remembered_sweeps() if (p / RECORD).exists()]
            + [str(p) for p in layout.default_roots()]
        )
    )


def find_result(name: str, results_root=None) -> pathlib.Path:
    """A run's result file from its path, or its run id (or the id's start): under
    `results_root`, or, when it is `None`, under the roots of every sweep this user created and
    the default roots of any application (`hpc.layout.default_roots`). Raises
    `FileNotFoundError` unless exactly one file matches."""
    path = pathlib.Path(name)
    if path.is_file():
        return path
    roots = [results_root] if results_root is not None else known_roots()
    matches = sorted({m for r in roots for m in pathlib.Path(r).glob(f"*/{name}*.h5")})
    if len(matches) != 1:
        raise FileNotFoundError(
            f"{name!r} names {len(matches)} result files under {', '.join(map(str, roots))}; "
            "give a result file path or a unique run id."
        )
    return matches[0]
