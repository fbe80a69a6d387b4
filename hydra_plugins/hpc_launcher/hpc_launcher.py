"""Hydra launcher: a multirun becomes one Slurm array job (or local processes), and returns.

Unlike Hydra's stock submitit launcher it does not wait for the jobs and does not raise when a
run fails: the sweep record under the results root is what `hpc status/failed/resubmit` read.
Hydra only looks for launchers in the `hydra_plugins` package. This plugin composes each
run's config and checks it with the app's `prepare`; `hpc.launch.start_sweep` does the rest.
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
    prepare: str = "train:prepare"  # (config, overrides) -> (run id, results root), raises on bad input
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
        from hpc.hints import user_errors

        with user_errors():  # bad input: one clear message; HYDRA_FULL_ERROR=1 shows the traceback
            return self._launch(job_overrides)

    def _launch(self, job_overrides: Sequence[Sequence[str]]) -> Sequence[JobReturn]:
        from hpc.launch import Run, start_sweep

        prepare = _load(self.prepare)
        runs, cfgs = [], []
        for overrides in job_overrides:  # compose and check every run before anything is written
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(cfg):
                del cfg["hydra"]
            rid, root = prepare(cfg, list(overrides))
            runs.append(Run(rid, list(overrides), OmegaConf.to_yaml(cfg, resolve=True), pathlib.Path(root),
                            cfg.experiment, OmegaConf.to_container(cfg.cluster, resolve=True),
                            bool(cfg.get("force"))))
            cfgs.append(cfg)
        workdir = str(pathlib.Path.cwd())
        _, states = start_sweep(runs, entry=self.entry, workdir=workdir, argv=" ".join(sys.argv),
                                plan=self.plan, script=self.script, wait=self.wait)
        returns = []
        for run, cfg in zip(runs, cfgs):
            ret = JobReturn(overrides=run.overrides, cfg=cfg, hydra_cfg=self.config, working_dir=workdir,
                            task_name="train", status=JobStatus.COMPLETED)
            ret.return_value = {"run_id": run.run_id,
                                "status": states[run.run_id].status if states else "submitted"}
            returns.append(ret)
        return returns
