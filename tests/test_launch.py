"""The pure parts of submission, and the local (no Slurm) fallback."""

import json
import pathlib
import re
import subprocess
import sys
import time

import pytest

from conftest import LSQ_DIR, hpc_cli, run_lsq
from hpc import Profile, launch, layout, local
from hpc.store import write_result
from hpc.sweep import Sweep, find_sweep


@pytest.mark.slow
def test_without_slurm_a_sweep_runs_locally(results):
    done = run_lsq("-m", "degree=2,3", "cluster.submit=local", f"results_root={results}", "experiment=loc")
    assert "Running 2 runs locally (cluster.submit=local)" in done.stdout
    assert len(list((results / "loc").glob("*.h5"))) == 2
    assert "completed 2" in hpc_cli("status", "latest", root=results).stdout
    sweep = Sweep.load(find_sweep("latest", results))
    for run_id in sweep.runs:  # one log per run, in the sweep directory
        assert f"Result: {results}/loc/{run_id}.h5" in local.log_path(sweep, run_id).read_text()


@pytest.mark.slow
def test_a_detached_local_sweep_returns_at_once_and_is_watched(results):
    done = run_lsq(
        "-m",
        "seed=4,5",
        "steps=40",
        "cluster.submit=local",
        "+cluster.detach=true",
        f"results_root={results}",
        "experiment=det",
    )
    assert "detached (driver pid" in done.stdout
    early = hpc_cli("status", "latest", root=results).stdout
    counts = dict(re.findall(r"(pending|running|completed|lost) (\d+)", early))
    assert counts["lost"] == "0" and int(counts["pending"]) + int(counts["running"]) >= 1, early
    assert hpc_cli("wait", "latest", "--interval", "1", "--timeout", "300", root=results).returncode == 0
    assert "completed 2" in hpc_cli("status", "latest", root=results).stdout


def _alive(pid: int) -> bool:
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_a_killed_local_driver_leaves_no_live_workers(results):
    driver = subprocess.Popen(
        [
            sys.executable,
            "lsq.py",
            "-m",
            "steps=100000",
            "step_s=0.05",
            "+cluster.checkpoint_steps=5",
            "seed=1,2",
            "cluster.submit=local",
            f"results_root={results}",
            "experiment=orphan",
        ],
        cwd=LSQ_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        while len(list((results / "orphan").glob("*.ckpt"))) < 2:  # both workers are training
            assert time.monotonic() < deadline and driver.poll() is None
            time.sleep(0.5)
        workers = [json.loads(p.read_text())["pid"] for p in (results / "orphan").glob("*.claim")]
        assert len(workers) == 2 and all(map(_alive, workers))
    finally:
        driver.kill()
        driver.wait()
    deadline = time.monotonic() + 30
    while any(map(_alive, workers)):
        assert time.monotonic() < deadline, "workers outlived their driver"
        time.sleep(0.5)
    shown = hpc_cli("status", "latest", "--runs", root=results).stdout
    assert "lost 2" in shown and shown.count("its checkpoint is kept") == 2, shown


def test_start_sweep_without_hydra(tmp_path, capsys):
    """Dedupe, skip completed runs, run the rest locally, and report final states."""
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "tiny_app.py").write_text(
        "import hpc\n"
        "def run(cfg):\n"
        f"    hpc.write_result('{tmp_path}/root/exp/' + cfg.rid + '.h5', status='completed', run_id=cfg.rid,\n"
        "                     config={}, config_yaml='', metadata={})\n"
        "    return {'status': 'completed', 'run_id': cfg.rid}\n"
        "APP = hpc.App(name='tiny', entry=run, prepare=lambda config, overrides: None)\n"
    )
    local = {"submit": "local", "time_min": 1, "cpus_per_task": 1}
    root = tmp_path / "root"
    runs = [launch.Run(rid, [f"x={rid}"], f"rid: {rid}\n", root, "exp", local) for rid in ("a", "b", "a")]
    first = layout.result_path(root, "exp", "a")
    write_result(first, status="completed", run_id="a", config={}, config_yaml="", metadata={})
    sweep, states = launch.start_sweep(runs, app="tiny_app:APP", workdir=str(tmp_path / "work"))
    assert list(sweep.runs) == ["a", "b"] and "1 already completed" in capsys.readouterr().out
    assert {rid: s.status for rid, s in states.items()} == {"a": "completed", "b": "completed"}
    assert [s["runs"] for s in sweep.submissions] == [["b"]]

    varied = [runs[0], launch.Run("c", [], "", root, "exp", {**local, "cpus_per_task": 2})]
    with pytest.raises(ValueError, match="one manifest per sweep"):
        launch.start_sweep(varied, app="tiny_app:APP", workdir=str(tmp_path), plan=True)
    assert len(list((root / "exp" / "sweeps").iterdir())) == 1  # nothing written by the refusal


def test_a_read_only_results_root_is_refused(tmp_path, tmpfs):
    ro = tmpfs("ro,size=1m")
    runs = [launch.Run("a", [], "", ro, "exp", {"submit": "local", "time_min": 1, "cpus_per_task": 1})]
    with pytest.raises(ValueError, match=r"the results root .*tmpfs0 is not writable \(Read-only file system\)"):
        launch.start_sweep(runs, app="x:APP", workdir=str(tmp_path))


def test_an_impossible_results_root_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    local = {"submit": "local", "time_min": 1, "cpus_per_task": 1}
    runs = [launch.Run("a", [], "", tmp_path / "file" / "root", "exp", local)]
    with pytest.raises(ValueError, match="the results root .*file/root is not writable"):
        launch.start_sweep(runs, app="x:APP", workdir=str(tmp_path))
    with pytest.raises(ValueError, match="mem_per_cpu_mb"):
        launch.start_sweep(
            [launch.Run("a", [], "", tmp_path / "r", "exp", {**local, "mem_per_cpu_mb": "abc"})],
            app="x:APP",
            workdir=str(tmp_path),
        )
    assert not (tmp_path / "r").exists()  # no sweep record, no index entry


def test_runs_per_task_are_fitted_to_the_time_limit_from_the_sweeps_completed_runs(tmp_path, capsys):
    root = tmp_path / "root"
    local = {"submit": "local", "time_min": 1, "cpus_per_task": 1}
    runs = [launch.Run(rid, [], f"rid: {rid}\n", root, "exp", local) for rid in ("a", "b", "c", "d")]
    for run, wall_s in zip(runs, (500, 600, 700)):  # d has not run yet; the median of the others is 600 s
        meta = {"wall_time_s": wall_s}
        write_result(
            layout.result_path(root, "exp", run.run_id),
            status="completed",
            run_id=run.run_id,
            config={},
            config_yaml="",
            metadata=meta,
        )
    (tmp_path / "tiny_app.py").write_text("import hpc\nAPP = hpc.App(name='tiny', entry=print, prepare=print)\n")
    sweep, _ = launch.start_sweep(runs[:3], app="tiny_app:APP", workdir=str(tmp_path))
    assert launch.expected_run_s(sweep) == (600, 3)

    # 60 min less the 300 s warning holds 5 runs of 600 s, not 8: fewer per task, and an ensemble no larger
    fitted = launch.fit_packing(sweep, Profile(time_min=60, runs_per_task=8, ensemble=8))
    assert (fitted.runs_per_task, fitted.ensemble) == (5, 5)
    assert "do not fit in cluster.time_min=60 (less the 300 s warning): packing 5 per task" in capsys.readouterr().out
    roomy = Profile(time_min=600, runs_per_task=8)
    assert launch.fit_packing(sweep, roomy) is roomy and capsys.readouterr().out == ""
    fresh = Sweep.load(sweep.path)
    fresh.runs.clear()  # nothing known yet: unchanged
    assert launch.fit_packing(fresh, Profile(time_min=1, runs_per_task=8)).runs_per_task == 8


def test_resubmit_from_python_sends_what_did_not_complete(tmp_path, capsys):
    import hpc

    (tmp_path / "work").mkdir()
    flag = tmp_path / "fail-now"
    (tmp_path / "work" / "flaky_app.py").write_text(
        "import os, hpc\n"
        "def run(cfg):\n"
        f"    status = 'failed' if os.path.exists('{flag}') and cfg.rid == 'b' else 'completed'\n"
        f"    hpc.write_result('{tmp_path}/root/exp/' + cfg.rid + '.h5', status=status, run_id=cfg.rid,\n"
        "                     config={}, config_yaml='', metadata={})\n"
        "    return {'status': status, 'run_id': cfg.rid}\n"
        "APP = hpc.App(name='flaky', entry=run, prepare=lambda config, overrides: None)\n"
    )
    flag.write_text("")
    local = {"submit": "local", "time_min": 1, "cpus_per_task": 1}
    runs = [launch.Run(r, [f"x={r}"], f"rid: {r}\n", tmp_path / "root", "exp", local) for r in ("a", "b")]
    sweep, states = launch.start_sweep(runs, app="flaky_app:APP", workdir=str(tmp_path / "work"))
    assert {r: s.status for r, s in states.items()} == {"a": "completed", "b": "failed"}
    flag.unlink()
    capsys.readouterr()
    assert hpc.resubmit(sweep.path, ["time_min=2"]) == ["b"]  # the API the CLI calls
    said = capsys.readouterr().out
    assert "time_min=2" in said and "Resubmitted 1 runs as local processes" in said
    assert {s.run_id: s.status for s in status_of(sweep)} == {"a": "completed", "b": "completed"}
    assert hpc.resubmit(sweep) == [] and "Nothing to resubmit" in capsys.readouterr().out


def status_of(sweep):
    from hpc.status import run_states

    return run_states(Sweep.load(sweep.path))
