"""POST /v1/applications/score and /price: the application fields alone, features from the store as of the
decision date, the same PDs as the bundle on the offline feature matrix; bad fields are 422 naming the field;
a store that does not fit the bundle stops `serve` in one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date

import duckdb
import numpy as np
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
from .said import assert_said_in_both


@pytest.fixture(scope="module")
def served(demo_run, tmp_path_factory):
    result = demo_run["result"]
    bundle = load_bundle(result.bundle_dir)
    tables = read_tables(result.output_dir / "world")
    path = tmp_path_factory.mktemp("appstore") / "store.duckdb"
    build_store(tables, path)
    client = TestClient(create_app(bundle, store=f"duckdb://{path}"))
    frame = pd.read_parquet(result.features_path)
    return {"bundle": bundle, "tables": tables, "path": path, "client": client, "frame": frame,
            "bundle_dir": result.bundle_dir}


def test_scores_equal_the_bundle_on_the_offline_features(served):
    bundle, frame = served["bundle"], served["frame"].set_index("loan_id")
    names = list(bundle.schema.names)
    loans = _loans(served, 12, 11)
    expected = bundle.predict_pd(frame.loc[loans["loan_id"], names])
    for i, loan in enumerate(loans.itertuples()):
        r = served["client"].post("/v1/applications/score", json=_body(loan))
        assert r.status_code == 200, r.text
        res = r.json()["result"]
        assert res["pd"] == pytest.approx(expected[i], rel=1e-12, abs=0)
        assert res["grade"] == str(bundle.grade(np.array([expected[i]]))[0])
        assert res["new_to_bank"] is False and len(res["reasons"]) == 3 and res["id"] == f"loan-{loan.loan_id}"
        for n in names:
            want = frame.loc[loan.loan_id, n]
            got = res["features"][n]
            if got is None or isinstance(got, str):
                assert (got is None and pd.isna(want)) or got == want, n
            else:
                assert got == pytest.approx(float(want), rel=1e-12, abs=0), n


def test_price_and_referral_from_the_dictionary_policy(served):
    loan = next(_loans(served, 1, 4).itertuples())
    r = served["client"].post("/v1/applications/price", json=_body(loan))
    assert r.status_code == 200, r.text
    res = r.json()["result"]
    assert 0 < res["rate"] < 1 and res["needs_referral"] is False and res["referral"] == []
    big = served["client"].post("/v1/applications/price", json=_body(loan, amount=6_000_000.0))
    assert big.status_code == 200, big.text
    res = big.json()["result"]
    assert res["needs_referral"] is True and res["referral"][0]["rule"] == "approval_authority"
    assert "审批权限" in res["referral"][0]["zh"] and "approval authority" in res["referral"][0]["en"]


def test_application_answers_in_the_requested_language(served):
    from creditmodel.features.reasons import reason_text
    from creditmodel.texts import grade_name

    loan = next(_loans(served, 1, 4).itertuples())
    zh = served["client"].post("/v1/applications/price", json=_body(loan, amount=6_000_000.0),
                               headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert zh.status_code == 200 and zh.headers["content-language"] == "zh" and zh.json()["lang"] == "zh"
    res = zh.json()["result"]
    assert res["grade_name"] == grade_name(res["grade"], "zh") and res["needs_referral"] is True
    assert res["referral"][0]["text"] == res["referral"][0]["zh"]
    en = served["client"].post("/v1/applications/score", json=_body(loan, lang="en"),
                               headers={"Accept-Language": "zh-CN"})
    assert en.status_code == 200 and en.json()["lang"] == "en"
    res = en.json()["result"]
    assert [r["reason"] for r in res["reasons"]] == [reason_text(r["feature"], r["value"], "en") for r in res["reasons"]]
    zh = served["client"].post("/v1/applications/score", json=_body(loan), params={"lang": "zh"})
    assert [r["reason"] for r in zh.json()["result"]["reasons"]] == [
        reason_text(r["feature"], r["value"], "zh") for r in zh.json()["result"]["reasons"]]
    bad = served["client"].post("/v1/applications/score", json=_body(loan, lang="de"))
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "lang"]


def test_an_unknown_enterprise_is_scored_as_new_to_the_bank(served):
    loan = next(_loans(served, 1, 5).itertuples())
    r = served["client"].post("/v1/applications/score", json=_body(loan, enterprise_id=987_654_321, group_id=None))
    assert r.status_code == 200, r.text
    res = r.json()["result"]
    assert res["new_to_bank"] is True and 0 < res["pd"] < 1 and "新客户" in res["note"]["zh"]
    if "txn_inflow_12m" in res["features"]:
        assert res["features"]["txn_inflow_12m"] == 0


@pytest.mark.parametrize("field, value", [
    ("product", "space_tourism"), ("guarantee_type", "promise"), ("amount", -5.0), ("amount", 1e18),
    ("term_months", 0), ("decision_date", "2999-01-01"), ("decision_date", "1990-01-01"), ("enterprise_id", "x"),
    ("term_months", 12.5), ("enterprise_id", True), ("decision_date", 1_699_920_000),
    ("decision_date", "2024-01-01T00:00:00"), ("annual_sales", 1e11),
])
def test_bad_fields_are_422_naming_the_field(served, field, value):
    loan = next(_loans(served, 1, 6).itertuples())
    r = served["client"].post("/v1/applications/score", json=_body(loan, **{field: value}))
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][:2] == ["body", field]
    assert_said_in_both(r.json()["detail"][0])


def test_decision_date_defaults_to_today(served):
    loan = next(_loans(served, 1, 7).itertuples())
    body = _body(loan)
    del body["decision_date"]
    r = served["client"].post("/v1/applications/score", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["result"]["decision_date"] == str(date.today())


def test_future_rows_in_the_store_do_not_move_a_score(served, tmp_path):
    loans = _loans(served, 4, 8)
    path = tmp_path / "future.duckdb"
    shutil.copy(served["path"], path)
    with duckdb.connect(str(path)) as con:
        for loan in loans.itertuples():
            d = pd.Timestamp(loan.application_date)
            for day in (0, 2):
                con.execute("INSERT INTO transactions (enterprise_id, ts, amount, direction, channel, counterparty) "
                            "VALUES (?, ?, 8e6, 'in', 'cash', 424242)", [int(loan.enterprise_id),
                                                                           d + pd.Timedelta(days=day)]).fetchall()
    client = TestClient(create_app(served["bundle"], store=str(path)))
    for loan in loans.itertuples():
        a = served["client"].post("/v1/applications/score", json=_body(loan)).json()["result"]
        b = client.post("/v1/applications/score", json=_body(loan)).json()["result"]
        assert a["pd"] == b["pd"] and a["features"] == b["features"]


def test_a_store_that_does_not_fit_the_bundle_stops_serve_in_one_line(served, tmp_path):
    broken = tmp_path / "broken.duckdb"
    shutil.copy(served["path"], broken)
    with duckdb.connect(str(broken)) as con:
        con.execute("ALTER TABLE transactions DROP COLUMN channel").fetchall()
    with pytest.raises(StoreError, match="channel"):
        create_app(served["bundle"], store=str(broken))
    proc = subprocess.run([sys.executable, "-m", "creditmodel.cli", "serve", "--bundle", str(served["bundle_dir"]),
                           "--store", f"duckdb://{broken}", "--port", "0"], capture_output=True, text=True,
                          timeout=300, env={**os.environ})
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "Warning" not in ln and "require_minimum" not in ln]
    assert len(lines) == 1 and "channel" in lines[0], proc.stderr


def test_without_a_store_the_application_paths_say_so(served):
    client = TestClient(create_app(served["bundle"]))
    r = client.post("/v1/applications/score", json={"enterprise_id": 1})
    assert r.status_code == 404 and "--store" in r.text


def test_a_bundle_without_its_catalogue_cannot_serve_a_store(served):
    import dataclasses

    from creditmodel.exceptions import BundleError

    older = dataclasses.replace(served["bundle"], catalogue=None)
    with pytest.raises(BundleError, match="carries no feature catalogue"):
        create_app(older, store=str(served["path"]))


def test_a_guarantor_is_scored_from_the_store_and_substituted(served):
    """/v1/applications/price with guarantor_id: the guarantor's PD is the bundle's for the guarantor applying
    for the same loan on the same date (as /v1/applications/score gives it), priced at the lower PD."""
    tables = served["tables"]
    loan = next(_loans(served, 1, 4).itertuples())
    others = tables["enterprises"]["enterprise_id"]
    guarantor = int(others[others != loan.enterprise_id].iloc[5])
    body = _body(loan, guarantee_type="third_party", group_id=None)
    r = served["client"].post("/v1/applications/price", json={**body, "guarantor_id": guarantor})
    assert r.status_code == 200, r.text
    res = r.json()["result"]
    as_borrower = served["client"].post("/v1/applications/score", json={
        **body, "enterprise_id": guarantor, "reasons": False}).json()["result"]
    own = served["client"].post("/v1/applications/score", json={**body, "reasons": False}).json()["result"]
    assert res["guarantor"]["enterprise_id"] == guarantor
    assert res["guarantor"]["pd"] == pytest.approx(as_borrower["pd"], rel=1e-12)
    assert res["guarantor"]["grade"] == as_borrower["grade"] and res["pd"] == pytest.approx(own["pd"], rel=1e-12)
    assert res["details"]["pd_guarantor"] == pytest.approx(as_borrower["pd"], rel=1e-12)
    assert res["details"]["pd_priced"] == pytest.approx(min(own["pd"], as_borrower["pd"]), rel=1e-12)
    assert res["details"]["guarantee_treatment"] == "substitution"


def test_guarantors_that_protect_nobody_are_422_naming_the_field(served):
    tables = served["tables"]
    g = tables["guarantees"].merge(tables["loans"][["loan_id", "enterprise_id", "application_date"]], on="loan_id")
    g = g.sort_values("application_date").iloc[0]
    borrower, guarantor = int(g["enterprise_id"]), int(g["guarantor_id"])  # the store: guarantor backs borrower
    loan = next(_loans(served, 1, 4).itertuples())
    after = str((pd.Timestamp(g["application_date"]) + pd.Timedelta(days=30)).date())
    base = _body(loan, guarantee_type="third_party", group_id=None, decision_date=after)
    cases = [({"enterprise_id": guarantor, "guarantor_id": borrower}, f"circular guarantees {guarantor} -> "
                                                                       f"{borrower} -> {guarantor}",
              f"循环担保 {guarantor} -> {borrower} -> {guarantor}"),
             ({"guarantor_id": 987_654_321}, "guarantor 987654321 is not an enterprise of the store",
              "保证人 987654321 不是数据库中的企业"),
             ({"guarantor_id": int(loan.enterprise_id)}, "is the borrower itself", "即借款人本身")]
    for over, message, zh in cases:
        r = served["client"].post("/v1/applications/price", json={**base, **over})
        assert r.status_code == 422, r.text
        (err,) = r.json()["detail"]
        assert err["loc"] == ["body", "guarantor_id"] and message in err["msg"] and zh in err["msg_zh"], err


def test_whole_numbers_written_with_a_fraction_are_the_integers(served):
    """JSON Schema's "integer" admits 12.0, so schema-valid requests carry it (schemathesis sent one and got a
    422): the same answer as 12."""
    loan = next(_loans(served, 1, 9).itertuples())
    plain = served["client"].post("/v1/applications/score", json=_body(loan)).json()["result"]
    body = _body(loan, term_months=float(loan.term_months), enterprise_id=float(loan.enterprise_id))
    if "group_id" in body:
        body["group_id"] = float(body["group_id"])
    r = served["client"].post("/v1/applications/score", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["result"]["pd"] == plain["pd"] and r.json()["result"]["features"] == plain["features"]


def test_annual_sales_beyond_the_dictionary_are_refused_as_the_field_and_documented(served):
    """/v1/applications/price used to accept any sales up to 1e15 and then refuse them as "computed from the
    store" (twice prefixed), though the request gave them: now the request schema bounds them by the data
    dictionary's statement revenue, as /v1/price does."""
    from creditmodel.service.scoring import dictionary_column_bounds

    hi = dictionary_column_bounds("financial_statements", "revenue")[1]
    loan = next(_loans(served, 1, 4).itertuples())
    r = served["client"].post("/v1/applications/price", json=_body(loan, annual_sales=hi * 1.5))
    assert r.status_code == 422, r.text
    (err,) = r.json()["detail"]
    assert err["loc"] == ["body", "annual_sales"] and "computed" not in err["msg"]
    ok = served["client"].post("/v1/applications/price", json=_body(loan, annual_sales=hi))
    assert ok.status_code == 200, ok.text
    schema = served["client"].get("/openapi.json").json()["components"]["schemas"]["LoanApplication"]
    sales = next(a for a in schema["properties"]["annual_sales"]["anyOf"] if a.get("type") == "number")
    assert sales["maximum"] == hi


def test_bad_requests_write_nothing_to_the_store(served, tmp_path):
    """Every kind of bad request (and good ones beside them) leaves the store's bytes and mtime as they were."""
    path = tmp_path / "watched.duckdb"
    shutil.copy(served["path"], path)
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    client = TestClient(create_app(served["bundle"], store=f"duckdb://{path}"))
    loan = next(_loans(served, 1, 6).itertuples())
    bad = [{"product": "space_tourism"}, {"guarantee_type": "promise"}, {"amount": -5.0}, {"amount": 1e18},
           {"decision_date": "2999-01-01"}, {"decision_date": "1990-01-01"}, {"enterprise_id": 987_654_321},
           {"guarantor_id": 987_654_321, "guarantee_type": "third_party"}, {"term_months": 0}]
    for over in bad:
        for path_ in ("/v1/applications/score", "/v1/applications/price"):
            client.post(path_, json=_body(loan, **over))
    client.post("/v1/applications/score", content=b"{not json")
    assert client.post("/v1/applications/price", json=_body(loan)).status_code == 200
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


@pytest.mark.parametrize("spec, expected", [
    ("absent", "no such DuckDB file"), ("text", "cannot be opened as DuckDB"), ("mistyped", "column 'direction' is"),
])
def test_serve_refuses_an_unreachable_or_mistyped_store_in_one_line(served, tmp_path, spec, expected):
    store = tmp_path / f"{spec}.duckdb"
    if spec == "text":
        store.write_text("not a database")
    elif spec == "mistyped":
        shutil.copy(served["path"], store)
        with duckdb.connect(str(store)) as con:
            con.execute("ALTER TABLE transactions ALTER direction TYPE INTEGER USING "
                        "(CASE WHEN direction = 'in' THEN 1 ELSE 0 END)").fetchall()
    before = store.read_bytes() if store.exists() else None
    proc = subprocess.run([sys.executable, "-m", "creditmodel.cli", "serve", "--bundle", str(served["bundle_dir"]),
                           "--store", f"duckdb://{store}", "--port", "0"], capture_output=True, text=True,
                          timeout=300, env={**os.environ})
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "Warning" not in ln and "require_minimum" not in ln]
    assert len(lines) == 1 and expected in lines[0] and str(store.name) in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert (store.read_bytes() if store.exists() else None) == before


def test_a_store_failing_under_a_running_service_is_503_naming_the_store(served, tmp_path):
    from creditmodel.service.app import ScoringService
    from creditmodel.service.applications import ApplicationService

    path = tmp_path / "going.duckdb"
    shutil.copy(served["path"], path)
    apps = ApplicationService(ScoringService(served["bundle"]), str(path))
    loan = next(_loans(served, 1, 5).itertuples())
    body = json.dumps(_body(loan)).encode()
    assert apps.handle("/v1/applications/score", body)[0] == 200
    apps.online._con.execute("DETACH store").fetchall()  # the store goes away under the running service
    status, out, ids = apps.handle("/v1/applications/price", body)
    detail = json.loads(out)["detail"]
    assert status == 503 and ids == [f"loan-{loan.loan_id}"] and len(detail) == 1
    assert detail[0]["type"] == "store_unavailable" and detail[0]["loc"] == ["store"]
    assert detail[0]["msg_zh"].startswith("数据库 ") and detail[0]["msg_zh"].endswith("；未作评分，请重试")
    assert str(path) in detail[0]["msg"] and "\n" not in detail[0]["msg"] and "Traceback" not in detail[0]["msg"]
    apps.online.close()
