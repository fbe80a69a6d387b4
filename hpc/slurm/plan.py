"""Plain-sbatch sweeps: a manifest of overrides and ready-to-submit array scripts."""

import pathlib
import shlex

from .. import slurm
from ..profile import Profile, slurm_options
from ..sweep import Sweep
from .sbatch import activation_lines, array_script, directives, template_dirs


def write_plan(
    sweep: Sweep,
    run_ids: list[str],
    profile: Profile,
    workdir: str,
    script: str,
    max_array_size: int | None = None,
    templates=None,
) -> list[pathlib.Path]:
    """Write `manifest.txt` (one line of overrides per run) and one array script per
    `MaxArraySize` tasks, each task training `runs_per_task` runs (`array.sbatch`, then
    `array-1.sbatch` ...), into the sweep directory.

    **Returns:** the scripts, in submission order.
    """
    profile = Profile.from_dict(profile)
    activation = activation_lines(profile.environment)
    lines = [shlex.join(sweep.runs[r]["overrides"]) for r in run_ids]
    (sweep.path / "manifest.txt").write_text("".join(line + "\n" for line in lines))
    (sweep.path / "slurm").mkdir(exist_ok=True)
    scripts = []
    per_task = profile.runs_per_task
    size = (max_array_size or slurm.max_array_size()) * per_task  # in runs
    for part, (start, runs) in enumerate(slurm.array_parts(run_ids, size)):
        name = f"{sweep.experiment}-{sweep.sweep_id}-p{part}"
        tasks = len(slurm.packs(runs, per_task))
        throttle = min(profile.array_parallelism, tasks)
        lines = directives(
            job_name=name,
            array=f"0-{tasks - 1}%{throttle}",
            output=f"{sweep.path}/slurm/%A_%a.out",
            options=slurm_options(profile),
            signal=f"B:USR2@{profile.signal_s}",  # B: python is the
            requeue=True,
        )  # batch shell (exec)
        text = array_script(
            templates or template_dirs(workdir),
            profile.name or "default",
            directive_lines=lines,
            setup=list(profile.setup),
            activation=activation,
            sweep_dir=str(sweep.path),
            workdir=workdir,
            entry_script=script,
            offset=start,
            runs_per_task=per_task,
            results_root=sweep.results_root,
        )
        path = sweep.path / ("array.sbatch" if part == 0 else f"array-{part}.sbatch")
        path.write_text(text)
        scripts.append(path)
        sweep.add_submission("manifest", None, runs, profile, save=False)  # saved once, below
        sweep.submissions[-1].update(job_name=name, offset=start, script=str(path))
    sweep.save()
    return scripts
