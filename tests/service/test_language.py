"""The service answers in the request's language: the body's or the query's `lang`, else Accept-Language
(zh, zh-CN, zh-Hans -> zh), else English; reason texts, grade names and warnings follow it, the numbers
do not; a `lang` naming no language the service speaks is 422 naming the field."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from creditmodel.features.reasons import reason_text
from creditmodel.service.language import from_accept_language, normalise
from creditmodel.texts import grade_name, text

from .conftest import json_features

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("header, lang", [
    ("zh", "zh"), ("zh-CN", "zh"), ("zh-Hans", "zh"), ("zh-Hans-CN,en;q=0.5", "zh"), ("en-US,en;q=0.9", "en"),
    ("fr-FR,zh;q=0.8,en;q=0.7", "zh"), ("en;q=0.4,zh-TW;q=0.6", "zh"), ("fr,de", None), ("zh;q=0,en", "en"),
    ("*", "en"), ("", None), (None, None), ("zh;q=oops", None),
])
def test_accept_language_picks_the_best_language_the_service_speaks(header, lang):
    assert from_accept_language(header) == lang


def test_lang_tags_normalise_to_the_catalogue_languages():
    assert [normalise(t) for t in ("zh", "ZH-cn", "zh_Hans", "en-GB", "fr", "")] == ["zh", "zh", "zh", "en", None, None]


@pytest.fixture(scope="module")
def svc(bundle, demo_rows):
    from creditmodel.service.app import create_app

    rows = json_features(demo_rows.head(8), bundle.schema.names)
    return {"client": TestClient(create_app(bundle)), "rows": rows, "bundle": bundle}


def _score(svc, *, params=None, headers=None, lang=None):
    body = {"applications": [{"id": f"a{i}", "features": r} for i, r in enumerate(svc["rows"])]}
    if lang is not None:
        body["lang"] = lang
    return svc["client"].post("/v1/score", json=body, params=params, headers=headers)


def test_score_in_english_by_default_and_chinese_on_request(svc):
    en = _score(svc)
    assert en.status_code == 200 and en.headers["content-language"] == "en" and en.json()["lang"] == "en"
    for kwargs in ({"headers": {"Accept-Language": "zh-CN,zh;q=0.9"}}, {"headers": {"Accept-Language": "zh-Hans"}},
                   {"params": {"lang": "zh"}}, {"lang": "zh"}, {"lang": "zh-CN"}):
        zh = _score(svc, **kwargs)
        assert zh.status_code == 200, (kwargs, zh.text)
        assert zh.headers["content-language"] == "zh" and zh.json()["lang"] == "zh"
        for a, b in zip(en.json()["results"], zh.json()["results"]):
            assert (a["pd"], a["grade"]) == (b["pd"], b["grade"])  # the language changes words, never numbers
            assert a["grade_name"] == grade_name(a["grade"], "en") and b["grade_name"] == grade_name(b["grade"], "zh")
            assert CJK.search(b["grade_name"]) and not CJK.search(a["grade_name"])
            assert [r["feature"] for r in a["reasons"]] == [r["feature"] for r in b["reasons"]]
            for ra, rb in zip(a["reasons"], b["reasons"]):
                assert ra["contribution"] == rb["contribution"] and ra["value"] == rb["value"]
                assert ra["reason"] == reason_text(ra["feature"], ra["value"], "en")
                assert rb["reason"] == reason_text(rb["feature"], rb["value"], "zh")
                assert CJK.search(rb["reason"]) and "：" in rb["reason"]


def test_the_body_and_the_query_come_before_the_header(svc):
    zh_header = {"Accept-Language": "zh-CN"}
    assert _score(svc, headers=zh_header, lang="en").json()["lang"] == "en"
    assert _score(svc, headers=zh_header, params={"lang": "en"}).json()["lang"] == "en"
    assert _score(svc, params={"lang": "en"}, lang="zh").json()["lang"] == "zh"
    assert _score(svc, headers={"Accept-Language": "fr-FR"}).json()["lang"] == "en"  # no language we speak


@pytest.mark.parametrize("where, value", [("query", "fr"), ("query", ""), ("body", "klingon"), ("body", 7)])
def test_a_bad_lang_is_422_naming_the_field(svc, where, value):
    r = (_score(svc, params={"lang": value}) if where == "query" else _score(svc, lang=value))
    assert r.status_code == 422, r.text
    (err,) = r.json()["detail"]
    assert err["loc"] == [where, "lang"]
    if isinstance(value, str):
        assert repr(value) in err["msg"] and "zh" in err["msg"]


def test_price_grade_names_warnings_and_reasons_in_chinese(svc):
    row = dict(svc["rows"][0])
    loan = {"guarantee_type": "collateral" if row.get("guarantee_type") != "collateral" else "unsecured",
            "amount": 300_000.0}
    body = {"applications": [{"id": "p", "features": row, "loan": loan}], "reasons": True}
    en = svc["client"].post("/v1/price", json=body)
    zh = svc["client"].post("/v1/price", json=body, headers={"Accept-Language": "zh-Hans"})
    assert en.status_code == zh.status_code == 200, zh.text
    a, b = en.json()["results"][0], zh.json()["results"][0]
    assert a["rate"] == b["rate"] and a["components"] == b["components"]
    assert b["grade_name"] == grade_name(b["grade"], "zh")
    gt = row.get("guarantee_type")
    if "guarantee_type" in svc["bundle"].schema.names:
        assert b["warnings"] == [text("service.guarantee_mismatch", "zh", loan=loan["guarantee_type"], feature=gt)]
        assert a["warnings"] == [text("service.guarantee_mismatch", "en", loan=loan["guarantee_type"], feature=gt)]
    assert [r["reason"] for r in b["reasons"]] == [reason_text(r["feature"], r["value"], "zh") for r in b["reasons"]]
    assert "reasons" not in svc["client"].post("/v1/price", json={**body, "reasons": False}).json()["results"][0]


def test_price_flags_loans_above_the_approval_authority_never_refuses_them(svc):
    from creditmodel.data.dictionary import default_dictionary
    from creditmodel.data.policy import approval_authority

    authority = approval_authority(default_dictionary())
    assert authority == 5_000_000
    row = svc["rows"][0]
    apps = [{"id": str(a), "features": row, "loan": {"guarantee_type": "unsecured", "amount": a, "maturity_years": m}}
            for a, m in ((authority, 1.0), (authority + 1, 1.0), (100_000.0, 11.0), (authority * 2, 12.0))]
    r = svc["client"].post("/v1/price", json={"applications": apps}, params={"lang": "zh"})
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert [x["needs_referral"] for x in res] == [False, True, True, True]
    assert [[i["rule"] for i in x["referral"]] for x in res] == [[], ["approval_authority"], ["term_limit"],
                                                                  ["approval_authority", "term_limit"]]
    assert "审批权限" in res[1]["referral"][0]["text"] and res[1]["referral"][0]["text"] == res[1]["referral"][0]["zh"]
    assert all(0 < x["rate"] < 1 for x in res)
