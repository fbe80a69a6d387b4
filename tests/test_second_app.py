"""A second workload (`tests/lsq_app`: numpy least squares, no JAX, no neuralode, its own
`hpc.App`) through the whole toolkit on the real local cluster: sweep, status, a failure,
resubmit, collect and a report with a figure of its own. `hpc` is not changed for it."""

import csv

import h5py
import pytest

from conftest import LSQ_DIR, hpc_cli, run_lsq


@pytest.mark.slurm
def test_another_app_sweeps_fails_resubmits_collects_and_reports(slurm_cluster, tmp_path):
    flag = tmp_path / "fail-now"
    flag.touch()
    root = tmp_path / "results"
    done = run_lsq(
        "-m", "degree=1,3,5", f"results_root={root}", "fail_degree=3", f"fail_flag={flag}", "hydra.launcher.wait=true"
    )  # wait: blocks until every run is final
    assert "Submitted 3 runs as 1 array job(s)" in done.stdout, done.stdout
    assert not (LSQ_DIR / "outputs").exists() and not (LSQ_DIR / "multirun").exists()  # Hydra writes nothing here
    status = hpc_cli("status", "latest", root=root).stdout
    assert "completed 2" in status and "failed 1" in status, status
    failed = hpc_cli("failed", "latest", root=root, check=False)
    assert failed.returncode == 1 and "RuntimeError: asked to fail" in failed.stdout and "degree=3" in failed.stdout

    flag.unlink()  # the cause is fixed: the resubmit completes it
    again = hpc_cli("resubmit", "latest", root=root)
    assert "Resubmitted 1 runs" in again.stdout, again.stdout
    hpc_cli("wait", "latest", "--interval", "1", "--timeout", "240", root=root)
    assert "completed 3" in hpc_cli("status", "latest", root=root).stdout

    table = tmp_path / "runs.csv"
    hpc_cli("collect", "latest", "-o", str(table), root=root)
    with open(table) as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(int(r["config.degree"]) for r in rows) == [1, 3, 5]
    for row in rows:  # the table holds what the result files hold
        with h5py.File(root / "fits" / f"{row['run_id']}.h5", "r") as f:
            assert f.attrs["format"] == "lsq-result/1"
            assert float(row["metrics.fit.rmse"]) == pytest.approx(float(f["metrics/fit"].attrs["rmse"]), rel=1e-12)
    assert "training.final_loss" not in rows[0]  # no science words: the app names its own columns

    report = hpc_cli("report", "latest", "-o", str(tmp_path / "report"), root=root)
    page = (tmp_path / "report" / "report.html").read_text()
    assert "figures from lsq:APP" in page and (tmp_path / "report" / "figures" / "fit.png").stat().st_size > 1000
    assert "Ranked by the mean of <code>metrics.fit.rmse</code>" in page, report.stdout
