"""A second workload for `hpc`, with no JAX and no `neuralode`: a least-squares polynomial fit
of noisy samples of sin(3x), in numpy. It proves the toolkit generic: its own `hpc.App`, its
own configs, its own report figure, and no change in `hpc`.

    python lsq.py degree=5                       # one fit
    python lsq.py -m degree=1,3,5 seed=0,1       # a sweep (Slurm where it answers)
"""

import pathlib
import sys
import time

import h5py
import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

import hpc


def place(config: dict):
    root = APP.results_root(config.get("results_root"))
    rid = hpc.run_id(config, exclude=hpc.NOT_IDENTITY)
    return rid, root, hpc.result_path(root, config["experiment"], rid)


def prepare(config: dict, overrides=()):
    if not isinstance(config["degree"], int) or isinstance(config["degree"], bool) or config["degree"] < 0:
        raise ValueError(f"`degree` must be an integer >= 0, got {config['degree']!r}.")
    return place(config)[:2]


def _iterate(config: dict, checkpoint: hpc.Checkpoint) -> list | None:
    """`steps` slow steps (`step_s` each), checkpointed as `hpc.Checkpoint` asks: a stand-in for
    training that a signal interrupts and a rerun resumes. **Returns:** the step of each pass
    made in this process, or `None` when a signal stopped it (after a checkpoint)."""
    state = checkpoint.load()
    start = int(state["step"]) if state is not None else 0
    if state is not None:
        print(f"Resuming run at step {start}.", flush=True)
    for step in range(start + 1, config["steps"] + 1):
        time.sleep(config["step_s"])
        if checkpoint.due(step):
            checkpoint.save({"step": step}, step)
        if checkpoint.stop:
            return None
    return list(range(start + 1, config["steps"] + 1))


def _fit(config: dict, checkpoint: hpc.Checkpoint) -> hpc.Outcome:
    flag = config["fail_flag"]
    if flag and config["degree"] == config["fail_degree"] and pathlib.Path(flag).exists():
        raise RuntimeError(f"asked to fail: {flag} exists")
    passes = _iterate(config, checkpoint)
    if passes is None:
        return hpc.Outcome("interrupted", {})
    rng = np.random.default_rng(config["seed"])
    x = rng.uniform(-1, 1, config["points"])
    y = np.sin(3 * x) + config["noise"] * rng.normal(size=x.size)
    coefficients = np.polynomial.polynomial.polyfit(x, y, config["degree"])
    grid = np.linspace(-1, 1, 101)
    fitted = np.polynomial.polynomial.polyval(grid, coefficients)
    train_rmse = float(np.sqrt(np.mean((np.polynomial.polynomial.polyval(x, coefficients) - y) ** 2)))
    rmse = float(np.sqrt(np.mean((fitted - np.sin(3 * grid)) ** 2)))
    tree = {
        "metrics": {"fit": {"rmse": rmse, "train_rmse": train_rmse}},
        "curve": {"x": grid, "y": fitted},
        "coefficients": {"values": coefficients},
    }
    if config["steps"]:  # the steps this process made: a resumed run shows only those after its checkpoint
        tree["passes"] = {"steps": np.asarray(passes, dtype=np.int64)}
    return hpc.Outcome("completed", tree, summary={"rmse": rmse})


def train(cfg: DictConfig) -> dict:
    config = OmegaConf.to_container(cfg, resolve=True)
    rid, _, path = place(config)
    return hpc.execute(
        path,
        lambda checkpoint: _fit(config, checkpoint),
        app=APP,
        run_id=rid,
        config=config,
        config_yaml=OmegaConf.to_yaml(cfg),
        lifeline=hpc.Lifeline.from_cluster(config["cluster"]),
    )


def fit_figure(groups, out) -> None:
    """The best fit of each configuration against the truth."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    grid = np.linspace(-1, 1, 101)
    ax.plot(grid, np.sin(3 * grid), "k--", label="sin(3x)")
    for label, paths in groups.items():
        with h5py.File(paths[0], "r") as f:
            ax.plot(f["curve/x"][()], f["curve/y"][()], label=label)
    ax.legend(fontsize=7)
    fig.savefig(out, dpi=80)
    plt.close(fig)


APP = hpc.App(
    name="lsq",
    entry=train,
    prepare=prepare,
    conf_dir=pathlib.Path(__file__).parent / "conf",
    packages=("numpy", "h5py"),
    file_format="lsq-result/1",
    report=hpc.Spec(
        metric="metrics.fit.rmse",
        heatmap=("degree",),
        figures=(hpc.Figure("fit", "Fits", fit_figure, "The best run of each degree."),),
    ),
)


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    with hpc.user_errors():
        prepare(OmegaConf.to_container(cfg, resolve=True))
        status = train(cfg)["status"]
    if status not in hpc.TASK_OK:
        sys.exit(3)


if __name__ == "__main__":
    main()
