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
from typing import Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig


@dataclasses.dataclass
class HpcLauncherConf:
    _target_: str = "hydra_plugins.hpc_launcher.hpc_launcher.HpcLauncher"
    entry: str = "train:train"  # called with each run's config on the node
    prepare: str = "train:prepare"  # (resolved config dict, overrides) -> (run id, results root); raises on bad input
    wait: bool = False  # block until every run is final, then report
    plan: bool = False  # write a manifest and sbatch scripts instead of submitting
    script: str = "train.py"  # what the plain sbatch scripts run, from the working directory


@dataclasses.dataclass
class HpcSweeperConf:
    _target_: str = "hydra_plugins.hpc_launcher.hpc_launcher.HpcSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[dict[str, str]] = None


class HpcSweeper(BasicSweeper):
    """Hydra's basic sweeper without its up-front validation, which composes every run in
    full once more (0.15 s a run): `HpcLauncher` composes and checks every run itself, before
    anything is written, through `hpc.compose.SweepComposer`."""

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        return None


ConfigStore.instance().store(group="hydra/launcher", name="hpc", node=HpcLauncherConf, provider="hpc")
ConfigStore.instance().store(group="hydra/sweeper", name="hpc", node=HpcSweeperConf, provider="hpc")
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
        from hpc.compose import SweepComposer, config_text
        from hpc.launch import Run, start_sweep

        prepare = _load(self.prepare)
        loader = self.hydra_context.config_loader
        composer = SweepComposer(loader, self.config, loader.list_groups(""))
        runs = []
        for overrides in job_overrides:  # compose and check every run before anything is written
            config = composer.resolved(list(overrides))
            rid, root = prepare(config, list(overrides))
            runs.append(Run(rid, list(overrides), config_text(config), pathlib.Path(root), config["experiment"],
                            config["cluster"], bool(config.get("force"))))
        workdir = str(pathlib.Path.cwd())
        _, states = start_sweep(runs, entry=self.entry, workdir=workdir, argv=" ".join(sys.argv),
                                plan=self.plan, script=self.script, wait=self.wait)
        returns = []
        for run in runs:
            ret = JobReturn(overrides=run.overrides, cfg=self.config, hydra_cfg=self.config, working_dir=workdir,
                            task_name="train", status=JobStatus.COMPLETED)
            ret.return_value = {"run_id": run.run_id,
                                "status": states[run.run_id].status if states else "submitted"}
            returns.append(ret)
        return returns
