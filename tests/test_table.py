"""A sweep as a table: the app's own result columns, the parameters that vary."""

from hpc import write_result
from hpc.sweep import Sweep
from hpc.table import is_result, rows

TREE = {"metrics": {"s": {"m": 1.0}}, "training": {"final_loss": 0.5}, "model": {"n": 3}}


def _sweep(root, app: dict) -> Sweep:
    sweep = Sweep.create(root, "exp", "app:APP", app=app)
    for i, width in enumerate((8, 16)):
        sweep.add_run(f"r{i}", [f"width={width}"], "")
        write_result(
            sweep.result_path(f"r{i}"),
            status="completed",
            run_id=f"r{i}",
            config={"width": width, "seed": 0},
            config_yaml="",
            metadata={"host": "h"},
            tree=TREE,
        )
    sweep.add_submission("local", None, list(sweep.runs), {}, save=True)
    return sweep


def test_the_table_shows_what_the_app_names(tmp_path):
    sweep = _sweep(tmp_path / "a", {"name": "a", "columns": ["metrics.", "eval.", "training."]})
    table, columns = rows(sweep)
    assert set(columns) == {"run_id", "state", "reason", "config.width", "metrics.s.m", "training.final_loss"}
    assert [r["config.width"] for r in table] == [8, 16] and {r["state"] for r in table} == {"completed"}
    everything = rows(sweep, all_config=True)[1]
    assert "config.seed" in everything and "meta.host" in everything and "model.n" in everything


def test_a_record_older_than_the_app_shows_every_result(tmp_path):
    columns = rows(_sweep(tmp_path / "b", {}))[1]  # no `app` in the record: nothing is hidden but config and metadata
    assert {"metrics.s.m", "training.final_loss", "model.n"} <= set(columns) and "meta.host" not in columns
    assert is_result("metrics.x") and not is_result("config.width") and not is_result("status")
    assert is_result("training.x", ("metrics.", "training.")) and not is_result("model.n", ("metrics.",))
