"""The application endpoints served from a PostgreSQL store answer as they do from the DuckDB store: the same
features, PD, grade, reasons and price; rows added while the service runs, dated on or after the decision
date, move nothing; `serve` refuses an unreachable store or one that does not fit the bundle in one line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pandas as pd
import pytest
from starlette.testclient import TestClient

from creditmodel.data.io import read_tables
from creditmodel.exceptions import StoreError
from creditmodel.export.bundle import load_bundle
from creditmodel.features.online import build_store
from creditmodel.service.app import create_app

from .application_requests import application_body as _body
from .application_requests import sample_loans as _loans

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed: the PostgreSQL store is not tested")

from creditmodel.features.online_pg import build_store_pg  # noqa: E402


@pytest.fixture(scope="module")
def served(demo_run, postgres_server, tmp_path_factory):
    result = demo_run["result"]
    bundle = load_bundle(result.bundle_dir)
    tables = read_tables(result.output_dir / "world")
    path = tmp_path_factory.mktemp("appstore_pg") / "store.duckdb"
    build_store(tables, path)
    db = postgres_server("applications")
    url = f"{db}?schema=bank"
    build_store_pg(tables, url)
    return {"bundle": bundle, "tables": tables, "db": db, "url": url, "bundle_dir": result.bundle_dir, "duck_path": path,
            "duck": TestClient(create_app(bundle, store=f"duckdb://{path}")),
            "pg": TestClient(create_app(bundle, store=url)), "frame": pd.read_parquet(result.features_path)}


def _same(got, want, where):
    """Equal answers: the same keys, texts and grades; floats to 1e-12 (engines sum doubles in other orders)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), where
        for k in want:
            _same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            _same(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(got, bool):
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12), where
    else:
        assert got == want, where


def test_postgresql_answers_as_duckdb(served):
    bundle, frame = served["bundle"], served["frame"].set_index("loan_id")
    names = list(bundle.schema.names)
    loans = _loans(served, 12, 21)
    expected = bundle.predict_pd(frame.loc[loans["loan_id"], names])
    for i, loan in enumerate(loans.itertuples()):
        for path in ("/v1/applications/score", "/v1/applications/price"):
            a = served["duck"].post(path, json=_body(loan))
            b = served["pg"].post(path, json=_body(loan))
            assert a.status_code == b.status_code == 200, (a.text, b.text)
            a, b = a.json()["result"], b.json()["result"]
            assert b["pd"] == pytest.approx(expected[i], rel=1e-12, abs=0)
            _same(b, a, path)
    unknown = served["pg"].post("/v1/applications/score", json=_body(next(loans.itertuples()), enterprise_id=987_654_321))
    assert unknown.status_code == 200 and unknown.json()["result"]["new_to_bank"] is True


def test_a_guarantor_is_scored_from_the_postgresql_store(served):
    loan = next(_loans(served, 1, 4).itertuples())
    others = served["tables"]["enterprises"]["enterprise_id"]
    guarantor = int(others[others != loan.enterprise_id].iloc[5])
    body = {**_body(loan, guarantee_type="third_party", group_id=None), "guarantor_id": guarantor}
    a, b = (served[k].post("/v1/applications/price", json=body) for k in ("duck", "pg"))
    assert a.status_code == b.status_code == 200, b.text
    a, b = a.json()["result"], b.json()["result"]
    assert b["guarantor"]["enterprise_id"] == a["guarantor"]["enterprise_id"] == guarantor
    assert b["guarantor"]["pd"] == pytest.approx(a["guarantor"]["pd"], rel=1e-12, abs=0)
    assert b["pd"] == pytest.approx(a["pd"], rel=1e-12, abs=0) and b["grade"] == a["grade"]


def test_rows_added_while_serving_on_or_after_the_decision_date_move_nothing(served):
    loans = _loans(served, 4, 8)
    before = [served["pg"].post("/v1/applications/score", json=_body(loan)).json()["result"]
              for loan in loans.itertuples()]
    d = pd.Timestamp(loans["application_date"].max())
    with psycopg.connect(served["db"], autocommit=True) as con:
        for loan in loans.itertuples():
            for day in (0, 2):
                con.execute("INSERT INTO bank.transactions (enterprise_id, ts, amount, direction, channel, counterparty)"
                            " VALUES (%s, %s, 8e6, 'in', 'cash', 424242)", [int(loan.enterprise_id),
                                                                             d + pd.Timedelta(days=day)])
    try:
        after = [served["pg"].post("/v1/applications/score", json=_body(loan)).json()["result"]
                 for loan in loans.itertuples()]
        assert [r["pd"] for r in after] == [r["pd"] for r in before]
        assert [r["features"] for r in after] == [r["features"] for r in before]
    finally:
        with psycopg.connect(served["db"], autocommit=True) as con:
            con.execute("DELETE FROM bank.transactions WHERE counterparty = 424242")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_refuses_an_unreachable_or_unfit_postgresql_store_in_one_line(served):
    broken = f"{served['db']}?schema=broken"
    build_store_pg({name: t.head(100) for name, t in served["tables"].items()}, broken)  # a store's fit is its columns
    with psycopg.connect(served["db"], autocommit=True) as con:
        con.execute("ALTER TABLE broken.transactions DROP COLUMN channel")
    with pytest.raises(StoreError, match="channel"):
        create_app(served["bundle"], store=broken)
    for store, message in ((broken, "lacks column 'channel'"),
                           (f"postgresql://svc:hunter2@127.0.0.1:{_free_port()}/credit", "cannot connect")):
        proc = subprocess.run([sys.executable, "-m", "creditmodel.cli", "serve", "--bundle",
                               str(served["bundle_dir"]), "--store", store, "--port", "0"], capture_output=True,
                              text=True, timeout=300, env={**os.environ})
        assert proc.returncode == 2, proc.stderr
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "Warning" not in ln
                 and "require_minimum" not in ln]
        assert len(lines) == 1 and message in lines[0] and "hunter2" not in proc.stderr, proc.stderr


def test_score_as_of_from_postgresql_equals_duckdb(served, tmp_path, capsys):
    from creditmodel.cli import main

    outs = {}
    for name, location in (("duck", f"duckdb://{served['duck_path']}"), ("pg", served["url"])):
        outs[name] = tmp_path / f"{name}.parquet"
        assert main(["score", "--bundle", str(served["bundle_dir"]), "--store", location, "--as-of", "2024-01-01",
                     "--out", str(outs[name])]) == 0, capsys.readouterr().err
    a, b = pd.read_parquet(outs["duck"]), pd.read_parquet(outs["pg"])
    assert len(a) > 100 and a["loan_id"].tolist() == b["loan_id"].tolist()
    assert a["grade"].tolist() == b["grade"].tolist()
    assert b["pd"].to_numpy() == pytest.approx(a["pd"].to_numpy(), rel=1e-12, abs=0)
    assert main(["score", "--bundle", str(served["bundle_dir"]), "--store", "postgresql://x:pw@127.0.0.1:1/none",
                 "--as-of", "2024-01-01", "--out", str(tmp_path / "never.parquet")]) == 2
    err = capsys.readouterr().err
    assert "cannot connect" in err and ":pw@" not in err and not (tmp_path / "never.parquet").exists()


def test_a_dropped_connection_is_503_then_the_next_request_connects_again(served):
    from creditmodel.service.app import ScoringService
    from creditmodel.service.applications import ApplicationService

    apps = ApplicationService(ScoringService(served["bundle"]), served["url"])
    loan = next(_loans(served, 1, 6).itertuples())
    body = json.dumps(_body(loan)).encode()
    first = apps.handle("/v1/applications/score", body)
    assert first[0] == 200
    with psycopg.connect(served["db"], autocommit=True) as admin:  # the server ends the service's session
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                      "AND datname = current_database()")
    status, out, _ = apps.handle("/v1/applications/score", body)
    detail = json.loads(out)["detail"][0]
    assert status == 503 and detail["type"] == "store_unavailable" and detail["msg"].startswith(
        f"store {served['url'].split('?')[0]}") and "\n" not in detail["msg"]
    again = apps.handle("/v1/applications/score", body)
    assert again[0] == 200 and json.loads(again[1])["result"]["pd"] == json.loads(first[1])["result"]["pd"]
    apps.online.close()
