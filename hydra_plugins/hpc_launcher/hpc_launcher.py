"""Hydra launcher: a multirun becomes one Slurm array job (or local processes), and returns.

Unlike Hydra's stock submitit launcher it does not wait for the jobs and does not raise when a
run fails: the sweep record under the results root is what `hpc status/failed/resubmit` read.
Hydra only looks for launchers in the `hydra_plugins` package. This plugin names no workload:
`hydra.launcher.app` points at the application (`module:APP`, an `hpc.App`), whose `prepare`
checks each composed run; `hpc.launch.start_sweep` does the rest.
"""

import dataclasses
import json
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
    app: Optional[str] = None  # the application, `module:APP` (an `hpc.App`), importable from the working directory
    wait: bool = False  # block until every run is final, then report
    plan: bool = False  # write a manifest and sbatch scripts instead of submitting


@dataclasses.dataclass
class HpcSweeperConf:
    _target_: str = "hydra_plugins.hpc_launcher.hpc_launcher.HpcSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[dict[str, str]] = None


class HpcSweeper(BasicSweeper):
    """Hydra's basic sweeper without its up-front validation, which composes every run in
    full once more (0.15 s a run): `HpcLauncher` composes and checks every run itself, before
    anything is written, through `hpc.compose.SweepComposer`. Nor does it write `multirun/`
    into the working directory: the sweep's record holds the command and every run's config."""

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        return None

    def sweep(self, arguments: list[str]):
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*self._parse_config(), *arguments])
        returns, start = [], 0
        for batch in self.split_arguments(overrides, self.max_batch_size):
            returns.append(self.launcher.launch(batch, initial_job_idx=start))
            start += len(batch)
        return returns


ConfigStore.instance().store(group="hydra/launcher", name="hpc", node=HpcLauncherConf, provider="hpc")
ConfigStore.instance().store(group="hydra/sweeper", name="hpc", node=HpcSweeperConf, provider="hpc")
ConfigStore.instance().store(group="hydra/launcher", name="manifest", node=HpcLauncherConf(plan=True), provider="hpc")


class HpcLauncher(Launcher):
    def __init__(self, app: Optional[str] = None, wait: bool = False, plan: bool = False) -> None:
        self.app, self.wait, self.plan = app, wait, plan

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from hpc.hints import user_errors

        with user_errors():  # bad input: one clear message; HYDRA_FULL_ERROR=1 shows the traceback
            return self._launch(job_overrides)

    def _launch(self, job_overrides: Sequence[Sequence[str]]) -> Sequence[JobReturn]:
        import hpc
        from hpc.compose import SweepComposer, config_text

        if not self.app:
            raise ValueError(
                "`hydra.launcher.app` is not set: name the application, e.g. hydra.launcher.app=train:APP (an hpc.App)."
            )
        workdir = str(pathlib.Path.cwd())
        app = hpc.load_app(self.app, workdir)
        loader = self.hydra_context.config_loader
        composer = SweepComposer(loader, self.config, loader.list_groups(""))
        runs, profiles = [], {}
        for overrides in job_overrides:  # compose and check every run before anything is written
            config = composer.resolved(list(overrides))
            rid, root = app.prepare(config, list(overrides))
            key = json.dumps(config["cluster"], sort_keys=True)  # each distinct profile is made (checked) once
            if key not in profiles:
                profiles[key] = hpc.Profile.from_dict(config["cluster"])
            runs.append(
                hpc.Run(
                    rid,
                    list(overrides),
                    config_text(config),
                    pathlib.Path(root),
                    config["experiment"],
                    profiles[key],
                    bool(config.get("force")),
                )
            )
        _, states = hpc.start_sweep(
            runs, app=self.app, workdir=workdir, argv=" ".join(sys.argv), plan=self.plan, wait=self.wait
        )
        returns = []
        for run in runs:
            ret = JobReturn(
                overrides=run.overrides,
                cfg=self.config,
                hydra_cfg=self.config,
                working_dir=workdir,
                task_name=app.name,
                status=JobStatus.COMPLETED,
            )
            ret.return_value = {"run_id": run.run_id, "status": states[run.run_id].status if states else "submitted"}
            returns.append(ret)
        return returns
