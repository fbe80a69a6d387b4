"""Plain-sbatch plans (`hpc.slurm.plan`), written without Slurm: the manifest, the array
scripts split at MaxArraySize, and the record of each part."""

import shlex

from hpc import Profile
from hpc.slurm.plan import write_plan
from hpc.sweep import Sweep


def _sweep(tmp_path, n):
    sweep = Sweep.create(tmp_path / "root", "plans", "train:APP", workdir=str(tmp_path))
    for i in range(n):
        sweep.add_run(f"run{i}", [f"seed={i}", "width=32"], f"seed: {i}\n")
    return sweep


def test_manifest_and_arrays_split_at_max_array_size(tmp_path):
    sweep = _sweep(tmp_path, 5)
    profile = Profile(time_min=7, array_parallelism=2)
    scripts = write_plan(sweep, list(sweep.runs), profile, str(tmp_path), "train.py", max_array_size=2)
    assert [p.name for p in scripts] == ["array.sbatch", "array-1.sbatch", "array-2.sbatch"]
    lines = (sweep.path / "manifest.txt").read_text().splitlines()
    assert [shlex.split(line) for line in lines] == [sweep.runs[r]["overrides"] for r in sweep.runs]
    texts = [p.read_text() for p in scripts]
    assert "#SBATCH --array=0-1%2" in texts[0] and "#SBATCH --array=0-0%1" in texts[2]
    assert [next(line for line in t.splitlines() if line.startswith("OFFSET=")).split()[0] for t in texts] == [
        "OFFSET=0",
        "OFFSET=2",
        "OFFSET=4",
    ]
    assert all("#SBATCH --time=7" in t and f"SWEEP_DIR={sweep.path}" in t for t in texts)
    again = Sweep.load(sweep.path)  # the parts are recorded, each with its offset and script
    assert [(s["kind"], s["runs"], s["offset"], s["script"]) for s in again.submissions] == [
        ("manifest", ["run0", "run1"], 0, str(scripts[0])),
        ("manifest", ["run2", "run3"], 2, str(scripts[1])),
        ("manifest", ["run4"], 4, str(scripts[2])),
    ]
