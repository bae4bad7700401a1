"""The service speaks the bank's own data dictionary (the run config's), not the shipped one: its policy rules
on the loan and on the borrower's enterprise row flag referrals (in-process, in the helper process of large
bodies and in every worker of `serve --config`), its valid domains bound the requests, and its currency names
the amounts in the API's documentation, and a dictionary in another currency than the model's is refused."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pandas as pd
import pytest
from starlette.testclient import TestClient

from creditmodel.data.dictionary import load_dictionary
from creditmodel.exceptions import ConfigError
from creditmodel.service.app import create_app

from .application_requests import application_body
from .conftest import json_features, start_server, stop_server
from .test_applications import served  # noqa: F401 - the module's store, built once

LIMIT = 1_000_000.0  # the bank's authority; the shipped dictionary's is CNY 5 million


def _bank_toml(born_before: int, currency: str = "CNY") -> str:
    return f"""
currency = "{currency}"

[bounds]
"loans.amount" = {{ min = 1000, max = 3000000 }}
"loans.term_months" = {{ min = 1, max = 84 }}

[[policy]]
name = "county_authority"
table = "loans"
column = "amount"
max = {LIMIT:.0f}
en = "Above the county branch's authority (CNY 1 million)"
zh = "超出县支行审批权限（100万元）"

[[policy]]
name = "owner_age"
table = "enterprises"
column = "owner_birth_year"
min = {born_before}
en = "Owner born before {born_before}: refer to the team head"
zh = "业主出生于{born_before}年以前，报团队负责人审核"
"""


@pytest.fixture(scope="module")
def bank(served, tmp_path_factory):  # noqa: F811
    enterprises = served["tables"]["enterprises"]
    born_before = int(enterprises["owner_birth_year"].dropna().median())
    path = tmp_path_factory.mktemp("bank") / "dictionary.toml"
    path.write_text(_bank_toml(born_before), encoding="utf-8")
    usd = path.with_name("usd.toml")  # the same bank in dollars
    usd.write_text(_bank_toml(born_before, "USD"), encoding="utf-8")
    return {"path": path, "dictionary": load_dictionary(path), "born_before": born_before,
            "usd": load_dictionary(usd)}


def _loans_by_owner(served, born_before: int, old: bool, n: int) -> pd.DataFrame:  # noqa: F811
    years = served["tables"]["enterprises"].set_index("enterprise_id")["owner_birth_year"]
    ids = served["frame"]["loan_id"]
    loans = served["tables"]["loans"].set_index("loan_id").loc[ids].reset_index()
    year = years.reindex(loans["enterprise_id"]).to_numpy(dtype=float)
    side = year < born_before if old else year >= born_before  # an unknown year breaks no rule: neither side
    return loans[side].head(n)


def test_applications_are_flagged_by_the_bank_rules_on_the_loan_and_on_the_enterprise(served, bank):  # noqa: F811
    client = TestClient(create_app(served["bundle"], store=f"duckdb://{served['path']}", dictionary=bank["dictionary"]))
    young = next(_loans_by_owner(served, bank["born_before"], old=False, n=1).itertuples())
    old = next(_loans_by_owner(served, bank["born_before"], old=True, n=1).itertuples())
    cases = [(young, 500_000.0, []), (young, 2_000_000.0, ["county_authority"]), (old, 500_000.0, ["owner_age"]),
             (old, 2_000_000.0, ["county_authority", "owner_age"])]
    for loan, amount, rules in cases:
        for path in ("/v1/applications/score", "/v1/applications/price"):
            r = client.post(path, json=application_body(loan, amount=amount, lang="zh"))
            assert r.status_code == 200, r.text
            res = r.json()["result"]
            assert [x["rule"] for x in res["referral"]] == rules and res["needs_referral"] is bool(rules), (path, amount)
            for x in res["referral"]:
                assert x["text"] == x["zh"] and x["en"] and x["zh"] != x["en"]
    # the same application under the shipped dictionary: within its CNY 5 million authority, no enterprise rule
    shipped = served["client"].post("/v1/applications/price", json=application_body(old, amount=2_000_000.0))
    assert shipped.status_code == 200 and shipped.json()["result"]["referral"] == []


def _priced(answer) -> list[list[str]]:
    assert answer.status_code == 200, answer.text
    return [[x["rule"] for x in res["referral"]] for res in answer.json()["results"]]


def test_price_requests_are_flagged_by_the_bank_rule_in_process_and_in_the_helper(served, bank):  # noqa: F811
    rows = json_features(served["frame"].head(4), served["bundle"].schema.names)
    body = {"applications": [{"id": f"p{i}", "features": r, "loan": {"guarantee_type": "unsecured", "amount": a,
                                                                      "maturity_years": 1.0}}
                             for i, (r, a) in enumerate(zip(rows, [500_000.0, 2_000_000.0, LIMIT, LIMIT + 1]))]}
    expected = [[], ["county_authority"], [], ["county_authority"]]  # the enterprise rule needs the enterprise row
    app = create_app(served["bundle"], dictionary=bank["dictionary"])
    assert _priced(TestClient(app).post("/v1/price", json=body)) == expected
    helper = create_app(served["bundle"], dictionary=bank["dictionary"], large_body_bytes=1024)  # the helper answers
    try:
        assert _priced(TestClient(helper).post("/v1/price", json=body)) == expected
    finally:
        helper.state.large_requests.close()
    assert _priced(served["client"].post("/v1/price", json=body)) == [[], [], [], []]  # the shipped dictionary


def test_serve_takes_the_dictionary_of_its_config_in_every_worker(served, bank, tmp_path):  # noqa: F811
    config = tmp_path / "run.toml"
    config.write_text(f"dictionary = {json.dumps(bank['path'].as_posix())}\n", encoding="utf-8")
    row = json_features(served["frame"].head(1), served["bundle"].schema.names)[0]
    body = {"applications": [{"features": row, "loan": {"guarantee_type": "unsecured", "amount": 2_000_000.0,
                                                          "maturity_years": 1.0}}]}
    proc, url = start_server(served["bundle_dir"], "--config", str(config), "--workers", "2")
    try:
        import httpx

        with httpx.Client(base_url=url, timeout=30) as client:
            answers = [client.post("/v1/price", json=body, headers={"Connection": "close"}) for _ in range(8)]
    finally:
        stop_server(proc)
    assert all(_priced(a) == [["county_authority"]] for a in answers)


def test_requests_are_bounded_by_the_bank_domains_and_documented_in_its_currency(served, bank):  # noqa: F811
    from creditmodel.data.schema import resolve_tables
    from creditmodel.service.scoring import dictionary_domain

    app = create_app(served["bundle"], store=f"duckdb://{served['path']}", dictionary=bank["dictionary"])
    client = TestClient(app)
    loan = next(_loans_by_owner(served, bank["born_before"], old=False, n=1).itertuples())
    for over, field in (({"amount": 4_000_000.0}, "amount"), ({"term_months": 96}, "term_months")):
        for c, status in ((client, 422), (served["client"], 200)):  # the shipped domain takes both
            r = c.post("/v1/applications/score", json=application_body(loan, **over))
            assert r.status_code == status, (over, r.text)
            if status == 422:
                assert r.json()["detail"][0]["loc"] == ["body", field]
    rows = json_features(served["frame"].head(1), served["bundle"].schema.names)
    for terms, field in (({"amount": 4_000_000.0}, "amount"), ({"amount": 5e5, "maturity_years": 8.0}, "maturity_years")):
        body = {"applications": [{"features": rows[0], "loan": {"guarantee_type": "unsecured", **terms}}]}
        r = client.post("/v1/price", json=body)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == field, r.text
        assert served["client"].post("/v1/price", json=body).status_code == 200
    # a feature that is the loan's amount is bounded by the bank's domain too, and the refusal says where from
    domain = dictionary_domain(served["bundle"].schema.names, resolve_tables(bank["dictionary"]))
    name = next(n for n, (_, _, where) in domain.items() if where == "loans.amount")
    assert domain[name][1] == 3_000_000
    r = client.post("/v1/score", json={"applications": [{"features": {**rows[0], name: 4_000_000.0}}]})
    assert r.status_code == 422 and "loans.amount" in r.text, r.text
    assert served["client"].post("/v1/score", json={"applications": [
        {"features": {**rows[0], name: 4_000_000.0}}]}).status_code == 200
    # a model trained in dollars, served with the dictionary in dollars: the API names its amounts so
    bundle = served["bundle"]
    card = {**bundle.model_card, "data_dictionary": {**bundle.model_card.get("data_dictionary", {}), "currency": "USD"}}
    dollars = create_app(replace(bundle, model_card=card), store=f"duckdb://{served['path']}", dictionary=bank["usd"])
    docs = json.dumps(TestClient(dollars).get("/openapi.json").json())
    assert "exposure at default, USD" in docs and "amount applied for, USD" in docs and "annual sales, USD" in docs
    assert not {"exposure at default, CNY", "amount applied for, CNY", "annual sales, CNY"} & set(
        re.findall(r"[a-z ]+, CNY", docs))
    assert "exposure at default, CNY" in json.dumps(client.get("/openapi.json").json())


def test_a_dictionary_in_another_currency_than_the_model_is_refused(served, bank):  # noqa: F811
    with pytest.raises(ConfigError, match=r"^serve: the data dictionary \(.*usd.toml\) is in USD, but bundle .* was "
                                          r"trained on amounts in CNY; use the data dictionary of the bundle's"):
        create_app(served["bundle"], dictionary=bank["usd"])
