"""Every refusal of the scoring service says its reason in English (``msg``) and Simplified Chinese
(``msg_zh``): the service's own refusals, the fields pydantic refuses, a feature the bundle refuses and a
pricing input, each from the message catalogue; the English is what it was before the catalogue said it."""

from __future__ import annotations

import json
import typing

import pandas as pd
import pydantic_core
import pytest

from creditmodel.config import PricingConfig
from creditmodel.exceptions import RequestError, TextedValueError
from creditmodel.pricing.engine import price
from creditmodel.service.errors import of_validation, untranslated, within
from creditmodel.texts import catalogue

from .conftest import asgi_calls
from .said import UNTRANSLATED, assert_said_in_both


def test_a_catalogue_error_is_the_english_of_before_and_has_its_chinese():
    exc = RequestError.of("error.feature_null", name="txn_inflow_3m")
    assert str(exc) == "feature 'txn_inflow_3m': null is not allowed (the feature is always defined)"
    assert exc.in_lang("zh") == "特征 'txn_inflow_3m'：不允许为空（该特征总有取值）"
    assert RequestError("plain").in_lang("zh") is None
    value = TextedValueError.of("error.outside_domain", value=-5.0, opening="(", lo=0, hi=5e6, source="loans.amount")
    assert isinstance(value, ValueError)
    assert str(value) == "-5.0 is outside the valid range (0, 5e+06] (data dictionary: loans.amount)"
    assert value.in_lang("zh") == "-5.0 超出有效范围 (0, 5e+06]（数据字典：loans.amount）"


def test_every_pydantic_error_the_catalogue_says_is_a_pydantic_error_type():
    types = set(typing.get_args(pydantic_core.core_schema.ErrorType))
    said = {k.removeprefix("error.input.") for k in catalogue("zh") if k.startswith("error.input.")}
    assert said and said <= types, sorted(said - types)


def test_a_pricing_input_is_refused_in_both_languages_with_what_it_must_be():
    frame = pd.DataFrame({"loan_id": [7], "guarantee_type": ["unsecured"], "pd": [1.5]})
    with pytest.raises(RequestError) as caught:
        price(frame, PricingConfig())
    assert str(caught.value) == "pricing input: pd must be a number in [0, 1], got 1.5 (loan_id 7)"
    assert caught.value.in_lang("zh") == "定价输入：pd 应为 [0, 1] 之间的数，收到 1.5（贷款编号 7）"
    frame = pd.DataFrame({"loan_id": [7], "guarantee_type": ["unsecured"], "pd": [0.1], "maturity_years": [80.0]})
    with pytest.raises(RequestError) as caught:
        price(frame, PricingConfig())
    assert str(caught.value).startswith("pricing input: maturity_years must be a number of years in (0, 50], got 80.0")
    assert "以年计、在 (0, 50] 之间的数" in caught.value.in_lang("zh")


def test_an_unknown_pydantic_error_keeps_its_english_behind_the_chinese_fallback():
    item = of_validation({"type": "no_such_type", "msg": "Something odd", "ctx": {}}, ["body", "x"])
    assert item == {"loc": ["body", "x"], "msg": "Something odd", "msg_zh": UNTRANSLATED + "Something odd",
                    "type": "no_such_type"}
    assert untranslated(["body"], "t", "m")["msg_zh"] == UNTRANSLATED + "m"
    wrapped = within([item], "error.computed", d="2024-03-01")[0]
    assert wrapped["msg"] == "computed from the store as of 2024-03-01: Something odd"
    assert wrapped["msg_zh"] == "按 2024-03-01 时点由数据库计算得出：" + UNTRANSLATED + "Something odd"


def _bad_feature_requests(bundle, row: dict) -> list[tuple[str, dict | str, str]]:
    """(what, body, the loc's last part) of one bad request of each kind the feature endpoints refuse."""
    names = list(bundle.schema.names)
    number = next(n for n in names if n not in bundle.schema.categories)
    category = next(iter(bundle.schema.categories), None)
    nullable_not = next((n for n in names if n in bundle.schema.required), None)
    cases: list[tuple[str, dict | str, str]] = []
    missing = {k: v for k, v in row.items() if k != number}
    cases.append(("missing feature", {"applications": [{"features": missing}]}, number))
    cases.append(("extra field", {"applications": [{"features": row, "colour": "red"}]}, "colour"))
    cases.append(("string for a number", {"applications": [{"features": {**row, number: "12"}}]}, number))
    cases.append(("bool for a number", {"applications": [{"features": {**row, number: True}}]}, number))
    cases.append(("beyond the bundle's range", {"applications": [{"features": {**row, number: 1e300}}]}, number))
    if category is not None:
        cases.append(("unknown category", {"applications": [{"features": {**row, category: "??"}}]}, category))
    if nullable_not is not None:
        cases.append(("null", {"applications": [{"features": {**row, nullable_not: None}}]}, nullable_not))
    cases.append(("no applications", {"applications": []}, "applications"))
    cases.append(("applications not a list", {"applications": {"a": 1}}, "applications"))
    cases.append(("not JSON", "{not json", "body"))
    cases.append(("bad reasons flag", {"applications": [{"features": row}], "reasons": "yes"}, "reasons"))
    cases.append(("bad lang", {"applications": [{"features": row}], "lang": "klingon"}, "lang"))
    return cases


def test_every_kind_of_bad_feature_request_is_refused_in_both_languages(app, bundle, feature_rows):
    row = feature_rows[0]
    for path in ("/v1/score", "/v1/price"):
        for what, body, last in _bad_feature_requests(bundle, row):
            if path == "/v1/price" and isinstance(body, dict) and isinstance(body["applications"], list):
                body = {**body, "applications": [{**a, "loan": {"guarantee_type": "unsecured", "amount": 1e5}}
                                                  if isinstance(a, dict) else a for a in body["applications"]]}
            content = body if isinstance(body, str) else json.dumps(body)
            (r,) = _post(app, path, content)
            assert r.status_code == 422, (what, r.text)
            detail = r.json()["detail"]
            assert detail, what
            for item in detail:
                assert_said_in_both(item)
            assert str(detail[0]["loc"][-1]) == last or last == "body", (what, detail[0])
    (r,) = asgi_calls(app, [("POST", "/v1/score?lang=fr", {"applications": [{"features": row}]})])
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "lang"]
    assert_said_in_both(r.json()["detail"][0])
    assert "应为以下之一" in r.json()["detail"][0]["msg_zh"]


def _post(app, path: str, content: str):
    import asyncio

    import httpx

    async def run():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as c:
            return [await c.post(path, content=content, headers={"content-type": "application/json"})]

    return asyncio.run(run())


def test_a_value_outside_the_bundles_range_says_the_range_in_chinese(app, bundle, feature_rows):
    number = next(n for n in bundle.schema.names if n not in bundle.schema.categories)
    (r,) = _post(app, "/v1/score", json.dumps({"applications": [{"features": {**feature_rows[0], number: 1e300}}]}))
    (item,) = r.json()["detail"]
    assert item["loc"] == ["body", "applications", 0, "features", number]
    assert item["msg"].startswith(f"feature {number!r}: value 1e+300 is outside the allowed range")
    assert item["msg_zh"].startswith(f"特征 {number!r}：取值 1e+300 超出允许范围")


def test_refusals_before_the_body_is_read_are_in_both_languages(bundle, feature_rows):
    from creditmodel.service.app import create_app

    small = create_app(bundle, max_body_bytes=2_000)
    (r,) = asgi_calls(small, [("POST", "/v1/score", {"applications": [{"features": feature_rows[0]}] * 3})])
    assert r.status_code == 413
    (item,) = r.json()["detail"]
    assert item["msg"] == "request body over 2000 bytes" and item["msg_zh"] == "请求体超过 2000 字节"
    keyed = create_app(bundle, api_keys=["s3cret-key-0123456789"])
    (r,) = asgi_calls(keyed, [("POST", "/v1/score", {"applications": [{"features": feature_rows[0]}]})])
    assert r.status_code == 401
    assert_said_in_both(r.json()["detail"][0])
    (r,) = asgi_calls(small, [("POST", "/v1/applications/score", {"enterprise_id": 1})])
    assert r.status_code == 404 and r.json()["detail"][0]["type"] == "no_store"
    assert r.json()["detail"][0]["msg_zh"].startswith("本服务未配置特征数据库")


def test_the_error_schema_documents_the_chinese(app):
    (r,) = asgi_calls(app, [("GET", "/openapi.json", None)])
    item = r.json()["components"]["schemas"]["ErrorItem"]
    assert set(item["required"]) >= {"loc", "msg", "msg_zh", "type"}


def test_an_unknown_path_or_method_is_refused_in_both_languages(app):
    lost, wrong = asgi_calls(app, [("GET", "/v1/scores", None), ("GET", "/v1/score", None)])
    assert lost.status_code == 404 and wrong.status_code == 405
    assert lost.json()["detail"] == [{"loc": ["path"], "type": "not_found",
                                      "msg": "no such path: /v1/scores (the API is listed at /docs)",
                                      "msg_zh": "没有该路径：/v1/scores（接口见 /docs）"}]
    (item,) = wrong.json()["detail"]
    assert item["type"] == "method_not_allowed" and item["msg_zh"] == "/v1/score 不接受 GET 请求（接口见 /docs）"
    assert wrong.headers["allow"] == "POST"
