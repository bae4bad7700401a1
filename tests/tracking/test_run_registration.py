"""A run registers its model last, with its validation report's verdict, and a run that fails or is
interrupted changes nothing in the registry: its MLflow run ends FAILED or KILLED, the alias stays.

Each test reproduces a defect of the drill: a SIGTERM during the report left `challenger` on an
unreported version; an output path that was a file moved `challenger` and ended in a traceback; a
hard-killed run stayed RUNNING forever.
"""

import hashlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from creditmodel.cli import main
from creditmodel.pipeline import run_pipeline
from creditmodel.signals import Terminated
from creditmodel.tracking.mlflow_tracking import HOST_TAG, PID_TAG, START_TAG, cleanup_stale_runs
from creditmodel.tracking.registry import register_version


def registry_state(uri: str) -> dict:
    client = MlflowClient(uri)
    versions = sorted(int(v.version) for v in client.search_model_versions("name='sme_pd'"))
    aliases = dict(client.get_registered_model("sme_pd").aliases)
    return {"versions": versions, "aliases": {k: str(v) for k, v in aliases.items()}}


def run_statuses(uri: str) -> dict[str, str]:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("creditmodel")
    return {r.info.run_id: r.info.status for r in client.search_runs([exp.experiment_id], max_results=1000)}


def digest(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def small(small_run):
    return small_run


def test_the_run_registers_last_with_the_reports_verdict(small):
    r, uri = small["result"], small["uri"]
    client = MlflowClient(uri)
    version = client.get_model_version("sme_pd", r.tracked.model_version)
    run = client.get_run(r.tracked.run_id)
    assert run.info.status == "FINISHED" and version.run_id == run.info.run_id
    assert version.tags["validation_status"] == run.data.tags["validation_report_status"] in ("green", "amber", "red")
    assert version.tags["validation_report"] == f"runs:/{run.info.run_id}/validation/validation_report.html"
    assert "validation_status" not in run.data.tags  # nothing for `register` to copy
    assert run.data.tags[HOST_TAG] == socket.gethostname() and run.data.tags[PID_TAG] == str(os.getpid())


def test_sigterm_during_the_report_leaves_challenger_and_outputs_unchanged(small, monkeypatch):
    """Also: the next run marks a run left RUNNING by a dead process (SIGKILL) as FAILED."""
    import creditmodel.pipeline as pipeline

    uri, out = small["uri"], small["result"].output_dir
    client = MlflowClient(uri)
    exp_id = client.get_experiment_by_name("creditmodel").experiment_id
    stale = client.create_run(exp_id, tags={HOST_TAG: socket.gethostname(), PID_TAG: str(dead_pid()),
                                            START_TAG: "1"}).info.run_id
    before, files, runs = registry_state(uri), digest(out), run_statuses(uri)
    entries = sorted(p.name for p in out.parent.iterdir())
    real = pipeline.build_report

    def killed_while_reporting(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "build_report", killed_while_reporting)
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated):
        run_pipeline(small["config"], tracking_uri=uri)
    assert signal.getsignal(signal.SIGTERM) == handler  # the run's handler lived only as long as the run
    assert registry_state(uri) == before
    assert digest(out) == files
    assert sorted(p.name for p in out.parent.iterdir()) == entries  # no staging directory left
    new = {k: v for k, v in run_statuses(uri).items() if k not in runs}
    assert list(new.values()) == ["KILLED"]
    assert client.get_run(stale).info.status == "FAILED"
    assert "was gone" in client.get_run(stale).data.tags["creditmodel.cleanup"]


def test_an_output_path_that_is_a_file_fails_in_one_line_and_registers_nothing(small, tmp_path, capsys):
    uri = small["uri"]
    target = tmp_path / "out"
    target.write_text("not a directory")
    before, runs = registry_state(uri), run_statuses(uri)
    rc = main(["run", "--config", str(small["root"] / "small.toml"), "--out", str(target), "--tracking-uri", uri])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and str(target) in err[0], err
    assert target.read_text() == "not a directory"
    assert registry_state(uri) == before
    assert {v for k, v in run_statuses(uri).items() if k not in runs} <= {"FAILED"}
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_output_fails_in_one_line_and_registers_nothing(small, tmp_path, capsys):
    uri = small["uri"]
    target = tmp_path / "out"
    target.mkdir()
    (target / "kept.txt").write_text("x")
    target.chmod(0o555)
    before = registry_state(uri)
    try:
        rc = main(["run", "--config", str(small["root"] / "small.toml"), "--out", str(target), "--tracking-uri", uri])
    finally:
        target.chmod(0o755)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert registry_state(uri) == before


def test_registration_interrupted_before_the_alias_moves_is_undone(small, monkeypatch):
    uri = small["uri"]
    client = MlflowClient(uri)
    before = registry_state(uri)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", interrupted)
    with pytest.raises(KeyboardInterrupt):
        register_version(uri, small["result"].tracked.run_id, "sme_pd", "challenger", {"validation_status": "green"})
    monkeypatch.undo()
    assert registry_state(uri) == before
    assert str(client.get_model_version_by_alias("sme_pd", "challenger").version) == before["aliases"]["challenger"]


def test_runs_cleanup_marks_only_dead_processes_of_this_host(small, capsys):
    uri = small["uri"]
    client = MlflowClient(uri)
    exp_id = client.get_experiment_by_name("creditmodel").experiment_id
    host = socket.gethostname()
    dead = client.create_run(exp_id, tags={HOST_TAG: host, PID_TAG: str(dead_pid())}).info.run_id
    alive = client.create_run(exp_id, tags={HOST_TAG: host, PID_TAG: str(os.getpid())}).info.run_id
    elsewhere = client.create_run(exp_id, tags={HOST_TAG: host + "-other", PID_TAG: str(dead_pid())}).info.run_id
    # a pid reused by another process: same number, different start time
    reused = client.create_run(exp_id, tags={HOST_TAG: host, PID_TAG: str(os.getpid()), START_TAG: "1"}).info.run_id
    assert main(["runs", "cleanup", "--tracking-uri", uri]) == 0
    assert "marked 2 run(s)" in capsys.readouterr().out
    status = {k: client.get_run(k).info.status for k in (dead, alive, elsewhere, reused)}
    assert status == {dead: "FAILED", alive: "RUNNING", elsewhere: "RUNNING", reused: "FAILED"}
    assert cleanup_stale_runs(uri, "creditmodel") == []
    for run_id in (alive, elsewhere):
        client.set_terminated(run_id, "FAILED")
