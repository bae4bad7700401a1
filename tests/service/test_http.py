"""The scoring service over loopback HTTP: exact parity with the bundle, reason codes, pricing, the model
card, and a 422 naming the field for every kind of bad input, without ever crashing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

from creditmodel.features.catalogue import BY_NAME
from creditmodel.pricing.engine import COMPONENTS
from creditmodel.validation.explain import reason_text

from .conftest import free_port, json_features, start_server, stop_server


@pytest.fixture(scope="module")
def rows(bundle, demo_rows):
    return json_features(demo_rows, bundle.schema.names)


@pytest.fixture(scope="module")
def scored(client, rows):
    body = {"applications": [{"id": f"app-{i}", "features": r} for i, r in enumerate(rows)]}
    r = client.post("/v1/score", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def _numeric(bundle, kind: str) -> str:
    """A numeric feature: 'share' bounded to [0, 1], 'count' >= 0, 'required' never null, 'any' unbounded."""
    s = bundle.schema
    for name in s.names:
        if name in s.categories:
            continue
        lo, hi = s.bounds.get(name, (-1e15, 1e15))
        if kind == "share" and (lo, hi) == (0.0, 1.0):
            return name
        if kind == "count" and lo == 0.0 and hi > 1:
            return name
        if kind == "required" and name in s.required:
            return name
        if kind == "any" and lo < 0:
            return name
    raise LookupError(kind)


# --- parity, grades, reasons -----------------------------------------------------------------------


def test_scores_equal_bundle_predict_pd(scored, bundle, demo_rows):
    got = np.array([r["pd"] for r in scored["results"]])
    expected = bundle.predict_pd(demo_rows)
    assert len(got) == len(demo_rows) > 100
    assert np.max(np.abs(got - expected)) <= 1e-12
    assert np.array_equal(got, expected)  # in fact bit for bit


def test_grades_and_ids(scored, bundle, demo_rows):
    expected = bundle.grade(bundle.predict_pd(demo_rows))
    assert [r["grade"] for r in scored["results"]] == list(expected)
    assert [r["id"] for r in scored["results"]] == [f"app-{i}" for i in range(len(demo_rows))]
    assert scored["model"] == bundle.manifest["files"]["model.txt"]["sha256"][:12]


def test_three_reason_codes_per_row_from_the_catalogue(scored, bundle, demo_rows):
    X = bundle.schema.encode(demo_rows)
    contrib = bundle.booster.predict(X, pred_contrib=True)[:, :-1]
    names = list(bundle.schema.names)
    for i, res in enumerate(scored["results"]):
        reasons = res["reasons"]
        expected = [j for j in np.argsort(-contrib[i], kind="mergesort")[:3] if contrib[i, j] > 0]
        assert len(expected) == 3  # demo rows have at least three adverse features
        assert [r["feature"] for r in reasons] == [names[j] for j in expected]
        for r, j in zip(reasons, expected):
            assert r["contribution"] == pytest.approx(contrib[i, j], abs=1e-12)
            assert r["reason"] == reason_text(r["feature"], r["value"])
            f = BY_NAME[r["feature"]]
            assert r["reason"].startswith(f"{f.reason or f.label}: ")
        assert [r["contribution"] for r in reasons] == sorted((r["contribution"] for r in reasons), reverse=True)


def test_reason_values_are_the_request_values(scored, rows):
    for res, row in zip(scored["results"], rows):
        for r in res["reasons"]:
            assert r["value"] == row[r["feature"]]


def test_reasons_can_be_left_out(client, rows):
    r = client.post("/v1/score", json={"applications": [{"features": rows[0]}], "reasons": False})
    assert r.status_code == 200
    res = r.json()["results"][0]
    assert res["id"] is None and "reasons" not in res and 0 < res["pd"] < 1


# --- pricing, model card, health, docs -------------------------------------------------------------


def test_price_decomposition_sums_to_the_rate(client, rows, scored, bundle):
    from creditmodel.data.schema import TABLES

    amount = TABLES["loans"].column("amount")  # the smallest and largest valid loan amounts too
    apps = [{"id": f"p{i}", "features": r,
             "loan": {"guarantee_type": gt, "amount": amount, "maturity_years": 2.0}}
            for i, (r, gt, amount) in enumerate(zip(rows[:40], ["unsecured", "collateral", "third_party", "joint_group"] * 10,
                                                    [float(amount.min_value), 50_000.0, 2_000_000.0,
                                                     float(amount.max_value)] * 10))]
    r = client.post("/v1/price", json={"applications": apps})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 40
    for i, res in enumerate(results):
        assert set(res["components"]) == set(COMPONENTS)
        total = sum(res["components"].values())
        assert total == pytest.approx(res["details"]["risk_covering_rate"], abs=1e-12)
        if not res["details"].get("floored") and not res["details"].get("capped"):
            assert total == pytest.approx(res["rate"], abs=1e-12)
        assert res["pd"] == scored["results"][i]["pd"]
        assert res["grade"] == scored["results"][i]["grade"]
        assert res["details"]["guarantee_type"] == apps[i]["loan"]["guarantee_type"]
        assert res["details"]["ead"] == apps[i]["loan"]["amount"]
        assert res["details"]["maturity_years"] == 2.0
    lgd = {res["details"]["guarantee_type"]: res["details"]["lgd"] for res in results}
    assert len(lgd) == 4


def test_price_defaults_and_warns_on_a_guarantee_mismatch(client, rows):
    row = dict(rows[0])
    other = next(g for g in ("unsecured", "collateral") if g != row.get("guarantee_type"))
    r = client.post("/v1/price", json={"applications": [{"features": row, "loan": {"guarantee_type": other,
                                                                                    "amount": 100_000}}]})
    assert r.status_code == 200, r.text
    res = r.json()["results"][0]
    if row.get("guarantee_type") is not None:
        assert "guarantee_type" in res["warnings"][0]
    term = row.get("term_months")
    if term is not None and 0 < term <= 600:
        assert res["details"]["maturity_years"] == pytest.approx(term / 12)


def test_model_card(client, bundle):
    r = client.get("/v1/model")
    assert r.status_code == 200
    info = r.json()
    card = getattr(bundle, "model_card", None)
    if card:
        assert info["model_card"] == json.loads(json.dumps(card))
    assert info["bundle"]["format_version"] == bundle.manifest["format_version"]
    assert [f["name"] for f in info["features"]] == list(bundle.schema.names)
    assert [g["grade"] for g in info["grades"]] == list(bundle.master_scale.grades)


def test_health_and_docs(client, bundle):
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["features"] == len(bundle.schema.names)
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    feats = spec["components"]["schemas"]["ApplicationFeatures"]
    assert feats["additionalProperties"] is False
    assert set(feats["required"]) == set(feats["properties"]) == set(bundle.schema.names)
    for name, cats in bundle.schema.categories.items():
        enum = [s for s in feats["properties"][name].get("anyOf", [feats["properties"][name]]) if "enum" in s]
        assert enum and enum[0]["enum"] == list(cats)
    share = _numeric(bundle, "share")
    variants = feats["properties"][share].get("anyOf", [feats["properties"][share]])
    assert {"type": "number", "minimum": 0.0, "maximum": 1.0}.items() <= variants[0].items()
    assert spec["paths"]["/v1/score"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]


# --- bad input: 422 naming the field -------------------------------------------------------------


def _mutations(bundle):
    s = bundle.schema
    share, count, required, anything = (_numeric(bundle, k) for k in ("share", "count", "required", "any"))
    cat = s.categorical[0]
    return [
        ("wrong type: text for a number", share, lambda f: f.update({share: "abc"})),
        ("wrong type: number for a category", cat, lambda f: f.update({cat: 3})),
        ("wrong type: bool for a number", anything, lambda f: f.update({anything: True})),
        ("unknown field", "not_a_feature", lambda f: f.update({"not_a_feature": 1.0})),
        ("out of range: share above 1", share, lambda f: f.update({share: 1.5})),
        ("out of range: negative count", count, lambda f: f.update({count: -1.0})),
        ("out of range: beyond any plausible value", anything, lambda f: f.update({anything: 1e300})),
        ("missing required field", share, lambda f: f.pop(share)),
        ("null where not allowed", required, lambda f: f.update({required: None})),
        ("unknown category", cat, lambda f: f.update({cat: "no_such_category"})),
        ("NaN as a string", anything, lambda f: f.update({anything: "NaN"})),
        ("inf as a string", anything, lambda f: f.update({anything: "inf"})),
        ("-Infinity as a string", anything, lambda f: f.update({anything: "-Infinity"})),
        ("nested object", anything, lambda f: f.update({anything: {"value": 1}})),
        ("list", cat, lambda f: f.update({cat: [s.categories[cat][0]]})),
    ]


@pytest.mark.parametrize("case", range(15))
def test_bad_feature_value_gets_422_naming_it(client, bundle, rows, case):
    what, field, mutate = _mutations(bundle)[case]
    features = dict(rows[0])
    mutate(features)
    for path in ("/v1/score", "/v1/price"):
        app = {"id": "x", "features": features}
        if path == "/v1/price":
            app["loan"] = {"guarantee_type": "unsecured", "amount": 1000.0}
        apps = [{"features": rows[1]}, app] if path == "/v1/score" else [app]  # the bad one second when scoring
        r = client.post(path, json={"applications": apps})
        assert r.status_code == 422, (what, r.text)
        detail = r.json()["detail"]
        assert detail[0]["loc"][-1] == field, (what, detail)
        assert field in r.text
        i = 1 if path == "/v1/score" else 0
        assert detail[0]["loc"][:4] == ["body", "applications", i, "features"], (what, detail)


def test_out_of_range_message_is_the_bundles(client, bundle, rows):
    import pandas as pd

    from creditmodel.exceptions import RequestError

    share = _numeric(bundle, "share")
    features = dict(rows[0], **{share: 7.0})
    r = client.post("/v1/score", json={"applications": [{"features": features}]})
    with pytest.raises(RequestError) as exc:
        bundle.check_request(pd.DataFrame([features]))
    assert r.json()["detail"][0]["msg"] == str(exc.value)


@pytest.mark.parametrize("body, field", [
    (b'{"applications": [', "body"),
    (b"", "body"),
    (b"not json at all", "body"),
    (b"[]", "body"),
    (b"null", "body"),
    (b'{"applications": []}', "applications"),
    (b'{"applications": null}', "applications"),
    (b'{"applications": [{"features": {}}], "extra": 1}', "extra"),
    (b'{"applications": [{"features": null}]}', "features"),
    (b'{"applications": [{"id": 5, "features": {}}]}', "id"),
    (b'{"applications": [{"id": "' + b"x" * 300 + b'", "features": {}}]}', "id"),
    (b'{"applications": [{}]}', "features"),
    (b'{"applications": "everything"}', "applications"),
    (b'{"applications": [{"features": {}}], "reasons": "yes"}', "reasons"),
    (b"[" * 100_000, "body"),
])
def test_malformed_requests_get_422(client, body, field):
    r = client.post("/v1/score", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert any(field in [str(p) for p in e["loc"]] for e in r.json()["detail"]), r.text
    assert field in [str(p) for p in r.json()["detail"][0]["loc"]], r.text


def test_huge_number_literals_get_422(client, bundle, rows):
    name = _numeric(bundle, "any")
    text = json.dumps({"applications": [{"features": rows[0]}]})
    for literal in ("1e400", "-1e400", "9" * 5000, "NaN", "Infinity"):
        body = text.replace(json.dumps(name) + ": " + json.dumps(rows[0][name]), json.dumps(name) + ": " + literal)
        assert literal in body
        r = client.post("/v1/score", content=body.encode(), headers={"content-type": "application/json"})
        assert r.status_code == 422, (literal, r.text)
        assert r.json()["detail"][0]["loc"][-1] == name


def test_batch_size_is_capped(client, rows):
    ok = client.post("/v1/score", json={"applications": [{"features": rows[0]}] * 200, "reasons": False})
    assert ok.status_code == 200 and len(ok.json()["results"]) == 200
    r = client.post("/v1/score", json={"applications": [{"features": {}}] * 10_001})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "applications"]
    assert "10000" in r.json()["detail"][0]["msg"]
    assert len(r.content) < 10_000  # no echo of the input


@pytest.mark.parametrize("loan, field", [
    (None, "loan"),
    ({"amount": 1000.0}, "guarantee_type"),
    ({"guarantee_type": "mortgage", "amount": 1000.0}, "guarantee_type"),
    ({"guarantee_type": "unsecured"}, "amount"),
    ({"guarantee_type": "unsecured", "amount": -5.0}, "amount"),
    ({"guarantee_type": "unsecured", "amount": "lots"}, "amount"),
    ({"guarantee_type": "unsecured", "amount": 1000.0, "maturity_years": 0}, "maturity_years"),
    ({"guarantee_type": "unsecured", "amount": 1000.0, "maturity_years": 80}, "maturity_years"),
    ({"guarantee_type": "unsecured", "amount": 1000.0, "annual_sales": -1}, "annual_sales"),
    ({"guarantee_type": "unsecured", "amount": 1000.0, "rate": 0.1}, "rate"),
])
def test_bad_loan_terms_get_422(client, rows, loan, field):
    app = {"features": rows[0]} if loan is None else {"features": rows[0], "loan": loan}
    r = client.post("/v1/price", json={"applications": [app]})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][-1] == field


def test_the_server_survived_everything(client):
    assert client.get("/health").status_code == 200


def test_body_over_the_limit_gets_413(bundle, rows):
    import asyncio

    from creditmodel.service.app import create_app

    app = create_app(bundle, max_body_bytes=2_000)

    async def call():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as c:
            return await c.post("/v1/score", json={"applications": [{"features": rows[0]}] * 3})

    assert asyncio.run(call()).status_code == 413


def test_fast_path_and_fastapi_routes_answer_alike(bundle, rows):
    import asyncio

    from creditmodel.service.app import create_app

    share = _numeric(bundle, "share")
    requests = [("POST", "/v1/score", {"applications": [{"id": "a", "features": rows[0]}, {"features": rows[1]}]}),
                ("POST", "/v1/score", {"applications": [{"features": dict(rows[0], **{share: 3.0})}]}),
                ("POST", "/v1/score", {"applications": []}),
                ("POST", "/v1/price", {"applications": [{"features": rows[0],
                                                         "loan": {"guarantee_type": "unsecured", "amount": 1e5}}]}),
                ("GET", "/v1/model", None), ("GET", "/health", None)]

    async def answers(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as c:
            return [(r.status_code, r.headers["content-type"], r.content)
                    for r in [await c.request(m, p, json=b) for m, p, b in requests]]

    fast = asyncio.run(answers(create_app(bundle)))
    routed = asyncio.run(answers(create_app(bundle, fast_path=False)))
    assert [a[0] for a in fast] == [200, 422, 422, 200, 200, 200]
    assert fast == routed


# --- the command --------------------------------------------------------------------------------


def test_serve_refuses_a_tampered_bundle(bundle_dir, tmp_path):
    bad = tmp_path / "bundle"
    shutil.copytree(bundle_dir, bad)
    (bad / "model.txt").write_text((bad / "model.txt").read_text() + "\n")
    port = free_port()
    proc = subprocess.run([sys.executable, "-m", "creditmodel.cli", "serve", "--bundle", str(bad), "--port", str(port)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "model.txt" in lines[0] and "sha256" in lines[0]
    assert proc.stdout == ""
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)


def test_serve_refuses_a_busy_port(bundle_dir, server):
    port = server.rsplit(":", 1)[1]
    proc = subprocess.run([sys.executable, "-m", "creditmodel.cli", "serve", "--bundle", str(bundle_dir),
                           "--port", port], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "cannot listen" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_the_pure_python_http_stack_answers_byte_for_byte_the_same(bundle_dir, bundle, demo_rows, client):
    """--http h11 --loop asyncio (what uvicorn falls back to without httptools and uvloop) gives the same
    bytes as the default stack, for scores with reasons, a refusal and /health's status."""
    rows = json_features(demo_rows.head(5), bundle.schema.names)
    bodies = [{"applications": [{"id": "a", "features": rows[0]}]},
              {"applications": [{"id": str(i), "features": f} for i, f in enumerate(rows)], "lang": "zh"},
              {"applications": [{"id": "x", "features": {**rows[0], bundle.schema.names[0]: "text"}}]}]
    proc, url = start_server(bundle_dir, "--http", "h11", "--loop", "asyncio")
    try:
        with httpx.Client(base_url=url, timeout=60) as plain:
            for body in bodies:
                a, b = client.post("/v1/score", json=body), plain.post("/v1/score", json=body)
                assert a.status_code == b.status_code and a.content == b.content
                assert a.headers.get("content-language") == b.headers.get("content-language")
            assert plain.get("/health").status_code == 200
    finally:
        stop_server(proc)


def test_two_workers_score_the_same(bundle_dir, bundle, demo_rows, scored):
    proc, url = start_server(bundle_dir, "--workers", "2")
    try:
        rows = json_features(demo_rows.head(20), bundle.schema.names)
        with httpx.Client(base_url=url, timeout=60) as c:
            times = []
            for _ in range(30):
                t0 = time.perf_counter()
                assert c.get("/health").status_code == 200
                times.append(time.perf_counter() - t0)
            assert np.median(times) < 0.03  # TCP_NODELAY on the workers' connections (no 40 ms Nagle stalls)
            for _ in range(4):  # reach both workers
                r = c.post("/v1/score", json={"applications": [{"features": f} for f in rows]})
                assert r.status_code == 200
                assert [x["pd"] for x in r.json()["results"]] == [x["pd"] for x in scored["results"][:20]]
    finally:
        stop_server(proc)
