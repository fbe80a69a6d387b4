"""Orbit datasets, generated once and cached as self-describing HDF5 files."""

import dataclasses
import errno
import hashlib
import json
import os
import pathlib
import shutil
import tempfile

import h5py
import numpy as np

from ._orbits import FAMILIES, MU_EARTH, POINTS_PER_ORBIT, ElementRanges, generate_orbits
from ._registry import lookup


@dataclasses.dataclass(frozen=True)
class OrbitDataset:
    """Orbits in km and s: `t [n, points]`, `y [n, points, 6]`, per-orbit `elements`."""

    name: str
    t: np.ndarray
    y: np.ndarray
    elements: dict
    attrs: dict

    @property
    def n_orbits(self) -> int:
        return self.y.shape[0]


def family_ranges(family: str, planar: bool, rotated: bool = False, **overrides) -> ElementRanges:
    """The element ranges of a named family (`complex`, `circular`, `simple`), with overrides.

    Planar orbits have their periapsis on +x, as the study's do; `rotated` ones point every way.
    3D orbits are always randomly oriented: they need `rotated`."""
    lookup({name: name for name, _, _ in FAMILIES}, family, "dataset.family")
    _check_orientation(planar, rotated)
    ranges = FAMILIES[(family, bool(planar), bool(rotated))]
    overrides = {k: (tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in overrides.items() if v is not None}
    return dataclasses.replace(ranges, **overrides)


def _check_orientation(planar, rotated) -> None:
    if not isinstance(rotated, bool):
        raise ValueError(f"`dataset.rotated` must be true or false, got {rotated!r}.")
    if not planar and not rotated:
        raise ValueError(
            "`dataset.rotated`=false needs a planar dataset: 3D orbits are always randomly "
            "oriented (set dataset.rotated=true, or choose a planar dataset)."
        )


def dataset_name(family: str, planar: bool, n: int, split: str, rotated: bool = False) -> str:
    """The community's naming, e.g. `complex_TBP_planar_10_train` (periapsis on +x, as the study's
    planar sets); randomly oriented planar sets are `complex_TBP_planar_rotated_10_train`."""
    shape = ("planar_rotated" if rotated else "planar") if planar else "3D"
    return f"{family}_TBP_{shape}_{n}_{split}"


def _params(family, planar, n, seed, ranges) -> dict:
    return {
        "family": family,
        "planar": bool(planar),
        "n_orbits": int(n),
        "seed": int(seed),
        "points": POINTS_PER_ORBIT,
        "ranges": dataclasses.asdict(ranges),
    }


def _rotated(planar: bool, ranges: ElementRanges) -> bool:
    """Whether orbits drawn from `ranges` are turned at random about z (3D orbits always are)."""
    return not planar or ranges.argp[1] > ranges.argp[0]


def _params_hash(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]


DEFAULT_SEEDS = {"train": 0, "test": 1}


def dataset_path(
    root, family: str, planar: bool, n: int, seed: int, split: str, ranges: ElementRanges | None = None
) -> pathlib.Path:
    """Where `load_or_generate` caches a dataset: `root/datasets/<name>.h5` for a family's
    default ranges (aligned or rotated) and the split's default seed (train 0, test 1), else
    `<name>-<hash of the parameters>.h5`, so two parameter sets never share a file."""
    ranges = family_ranges(family, planar, not planar) if ranges is None else ranges
    rotated = _rotated(planar, ranges)
    default = family_ranges(family, planar, rotated)
    name = dataset_name(family, planar, n, split, rotated)
    if ranges != default or seed != DEFAULT_SEEDS.get(split):
        name = f"{name}-{_params_hash(_params(family, planar, n, seed, ranges))}"
    return pathlib.Path(root) / "datasets" / f"{name}.h5"


def load_or_generate(
    root, family: str, planar: bool, n: int, seed: int, split: str, ranges: ElementRanges | None = None
) -> OrbitDataset:
    """Read the cached dataset (see `dataset_path`), or generate and write it atomically first.
    A cache file that does not read (truncated, say) or holds other parameters is generated
    again and replaced atomically: generation is deterministic, so concurrent tasks doing so
    write the same file."""
    ranges = family_ranges(family, planar, not planar) if ranges is None else ranges
    params = _params(family, planar, n, seed, ranges)
    name = dataset_name(family, planar, n, split, _rotated(planar, ranges))
    path = dataset_path(root, family, planar, n, seed, split, ranges)
    if path.exists():
        try:
            with h5py.File(path, "r") as f:
                if f.attrs.get("params_hash") == _params_hash(params):
                    return _read(f, name)
        except (OSError, KeyError) as exc:
            print(f"Dataset cache {path} does not read ({type(exc).__name__}: {exc}); generating it again.", flush=True)
    t, y, elements = generate_orbits(n, seed, ranges)
    _write(path, name, t, y, elements, params)
    with h5py.File(path, "r") as f:
        return _read(f, name)


def _read(f: h5py.File, name: str) -> OrbitDataset:
    elements = {k: f["elements"][k][()] for k in f["elements"]}
    return OrbitDataset(name, f["t"][()], f["y"][()], elements, dict(f.attrs))


def _write(path: pathlib.Path, name, t, y, elements, params) -> None:
    made = not path.parent.exists()  # removed again should nothing fit in it
    path.parent.mkdir(parents=True, exist_ok=True)
    # Concurrent array tasks may generate the same set at once: each writes its own temporary
    # file and renames it into place, so readers only ever see a complete file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(fd, 0o666 & ~mask)  # as `open` would: the lab's group reads the shared cache
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs.update(
                {
                    "name": name,
                    "params_hash": _params_hash(params),
                    "params_json": json.dumps(params),
                    "family": params["family"],
                    "planar": params["planar"],
                    "seed": params["seed"],
                    "n_orbits": params["n_orbits"],
                    "units": "km, km/s, s",
                    "rotated": _rotated(params["planar"], ElementRanges(**params["ranges"])),
                    "mu_km3_s2": MU_EARTH,
                }
            )
            for key, (low, high) in ((k, v) for k, v in params["ranges"].items() if k != "nu0"):
                f.attrs[f"range_{key}"] = [low, high]
            f.attrs["nu0"] = "random" if params["ranges"]["nu0"] is None else params["ranges"]["nu0"]
            f["t"], f["y"] = t, y
            f["t"].attrs["units"], f["y"].attrs["units"] = "s", "km, km/s"
            group = f.create_group("elements")
            for key, value in elements.items():
                group[key] = value
            group.attrs["units"] = "a: km; angles: rad"
        os.replace(tmp, path)
    except OSError as exc:  # HDF5's own message is many lines, and names neither the file nor a full disk
        free = shutil.disk_usage(path.parent).free
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT) or free < 65536
        why = os.strerror(exc.errno) if exc.errno else str(exc).splitlines()[0]
        what = "disk full writing the dataset cache" if full else "could not write the dataset cache"
        raise OSError(errno.ENOSPC if full else exc.errno, f"{what} {path} ({why}; {free} bytes free)") from exc
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
        if made and not any(path.parent.iterdir()):
            path.parent.rmdir()


def train_and_test_sets(
    root,
    family: str,
    planar: bool,
    n_train: int,
    *,
    rotated: bool = False,
    train_seed: int = 0,
    test_seed: int = 1,
    test_sizes=(1, 10, 100),
    **ranges,
) -> tuple[OrbitDataset, list[OrbitDataset]]:
    """The training set of `n_train` orbits and one test set per size in `test_sizes`, from
    the family's element ranges (see `family_ranges`) with `ranges` overrides (`a=(low, high)`,
    ...; `None` keeps the family's), each loaded from the cache under `root` or generated once."""
    chosen = family_ranges(family, planar, rotated, **ranges)
    train = load_or_generate(root, family, planar, n_train, train_seed, "train", chosen)
    return train, [load_or_generate(root, family, planar, n, test_seed, "test", chosen) for n in test_sizes]
