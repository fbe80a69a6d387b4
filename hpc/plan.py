"""Plain-sbatch sweeps: a manifest of overrides and ready-to-submit array scripts."""

import pathlib
import shlex

from . import slurm
from .sbatch import activation_lines, array_script, directives, signal_before_s
from .sweep import Sweep

TEMPLATES = pathlib.Path(__file__).resolve().parent.parent / "jobs"


def write_plan(sweep: Sweep, run_ids: list[str], cluster: dict, workdir: str, script: str,
               max_array_size: int | None = None, templates: pathlib.Path = TEMPLATES) -> list[pathlib.Path]:
    """Write `manifest.txt` (one line of overrides per run) and one array script per
    `MaxArraySize` runs (`array.sbatch`, then `array-1.sbatch` ...) into the sweep directory.

    **Returns:** the scripts, in submission order.
    """
    activation = activation_lines(cluster.get("environment"))
    lines = [shlex.join(sweep.runs[r]["overrides"]) for r in run_ids]
    (sweep.path / "manifest.txt").write_text("".join(line + "\n" for line in lines))
    (sweep.path / "slurm").mkdir(exist_ok=True)
    scripts = []
    for part, (start, runs) in enumerate(slurm.array_parts(run_ids, max_array_size)):
        name = f"{sweep.experiment}-{sweep.sweep_id}-p{part}"
        throttle = min(int(cluster.get("array_parallelism") or len(runs)), len(runs))
        lines = directives(
            job_name=name, array=f"0-{len(runs) - 1}%{throttle}", output=f"{sweep.path}/slurm/%A_%a.out",
            partition=cluster.get("partition"), account=cluster.get("account"), qos=cluster.get("qos"),
            time_min=cluster.get("time_min"), cpus_per_task=cluster.get("cpus_per_task"),
            mem_per_cpu_mb=cluster.get("mem_per_cpu_mb"), gpus_per_task=cluster.get("gpus_per_task"),
            signal=f"B:USR2@{signal_before_s(cluster)}", requeue=True)  # B: python is the batch shell (exec)
        text = array_script(templates, cluster.get("name", "default"), directive_lines=lines,
                            setup=list(cluster.get("setup") or []), activation=activation,
                            sweep_dir=str(sweep.path), workdir=workdir, entry_script=script, offset=start,
                            results_root=sweep.results_root)
        path = sweep.path / ("array.sbatch" if part == 0 else f"array-{part}.sbatch")
        path.write_text(text)
        scripts.append(path)
        sweep.add_submission("manifest", None, runs, cluster, save=False)  # saved once, below
        sweep.submissions[-1].update(job_name=name, offset=start, script=str(path))
    sweep.save()
    return scripts
