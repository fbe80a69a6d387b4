"""Hydra launcher: a multirun becomes one Slurm array job (or local processes), and returns.

Unlike Hydra's stock submitit launcher it does not wait for the jobs and does not raise when a
run fails: the sweep record under the results root is what `hpc status/failed/resubmit` read.
Hydra only looks for launchers in the `hydra_plugins` package; the work is done by `hpc`.
"""

import dataclasses
import importlib
import pathlib
import sys
from collections.abc import Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig, OmegaConf, open_dict


@dataclasses.dataclass
class HpcLauncherConf:
    _target_: str = "hydra_plugins.hpc_launcher.hpc_launcher.HpcLauncher"
    entry: str = "train:train"  # called with each run's config on the node
    prepare: str = "train:prepare"  # config -> (run id, results root), raises on bad input
    wait: bool = False  # block until every run is final, then report
    plan: bool = False  # write a manifest and sbatch scripts instead of submitting
    script: str = "train.py"  # what the plain sbatch scripts run, from the working directory


ConfigStore.instance().store(group="hydra/launcher", name="hpc", node=HpcLauncherConf, provider="hpc")
ConfigStore.instance().store(group="hydra/launcher", name="manifest", node=HpcLauncherConf(plan=True),
                             provider="hpc")


def _load(spec: str):
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


class HpcLauncher(Launcher):
    def __init__(self, entry: str, prepare: str, wait: bool = False, plan: bool = False,
                 script: str = "train.py") -> None:
        self.entry, self.prepare, self.wait, self.plan, self.script = entry, prepare, wait, plan, script

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from hpc import launch, layout, status
        from hpc.store import read_summary
        from hpc.sweep import Sweep

        prepare = _load(self.prepare)
        # Compose and check every run before anything is submitted or written.
        runs, clusters = [], []
        for overrides in job_overrides:
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(cfg):
                del cfg["hydra"]
            rid, root = prepare(cfg)
            runs.append((rid, list(overrides), OmegaConf.to_yaml(cfg, resolve=True), cfg, root))
            clusters.append(OmegaConf.to_container(cfg.cluster, resolve=True))
        by_repr = {repr(c): c for c in clusters}
        if self.plan and len(by_repr) > 1:
            raise ValueError("`hydra/launcher=manifest` writes one manifest per sweep: do not vary `cluster.*` "
                             "within the grid (plan one sweep per cluster setting).")
        for cluster in by_repr.values():
            if self.plan:
                from hpc.sbatch import activation_lines

                activation_lines(cluster.get("environment"))
            else:
                launch.check(cluster)
        first = runs[0][3]
        sweep = Sweep.create(runs[0][4], first.experiment, self.entry, " ".join(sys.argv))
        todo: dict[str, list[str]] = {}
        skipped = 0
        for (rid, overrides, yaml_text, cfg, root), cluster in zip(runs, clusters):
            if rid in sweep.runs:  # overrides that change only where a run goes give the same run
                continue
            sweep.add_run(rid, overrides, yaml_text)
            path = layout.result_path(root, cfg.experiment, rid)
            done = path.exists() and read_summary(path).get("status") == "completed"
            if done and not cfg.get("force"):
                skipped += 1
                continue
            todo.setdefault(repr(cluster), []).append(rid)
        sweep.save()
        print(f"Sweep {sweep.sweep_id}: {len(sweep.runs)} runs, {skipped} already completed, "
              f"record in {sweep.path}", flush=True)
        workdir = str(pathlib.Path.cwd())
        for key, run_ids in todo.items():
            if self.plan:
                from hpc.plan import write_plan

                scripts = write_plan(sweep, run_ids, by_repr[key], workdir, self.script)
                print(f"Planned {len(run_ids)} runs: {sweep.path / 'manifest.txt'}\nSubmit with:\n"
                      + "\n".join(f"  sbatch {p}" for p in scripts), flush=True)
                continue
            job_ids = launch.submit(sweep, run_ids, by_repr[key], workdir)
            if job_ids:
                print(f"Submitted {len(run_ids)} runs as array job(s) {', '.join(job_ids)}. "
                      f"Watch with: hpc status {sweep.path}", flush=True)
        if self.wait and not self.plan:
            from hpc.cli import wait_for

            wait_for(sweep)
        states = {s.run_id: s for s in status.run_states(sweep)} if not todo or self.wait else {}
        returns = []
        for rid, overrides, _, cfg, _ in runs:
            ret = JobReturn(overrides=overrides, cfg=cfg, hydra_cfg=self.config, working_dir=workdir,
                            task_name="train", status=JobStatus.COMPLETED)
            ret.return_value = {"run_id": rid, "status": states[rid].status if rid in states else "submitted"}
            returns.append(ret)
        return returns
