"""The scoring log: every scored application is appended (model, time, features, PD, grade) to rotated
parts; a log that cannot be written never blocks or fails a request, and /health says so."""

from __future__ import annotations

import json
import logging
import os
import shutil

import pytest

from creditmodel.cli import main
from creditmodel.exceptions import ConfigError
from creditmodel.service.app import create_app
from creditmodel.service.models import Health
from creditmodel.service.scoring_log import ScoringLog, read_scoring_log

from .conftest import asgi_calls, json_features, start_server, stop_server


def _same(sent, logged):
    if sent is None or logged is None:
        return sent is None and logged is None
    return sent == logged if isinstance(sent, str) else float(sent) == pytest.approx(float(logged), rel=0, abs=0)


@pytest.fixture()
def rows(feature_rows):
    return feature_rows[:30]


def test_every_scored_application_is_logged_with_its_features_pd_and_grade(bundle, rows, tmp_path):
    log = ScoringLog(tmp_path / "log", max_bytes=20_000)  # small parts: the log rotates
    app = create_app(bundle, scoring_log=log)
    calls = [("POST", "/v1/score", {"applications": [{"id": f"S-{k}-{i}", "features": r}
                                                     for i, r in enumerate(rows[k * 10:(k + 1) * 10])]})
             for k in range(3)]
    calls.append(("POST", "/v1/price", {"applications": [
        {"id": f"P-{i}", "features": r, "loan": {"guarantee_type": "unsecured", "amount": 200_000.0,
                                                 "maturity_years": 1.0}} for i, r in enumerate(rows[:2])]}))
    calls.append(("POST", "/v1/score", {"applications": [{"id": "bad", "features": {}}]}))  # 422: not a score
    answers = asgi_calls(app, calls)
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 422]
    log.flush()
    records = read_scoring_log(tmp_path / "log")
    assert len(records) == 32 and len(list((tmp_path / "log").glob("scores-*.jsonl"))) > 1
    by_id = {r["id"]: r for r in records}
    sent = {a["id"]: a["features"] for _, _, body in calls[:4] for a in body["applications"]}
    for answer, (_, path, _) in zip(answers[:4], calls[:4]):
        body = answer.json()
        for res in body["results"]:
            rec = by_id[res["id"]]
            assert rec["model"] == body["model"] and rec["path"] == path
            assert rec["pd"] == res["pd"] and rec["grade"] == res["grade"]  # exactly what was answered
            assert set(rec["features"]) == set(bundle.schema.names)
            assert all(_same(sent[res["id"]].get(n), rec["features"][n]) for n in bundle.schema.names)
            assert rec["time"].endswith("+00:00")
    health = asgi_calls(app, [("GET", "/health", None)])[0]
    assert health.status_code == 200
    state = health.json()["scoring_log"]
    assert state["state"] == "ok" and state["written"] == 32 and state["failed"] == 0 and state["dropped"] == 0
    log.close()


def test_large_bodies_scored_in_the_helper_process_are_logged_by_the_worker(bundle, rows, tmp_path):
    log = ScoringLog(tmp_path / "log")
    app = create_app(bundle, scoring_log=log, large_body_bytes=1024)  # every body here goes to the helper
    try:
        body = {"applications": [{"id": f"L-{i}", "features": r} for i, r in enumerate(rows)]}
        answer = asgi_calls(app, [("POST", "/v1/score", body)])[0]
        assert answer.status_code == 200
    finally:
        app.state.large_requests.close()
    log.flush()
    records = {r["id"]: r for r in read_scoring_log(tmp_path / "log")}
    assert len(records) == len(rows) and log.state()["written"] == len(rows)
    assert all(records[r["id"]]["pd"] == r["pd"] for r in answer.json()["results"])
    assert {p.name.split("-")[2] for p in (tmp_path / "log").glob("*.jsonl")} == {str(os.getpid())}
    log.close()


def test_a_log_that_cannot_be_written_never_fails_a_request_and_is_reported(bundle, rows, tmp_path, caplog):
    where = tmp_path / "log"
    where.write_text("a file where the log directory should be")  # as a full disk or lost permissions would
    log = ScoringLog(where)
    app = create_app(bundle, scoring_log=log)
    body = {"applications": [{"id": f"A-{i}", "features": r} for i, r in enumerate(rows[:5])]}
    with caplog.at_level(logging.WARNING, logger="creditmodel.service.scoring_log"):
        first = asgi_calls(app, [("POST", "/v1/score", body)] * 3)
        log.flush()
    assert [a.status_code for a in first] == [200, 200, 200] and len(first[0].json()["results"]) == 5
    health = asgi_calls(app, [("GET", "/health", None)])[0]
    assert health.status_code == 200 and health.json()["status"] == "ok"  # scoring goes on
    Health.model_validate(health.json())  # as /openapi.json documents it
    state = health.json()["scoring_log"]
    assert state["state"] == "failing" and state["failed"] == 15 and state["written"] == 0
    assert "FileExistsError" in state["last_error"] or "NotADirectoryError" in state["last_error"]
    warnings = [r for r in caplog.records if "scoring log" in r.getMessage()]
    assert len(warnings) == 1 and str(where) in warnings[0].getMessage()  # one warning per distinct error
    where.unlink()  # the directory is usable again: the log resumes by itself
    assert asgi_calls(app, [("POST", "/v1/score", body)])[0].status_code == 200
    log.flush()
    state = log.state()
    assert state["state"] == "ok" and state["written"] == 5 and state["failed"] == 15
    assert len(read_scoring_log(where)) == 5
    log.close()


def test_reading_a_log_skips_a_torn_last_line_and_refuses_other_garbage(tmp_path):
    good = json.dumps({"time": "2025-01-01T00:00:00.000+00:00", "model": "m1", "id": "a", "pd": 0.1, "grade": "B1",
                       "features": {}})
    (tmp_path / "scores-1.jsonl").write_text(good + "\n" + good.replace("m1", "m2") + "\n" + good[:20])
    assert [r["model"] for r in read_scoring_log(tmp_path)] == ["m1", "m2"]
    assert len(read_scoring_log(tmp_path, model="m1")) == 1
    (tmp_path / "scores-2.jsonl").write_text("not json\n" + good + "\n")
    with pytest.raises(ConfigError, match=r"scores-2.jsonl line 1: not a scoring record") as err:
        read_scoring_log(tmp_path)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"not a directory"):
        read_scoring_log(tmp_path / "absent")


def test_reading_a_live_log_whose_torn_line_is_completed_meanwhile(tmp_path, monkeypatch):
    """A log read while the service writes it: the line torn when the part was read is skipped, even when the
    writer completes it before the reader looks again (a two-worker service test once failed on this)."""
    from pathlib import Path

    good = json.dumps({"time": "2025-01-01T00:00:00.000+00:00", "model": "m1", "id": "a", "pd": 0.1, "grade": "B1",
                       "features": {}})
    part = tmp_path / "scores-1.jsonl"
    part.write_text(good + "\n" + good[:20])
    read = Path.read_bytes

    def growing(self):  # each read sees the writer further on: the torn line is complete at the next read
        data = read(self)
        if self == part:
            part.write_text(good + "\n" + good + "\n")
        return data

    monkeypatch.setattr(Path, "read_bytes", growing)
    assert [r["id"] for r in read_scoring_log(tmp_path)] == ["a"]


def test_serve_with_an_unwritable_log_directory_is_one_line(bundle_dir, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert main(["serve", "--bundle", str(bundle_dir), "--scoring-log", str(tmp_path / "afile" / "log"),
                 "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--scoring-log {tmp_path / 'afile' / 'log'}: not a writable directory" in err[0]


def test_monitor_reads_the_scoring_log_for_the_psi_of_live_scores(bundle, demo_run, demo_frame, tmp_path):
    from creditmodel.validation.stats import psi

    log = ScoringLog(tmp_path / "log")
    app = create_app(bundle, scoring_log=log)

    oot = demo_frame[demo_frame["split"] == "oot"]
    apps = [{"id": str(i), "features": r} for i, r in enumerate(json_features(oot, bundle.schema.names))]
    answers = asgi_calls(app, [("POST", "/v1/score", {"applications": apps[k:k + 500]})
                               for k in range(0, len(apps), 500)])
    assert {a.status_code for a in answers} == {200}
    log.close()
    # another model's records in the same directory are not this model's traffic
    other = json.dumps({"time": "2025-01-01T00:00:00.000+00:00", "model": "another", "id": "x", "pd": 0.9,
                        "grade": "D", "features": {}})
    (tmp_path / "log" / "scores-other.jsonl").write_text(other + "\n")
    out = tmp_path / "mon"
    world = demo_run["result"].output_dir / "world"
    assert main(["monitor", "--bundle", str(demo_run["result"].bundle_dir), "--data", str(world), "--as-of",
                 "2024-06-30", "--out", str(out), "--scoring-log", str(tmp_path / "log"), "--no-mlflow"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["live_scores"] == len(oot)
    live = [r["pd"] for a in answers for r in a.json()["results"]]
    # independent reference: the development sample is the run's training split, scored by the bundle
    train = demo_frame[demo_frame["split"] == "train"]
    expected = psi(bundle.predict_pd(train), live)
    assert s["live_psi"] == pytest.approx(expected.value, rel=1e-9) and s["live_psi_status"] == expected.status
    html = (out / "monitoring_report.html").read_text()
    assert f"{s['live_psi']:.4f}" in html and f"{len(oot):,} scored applications" in html
    shutil.rmtree(out)
    (tmp_path / "log" / "scores-bad.jsonl").write_text("{\n")
    assert main(["monitor", "--bundle", str(demo_run["result"].bundle_dir), "--data", str(world), "--as-of",
                 "2024-06-30", "--out", str(out), "--scoring-log", str(tmp_path / "log")]) == 2
    assert not out.exists()


def test_a_served_model_with_two_workers_logs_every_request(bundle_dir, feature_rows, tmp_path):
    import time

    import httpx

    proc, url = start_server(bundle_dir, "--scoring-log", str(tmp_path / "log"), "--workers", "2")
    try:
        sent = 0
        with httpx.Client(base_url=url, timeout=60) as c:
            for k in range(8):
                body = {"applications": [{"id": f"{k}-{i}", "features": r} for i, r in enumerate(feature_rows[:5])]}
                assert c.post("/v1/score", json=body).status_code == 200
                sent += 5
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(read_scoring_log(tmp_path / "log")) < sent:
                time.sleep(0.2)
            health = c.get("/health").json()
        assert health["status"] == "ok" and health["scoring_log"]["state"] == "ok"
    finally:
        stop_server(proc)
    records = read_scoring_log(tmp_path / "log")
    assert sorted(r["id"] for r in records) == sorted(f"{k}-{i}" for k in range(8) for i in range(5))
    assert {r["model"] for r in records} == {health["model"]}
