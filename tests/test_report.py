"""`hpc report`, `evaluate.py` and the figures, on a real local sweep: 2 widths x 2 seeds, one
run made to fail (a checkpoint left by a different model)."""

import csv
import html.parser
import math
import os
import pathlib
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import ROOT, TINY, foreign_checkpoint, hpc_cli, run_id_of
from hpc import report
from hpc.claim import Claim
from hpc.report import best_runs
from hpc.report.page import num
from hpc.store import write_result
from hpc.sweep import Sweep, find_sweep
from hpc.table import resolve_metric, rows

pytestmark = pytest.mark.slow  # its module fixture trains a 4-run sweep

GRID = [o for o in TINY if not o.startswith("width=")]
SETS = ("complex_TBP_planar_1_test", "complex_TBP_planar_2_test")
METRIC = f"metrics.{SETS[0]}.accel_pct_mean"  # no 100-orbit set here: the report falls back to the first


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """The sweep, its results root, and the run that failed."""
    root = tmp_path_factory.mktemp("report") / "results"
    bad = run_id_of(*GRID, "width=16", "seed=1")
    foreign_checkpoint(root / "rep" / f"{bad}.ckpt")
    cache = f"jax_cache={ROOT / '.pytest_cache' / 'jax'}"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "-m",
            *GRID,
            "width=8,16",
            "seed=0,1",
            "cluster=local",
            f"results_root={root}",
            "experiment=rep",
            cache,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return Sweep.load(find_sweep("latest", root)), root, bad


def _by_hand(sweep: Sweep, bad: str) -> dict:
    """Per width: each test set's accel_pct_mean of the completed runs, read with h5py."""
    out = {}
    for run_id in sweep.runs:
        with h5py.File(sweep.result_path(run_id)) as f:
            if f.attrs["status"] != "completed":
                assert run_id == bad
                continue
            width = int(f["config"].attrs["width"])
            for name in SETS:
                out.setdefault((width, name), []).append(float(f["metrics"][name].attrs["accel_pct_mean"]))
    return out


class _Tables(html.parser.HTMLParser):
    """The cells of each `<table id=...>` of a page, row by row."""

    def __init__(self):
        super().__init__()
        self.tables, self.current, self.cell = {}, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.current = self.tables.setdefault(attrs.get("id"), [])
        elif tag == "tr" and self.current is not None:
            self.current.append([])
        elif tag in ("td", "th") and self.current is not None:
            self.cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.current[-1].append(self.cell.strip())
            self.cell = None
        elif tag == "table":
            self.current = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def _tables(page: str) -> dict:
    parser = _Tables()
    parser.feed(page)
    return parser.tables


@pytest.fixture(scope="module")
def built(sweep, tmp_path_factory):
    s, root, bad = sweep
    out = tmp_path_factory.mktemp("out") / "report"
    done = hpc_cli("report", "latest", "-o", str(out), root=root)
    assert "4 runs, 2 configurations, 5 figures" in done.stdout
    return out


def test_the_report_equals_the_result_files_and_names_the_failure(sweep, built):
    s, root, bad = sweep
    truth = _by_hand(s, bad)
    with open(built / "configs.csv") as handle:
        configs = list(csv.DictReader(handle))
    assert [int(c["width"]) for c in configs] == sorted((8, 16), key=lambda w: np.mean(truth[(w, SETS[0])]))
    for c in configs:
        for name in SETS:
            values = np.array(truth[(int(c["width"]), name)])
            column = f"metrics.{name}.accel_pct_mean"
            assert float(c[f"{column}:mean"]) == pytest.approx(values.mean(), rel=1e-12)
            assert int(c[f"{column}:n"]) == len(values)
            assert float(c[f"{column}:best"]) == pytest.approx(values.min(), rel=1e-12)
            if len(values) > 1:
                assert float(c[f"{column}:std"]) == pytest.approx(values.std(ddof=1), rel=1e-9)
            else:
                assert math.isnan(float(c[f"{column}:std"]))
    assert {int(c["width"]): (int(c["completed"]), int(c["runs"])) for c in configs} == {8: (2, 2), 16: (1, 2)}
    for name in SETS:  # the study's metrics too: along the orbit and the critical radius, per test set
        assert f"metrics.{name}.along_accel_pct_mean:mean" in configs[0]
        assert f"metrics.{name}.critical_radius:mean" in configs[0]
    assert "metrics.complex_TBP_planar_2_train.accel_pct_mean:mean" in configs[0]  # the training orbits'

    page = (built / "report.html").read_text()
    tables = _tables(page)
    shown = tables["configs"][2:]  # two header rows
    assert len(shown) == 2
    for row, c in zip(shown, configs):
        assert row[1] == c["width"]  # rank, width, runs, then mean std n best of the ranking metric first
        mean = np.mean(truth[(int(c["width"]), SETS[0])])
        assert row[3] == f"{mean:.4g}" and row[5] == str(len(truth[(int(c["width"]), SETS[0])]))
    failures = tables["failures"][1:]
    assert len(failures) == 1 and failures[0][0] == bad and failures[0][1] == "failed"
    assert "checkpoint does not match" in failures[0][2] and "width=16" in failures[0][3]
    assert f"Ranked by the mean of {METRIC}" in page.replace("<code>", "").replace("</code>", "")

    with open(built / "runs.csv") as handle:
        runs = list(csv.DictReader(handle))
    assert sorted(r["run_id"] for r in runs) == sorted(s.runs) and "config.width" in runs[0]


def test_every_figure_is_an_image_the_page_shows(built):
    import matplotlib.image

    page = (built / "report.html").read_text()
    shown = sorted(p.split("'")[0] for p in page.split("<img src='")[1:])
    assert shown == sorted(f"figures/{n}.png" for n in ("heatmap", "histories", "loglog", "per_orbit", "test_sets"))
    for name in shown:
        image = matplotlib.image.imread(built / name)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
        assert np.ptp(image[..., :3]) > 0  # not a blank canvas
    assert "http://" not in page and "https://" not in page  # nothing fetched from the network


def test_the_report_records_each_figure_and_the_runs_it_drew_from(sweep, built):
    import hpc

    s, root, bad = sweep
    figures = hpc.sql("SELECT * FROM figures", root=root)
    mine = figures[figures.path.str.startswith(str(built.resolve()))]
    assert sorted(pathlib.Path(p).name for p in mine.path) == sorted(
        f"{n}.png" for n in ("heatmap", "histories", "loglog", "per_orbit", "test_sets")
    )
    assert set(mine.made_by) == {f"hpc report {s.sweep_id}"}
    query = "SELECT f.path, r.run_id FROM figures f JOIN figure_runs r USING (figure_id)"
    used = hpc.sql(query, root=root)
    heatmap = set(used[used.path.str.endswith("heatmap.png")].run_id)
    assert heatmap == set(s.runs) - {bad}  # every completed run: the failed one is not in it


def test_result_files_hold_what_the_figures_need(sweep):
    s, root, bad = sweep
    run_id = next(r for r in s.runs if r != bad)
    with h5py.File(s.result_path(run_id)) as f:
        group = f["metrics"][SETS[1]]
        radius, accel = group["radius"][()], group["accel_norm"][()]
        assert radius.shape == accel.shape == (2, 360) and np.all(radius > 1)
        assert np.all(np.isfinite(accel)) and np.all(accel > 0)
        stored_max = f["datasets"].attrs["train_max_radius"]
        assert f["datasets"].attrs["train_min_radius"] < stored_max
    import neuralode

    train_set = neuralode.load_or_generate(root, "complex", True, 2, 0, "train")
    assert stored_max == pytest.approx(np.linalg.norm(train_set.y[..., :3], axis=-1).max() / neuralode.R_EARTH)


def test_evaluating_the_best_run_of_each_width_writes_files_beside_them(sweep, tmp_path):
    s, root, bad = sweep
    results = {r: s.result_path(r).read_bytes() for r in s.runs}
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "evaluate.py"),
            "latest",
            "--best-of",
            "width",
            "dataset=circular_3d",
            "n_orbits=3",
            "--root",
            str(root),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    table, columns = rows(s, all_config=True)
    metric = resolve_metric(columns, METRIC)
    chosen = {int(k[0]): row["run_id"] for k, row in best_runs(table, metric, ["config.width"]).items()}
    assert set(chosen) == {8, 16} and bad not in chosen.values()
    column = "eval.circular_TBP_3D_3_test.accel_pct_mean"
    out = tmp_path / "runs.csv"
    hpc_cli("collect", "latest", "-o", str(out), root=root)
    with open(out) as handle:
        collected = {r["run_id"]: r for r in csv.DictReader(handle)}
    for run_id in s.runs:
        evals = s.result_path(run_id).with_suffix(".evals") / "circular_TBP_3D_3_test.h5"
        assert evals.exists() == (run_id in chosen.values())
        if evals.exists():
            with h5py.File(evals) as f:
                assert f["config"].attrs["evaluated_run"] == run_id
                assert float(collected[run_id][column]) == f["metrics/circular_TBP_3D_3_test"].attrs["accel_pct_mean"]
        else:
            assert collected[run_id][column] == ""
    assert results == {r: s.result_path(r).read_bytes() for r in s.runs}  # result files untouched
    page = report.build(s, tmp_path / "with-evals")["html"].read_text()
    assert "eval.circular_TBP_3D_3_test.accel_pct_mean" in page
    # the figure of errors per test set reads the evaluations beside the runs
    from neuralode._figures import _errors_per_set

    best = s.result_path(chosen[16])
    with h5py.File(best.with_suffix(".evals") / "circular_TBP_3D_3_test.h5") as f:
        evaluated = f["metrics/circular_TBP_3D_3_test"].attrs["accel_pct_mean"]
    with h5py.File(best) as f:
        own = f[f"metrics/{SETS[-1]}"].attrs["accel_pct_mean"]
    assert _errors_per_set([best]) == {SETS[-1]: [own], "circular_TBP_3D_3_test": [evaluated]}
    assert (tmp_path / "with-evals" / "figures" / "test_sets.png").stat().st_size > 1000

    # the same choice through the query of `hpc runs`, across every sweep of the root
    done = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), "runs", "--filter", "width=16", "dataset=circular_3d", "n_orbits=3"]
        + ["--root", str(root)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"best by {metric}: {chosen[16]} " in done.stdout

    # the same family with another seed is another test set: a column of its own, not a clash
    best = chosen[8]
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "evaluate.py"),
            best,
            "dataset=circular_3d",
            "n_orbits=3",
            "dataset.test_seed=9",
            "--root",
            str(root),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (other,) = [
        c
        for c in rows(s, all_config=True)[1]
        if c.startswith("eval.circular_TBP_3D_3_test-") and c.endswith(".accel_pct_mean")
    ]
    row = {r["run_id"]: r for r in rows(s, all_config=True)[0]}[best]
    assert row[other] != row[column] and row[column] == float(collected[best][column])

    wrong = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), "latest", "--best-of", "widht", "--root", str(root)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert wrong.returncode == 2 and "`--best-of widht` is not a parameter of this sweep" in wrong.stderr
    wrong = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), "latest", "lr=1", "--root", str(root)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert wrong.returncode == 2 and "takes overrides of dataset, n_orbits, metrics only" in wrong.stderr


def test_bad_options_name_what_varies_before_writing(sweep, tmp_path):
    s, root, bad = sweep
    with pytest.raises(
        ValueError,
        match=r"`--x widht` is not a parameter that varies in this sweep; those that "
        r"vary are: width",
    ):
        report.build(s, tmp_path / "r", report.Options(x="widht"))
    with pytest.raises(ValueError, match=r"`--x`, `--y` and `--facet` must name different parameters, got width, w"):
        report.build(s, tmp_path / "r", report.Options(x="width", y="width"))
    with pytest.raises(ValueError, match=r"`--metric nope` is not a metric of this sweep; its metrics are: metrics\."):
        report.build(s, tmp_path / "r", report.Options(metric="nope"))
    assert not (tmp_path / "r").exists()


def _fake_result(path, run_id, status="completed", **config):
    tree = {
        "metrics": {"set_1_test": {"accel_pct_mean": float(config.get("width", 1))}},
        "history": {"loss": np.linspace(2, 1, 5)},
        "training": {"final_loss": 1.0},
    }
    write_result(
        path,
        status=status,
        config=config,
        config_yaml="",
        run_id=run_id,
        metadata={},
        tree=tree,
        message="diverged" if status != "completed" else "",
    )


def test_a_sweep_still_running_and_a_sweep_of_one_run(tmp_path):
    s = Sweep.create(tmp_path, "exp", "no_such_module:train")
    for run_id in ("a1", "b2", "c3"):
        s.add_run(run_id, [f"width={len(s.runs)}"], "")
    s.add_submission("local", None, list(s.runs), {}, save=True)
    _fake_result(s.result_path("a1"), "a1", width=8, seed=0)
    claim = Claim(s.result_path("b2")).acquire()  # being trained now
    try:
        done = report.build(s, tmp_path / "out")
    finally:
        claim.release()
    page = done["html"].read_text()
    assert "1 run has not finished" in page and "generic" in page and not done["errors"]
    tables = _tables(page)
    assert [r[0] for r in tables["failures"][1:]] == ["c3"]  # lost: the local run ended without a result
    assert len(tables["configs"]) == 3  # two header rows, one configuration

    one = Sweep.create(tmp_path / "one", "exp", "no_such_module:train")
    one.add_run("z9", ["width=8"], "")
    one.add_submission("local", None, ["z9"], {}, save=True)
    _fake_result(one.result_path("z9"), "z9", width=8, seed=0)
    done = report.build(one, tmp_path / "one-out")
    page = done["html"].read_text()
    assert "Parameters that vary: none" in page and len(_tables(page)["configs"]) == 3 and not done["errors"]


def test_seeds_aggregate_and_goals_rank():
    table = [
        {"run_id": f"r{i}", "state": "completed", "config.width": w, "config.seed": s, "m": v, "slope": sl}
        for i, (w, s, v, sl) in enumerate(
            [(8, 0, 3.0, -1.0), (8, 1, 5.0, -2.2), (16, 0, 1.0, -3.0), (16, 1, float("nan"), -1.9)]
        )
    ]
    table.append({"run_id": "r9", "state": "failed", "config.width": 16, "config.seed": 2, "m": 0.0, "slope": -2.0})
    spec = report.Spec(goals={"slope": -2.0})
    configs = report.rank(report.aggregate(table, ["config.width"], ["m", "slope"], spec), "m", "min")
    assert [c.params for c in configs] == [{"width": 16}, {"width": 8}]
    sixteen, eight = configs
    assert sixteen.stats["m"] == {"mean": 1.0, "std": sixteen.stats["m"]["std"], "n": 1, "best": 1.0, "best_run": "r2"}
    assert math.isnan(sixteen.stats["m"]["std"]) and len(sixteen.runs) == 3 and len(sixteen.completed) == 2
    assert eight.stats["m"]["mean"] == 4.0 and eight.stats["m"]["std"] == pytest.approx(np.std([3, 5], ddof=1))
    assert sixteen.stats["slope"]["best"] == -1.9 and eight.stats["slope"]["best"] == -2.2  # closest to -2
    assert report.rank(configs, "slope", -2.0)[0].params == {"width": 8}  # mean -1.6 beats -2.45
    assert {k: r["run_id"] for k, r in best_runs(table, "m", ["config.width"]).items()} == {("8",): "r0", ("16",): "r2"}


def test_an_infinite_critical_radius_is_the_best_and_counts():
    # inf: the learned field holds 1/r^2 beyond every test radius; NaN: no value at all
    table = [
        {"run_id": f"r{i}", "state": "completed", "config.width": w, "config.seed": s, "rc": v}
        for i, (w, s, v) in enumerate([(8, 0, 9.5), (8, 1, float("inf")), (16, 0, 10.0), (16, 1, float("nan"))])
    ]
    spec = report.Spec(goals={"rc": "max"})
    configs = report.rank(report.aggregate(table, ["config.width"], ["rc"], spec), "rc", "max")
    assert [c.params for c in configs] == [{"width": 8}, {"width": 16}]
    eight, sixteen = configs
    assert eight.stats["rc"]["mean"] == math.inf and eight.stats["rc"]["n"] == 2
    assert eight.stats["rc"]["best_run"] == "r1"
    assert math.isnan(eight.stats["rc"]["std"]) and sixteen.stats["rc"]["n"] == 1
    assert best_runs(table, "rc", goal="max")[()]["run_id"] == "r1"
    assert num(math.inf) == "&infin;" and num(math.nan) == "&ndash;"


def test_metric_names_resolve_to_one_column():
    columns = ["run_id", "config.width", "metrics.a_1_test.accel_pct_mean", "metrics.a_100_test.accel_pct_mean"]
    assert resolve_metric(columns, "metrics.a_1_test.accel_pct_mean") == "metrics.a_1_test.accel_pct_mean"
    assert resolve_metric(columns, ("metrics.*_100_test.accel_pct_mean", "metrics.*")) == columns[3]
    assert resolve_metric(columns, ("metrics.*_1000_test.*", "metrics.*")) == columns[2]
    with pytest.raises(ValueError, match="matches 2 columns"):
        resolve_metric(columns, "*accel_pct_mean")
    with pytest.raises(ValueError, match="its metrics are: metrics.a_1_test.accel_pct_mean, metrics.a_100"):
        resolve_metric(columns, "config.width")


# ---------------------------------------------------------------------------------------------
# In a real browser


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name), shutil.which("chromedriver")
    return None, shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through selenium; skipped with the reason where it cannot run (not
    installed and not root to install it), required in CI."""
    browser_path, driver_path = _chromium()
    reason = None
    if (browser_path is None or driver_path is None) and os.geteuid() == 0:
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "install_browser.sh")], capture_output=True, text=True, timeout=900
        )
        browser_path, driver_path = _chromium()
        reason = None if driver_path else f"install_browser.sh failed: {done.stderr[-1000:]}"
    if browser_path is None or driver_path is None:
        reason = reason or "no Chromium and chromedriver (run scripts/install_browser.sh as root)"
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        reason = "selenium is not installed (pip install -e '.[dev]')"
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test must run in CI: {reason}")
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = browser_path
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


@pytest.mark.browser
def test_the_page_loads_in_a_browser(built, browser):
    browser.get((built / "report.html").resolve().as_uri())
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]);"
    )
    assert len(images) == 5 and all(complete and width > 0 for _, complete, width in images), images
    rows = browser.execute_script("return document.querySelectorAll('#configs tr').length;")
    assert rows == 2 + 2  # two header rows, two configurations
    failures = browser.execute_script("return document.querySelectorAll('#failures tr').length;")
    assert failures == 1 + 1
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    broken = built.parent / "broken"  # the check can fail: a missing figure is seen as one
    shutil.copytree(built, broken)
    (broken / "figures" / "loglog.png").unlink()
    browser.get((broken / "report.html").resolve().as_uri())
    widths = browser.execute_script("return Array.from(document.images).map(i => i.naturalWidth);")
    assert sorted(widths)[0] == 0 and browser.get_log("browser")
