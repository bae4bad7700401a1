"""Request bounds: loan amount, term and instalment only within the data dictionary's valid domain, loan terms
of a price request likewise, never a default maturity in place of a bad term, and values outside the training
range flagged or refused as the bundle's policy says."""

from __future__ import annotations

import hashlib
import json
import math
import shutil

import numpy as np
import pytest

from creditmodel.data.schema import TABLES
from creditmodel.exceptions import BundleError
from creditmodel.export.bundle import load_bundle
from creditmodel.service.app import create_app, training_range_policy

from .conftest import asgi_calls

AMOUNT = TABLES["loans"].column("amount")
TERM = TABLES["loans"].column("term_months")


def _range(lo: float, hi: float) -> str:
    return f"[{lo:g}, {hi:g}]"


def _post(app, path, apps):
    return asgi_calls(app, [("POST", path, {"applications": apps})])[0]


@pytest.mark.parametrize("field, value, lo, hi, source", [
    ("term_months", -12.0, TERM.min_value, TERM.max_value, "loans.term_months"),
    ("term_months", 0.0, TERM.min_value, TERM.max_value, "loans.term_months"),
    ("term_months", 1e14, TERM.min_value, TERM.max_value, "loans.term_months"),
    ("loan_amount", -5.0, AMOUNT.min_value, AMOUNT.max_value, "loans.amount"),
    ("loan_amount", 0.0, AMOUNT.min_value, AMOUNT.max_value, "loans.amount"),
    ("loan_amount", 1e15, AMOUNT.min_value, AMOUNT.max_value, "loans.amount"),
    ("monthly_principal", -1.0, AMOUNT.min_value / TERM.max_value, AMOUNT.max_value / TERM.min_value,
     "loans.amount / loans.term_months"),
    ("monthly_principal", 1e14, AMOUNT.min_value / TERM.max_value, AMOUNT.max_value / TERM.min_value,
     "loans.amount / loans.term_months"),
])
def test_loan_features_outside_the_dictionary_domain_get_422(app, bundle, feature_rows, field, value, lo, hi, source):
    assert field in bundle.schema.names
    lo_b, hi_b = bundle.schema.bounds[field]
    assert lo_b <= value <= hi_b  # the bundle alone would have scored it: the dictionary refuses it
    for path in ("/v1/score", "/v1/price"):
        app_ = {"id": "x", "features": dict(feature_rows[0], **{field: value})}
        if path == "/v1/price":
            app_["loan"] = {"guarantee_type": "unsecured", "amount": 10_000.0}
        r = _post(app, path, [{"features": feature_rows[1], **({"loan": app_["loan"]} if "loan" in app_ else {})},
                              app_])
        assert r.status_code == 422, r.text
        d = r.json()["detail"][0]
        assert d["loc"] == ["body", "applications", 1, "features", field]
        assert field in d["msg"] and _range(lo, hi) in d["msg"] and source in d["msg"], d["msg"]


def test_valid_edges_of_the_domain_are_scored(app, bundle, feature_rows):
    edge = dict(feature_rows[0], loan_amount=float(AMOUNT.max_value), term_months=float(TERM.min_value),
                monthly_principal=float(AMOUNT.max_value) / TERM.min_value)
    r = _post(app, "/v1/score", [{"features": edge}])
    assert r.status_code == 200, r.text
    import pandas as pd

    assert r.json()["results"][0]["pd"] == bundle.predict_pd(pd.DataFrame([edge]))[0]


@pytest.mark.parametrize("loan, field, lo, hi", [
    ({"amount": -5.0}, "amount", AMOUNT.min_value, AMOUNT.max_value),
    ({"amount": 0.0}, "amount", AMOUNT.min_value, AMOUNT.max_value),
    ({"amount": 1e14}, "amount", AMOUNT.min_value, AMOUNT.max_value),
    ({"amount": 1e4, "maturity_years": -1.0}, "maturity_years", TERM.min_value / 12, TERM.max_value / 12),
    ({"amount": 1e4, "maturity_years": 1e14}, "maturity_years", TERM.min_value / 12, TERM.max_value / 12),
])
def test_loan_terms_outside_the_dictionary_domain_get_422(app, feature_rows, loan, field, lo, hi):
    r = _post(app, "/v1/price", [{"features": feature_rows[0], "loan": {"guarantee_type": "unsecured", **loan}}])
    assert r.status_code == 422, r.text
    d = r.json()["detail"][0]
    assert d["loc"][-1] == field and _range(lo, hi) in d["msg"], d


def test_price_never_substitutes_a_default_maturity(app, feature_rows):
    loan = {"guarantee_type": "unsecured", "amount": 100_000.0}
    row = dict(feature_rows[0], term_months=24.0, monthly_principal=100_000.0 / 24)
    ok = _post(app, "/v1/price", [{"features": row, "loan": loan}])
    assert ok.status_code == 200 and ok.json()["results"][0]["details"]["maturity_years"] == 2.0
    for term in (-12.0, 1e14):  # the drill's cases: refused, not priced at one year
        r = _post(app, "/v1/price", [{"features": dict(row, term_months=term), "loan": loan}])
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "term_months", r.text
    r = _post(app, "/v1/price", [{"features": dict(row, term_months=None), "loan": loan}])
    assert r.status_code == 200, r.text  # no term at all: the configured default, and the response says so
    res = r.json()["results"][0]
    assert res["details"]["maturity_years"] == 1.0 and "default maturity of 1 years" in res["warnings"][0]
    r = _post(app, "/v1/price", [{"features": dict(row, term_months=None), "loan": dict(loan, maturity_years=3.0)}])
    assert r.status_code == 200 and r.json()["results"][0]["details"]["maturity_years"] == 3.0


def test_openapi_carries_the_dictionary_ranges(app):
    spec = asgi_calls(app, [("GET", "/openapi.json", None)])[0].json()
    term = spec["components"]["schemas"]["ApplicationFeatures"]["properties"]["term_months"]
    variants = term.get("anyOf", [term])
    assert variants[0]["minimum"] == TERM.min_value and variants[0]["maximum"] == TERM.max_value
    amount = spec["components"]["schemas"]["LoanTerms"]["properties"]["amount"]
    assert amount["minimum"] == AMOUNT.min_value and amount["maximum"] == AMOUNT.max_value


# --- the training range -----------------------------------------------------------------------------


def _beyond_training(bundle) -> tuple[str, float]:
    """A numeric feature and a value above its training maximum that its allowed range still accepts."""
    for name, (_lo, hi) in bundle.schema.observed.items():
        if name in ("loan_amount", "term_months", "monthly_principal"):
            continue
        b_lo, b_hi = bundle.schema.bounds.get(name, (-1e15, 1e15))
        value = hi + max(1.0, abs(hi))
        if value <= b_hi and math.isfinite(value):
            return name, value
    raise LookupError("no feature with room above its training range")


def _inside(bundle, row):
    """The row with every numeric value clipped into its training range."""
    out = dict(row)
    for n, (lo, hi) in bundle.schema.observed.items():
        if out[n] is not None:
            out[n] = min(max(out[n], lo), hi)
    return out


def test_outside_training_range_is_flagged_by_default(app, bundle, feature_rows):
    name, value = _beyond_training(bundle)
    assert training_range_policy(bundle) == "flag"  # the demo bundle states no policy: flag
    rows = feature_rows[:30]
    r = _post(app, "/v1/score", [{"features": f} for f in rows]
              + [{"features": _inside(bundle, rows[0])}, {"features": dict(_inside(bundle, rows[0]), **{name: value})}])
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    for f, res in zip(rows, results):  # an independent check of every flag on real rows
        expected = [n for n in bundle.schema.names if n in bundle.schema.observed and f[n] is not None
                    and not bundle.schema.observed[n][0] <= f[n] <= bundle.schema.observed[n][1]]
        assert res["outside_training_range"] == expected
    assert results[-2]["outside_training_range"] == [] and results[-1]["outside_training_range"] == [name]
    p = _post(app, "/v1/price", [{"features": dict(_inside(bundle, rows[0]), **{name: value}),
                                  "loan": {"guarantee_type": "unsecured", "amount": 1e5}}])
    assert p.json()["results"][0]["outside_training_range"] == [name]


def test_a_value_beyond_the_training_range_by_float_noise_alone_is_inside(app, bundle, feature_rows):
    # the engines' features agree with the training matrix to 1e-12, not to the last bit: the training maximum
    # computed in another summation order may come out an ulp above it, which is the value seen, not beyond it
    name, (lo, hi) = next((n, r) for n, r in bundle.schema.observed.items() if r[1] > 0 and r[0] < r[1])
    inside = _inside(bundle, feature_rows[0])
    values = [float(np.nextafter(hi, np.inf)), hi * (1 + 1e-13), hi * (1 + 1e-9)]
    r = _post(app, "/v1/score", [{"features": dict(inside, **{name: v})} for v in values])
    assert r.status_code == 200, r.text
    assert [x["outside_training_range"] for x in r.json()["results"]] == [[], [], [name]]


def test_outside_training_range_is_refused_when_the_policy_says_so(bundle, feature_rows):
    name, value = _beyond_training(bundle)
    strict = create_app(bundle, training_range="refuse")
    inside = _inside(bundle, feature_rows[0])
    ok = _post(strict, "/v1/score", [{"features": inside}])
    assert ok.status_code == 200 and ok.json()["results"][0]["outside_training_range"] == []
    r = _post(strict, "/v1/score", [{"features": inside}, {"features": dict(inside, **{name: value})}])
    assert r.status_code == 422, r.text
    d = r.json()["detail"][0]
    lo, hi = bundle.schema.observed[name]
    assert d["loc"] == ["body", "applications", 1, "features", name] and d["type"] == "outside_training_range"
    assert _range(lo, hi) in d["msg"]


def _with_policy(bundle_dir, tmp_path, policy):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle_dir, copy)
    schema = json.loads((copy / "feature_schema.json").read_text())
    schema["out_of_training_range"] = policy
    data = json.dumps(schema).encode()
    (copy / "feature_schema.json").write_bytes(data)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"]["feature_schema.json"]["sha256"] = hashlib.sha256(data).hexdigest()
    manifest["files"]["feature_schema.json"]["bytes"] = len(data)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    (copy / "manifest.sig").unlink(missing_ok=True)  # edited here, so no longer the signer's bundle
    return load_bundle(copy, allow_unsigned=True)


def test_the_policy_is_read_from_the_bundles_feature_schema(bundle_dir, tmp_path, feature_rows):
    strict = _with_policy(bundle_dir, tmp_path / "a", "refuse")
    assert training_range_policy(strict) == "refuse"
    info = asgi_calls(create_app(strict), [("GET", "/v1/model", None)])[0].json()
    assert info["out_of_training_range"] == "refuse"
    with pytest.raises(BundleError, match="out_of_training_range 'sometimes'"):
        training_range_policy(_with_policy(bundle_dir, tmp_path / "b", "sometimes"))


def test_range_screens_equal_a_feature_by_feature_reading_of_the_policies(bundle, demo_rows):
    """out_of_range and outside_training (one comparison over all columns) against the policies read one
    feature at a time, on the demo rows pushed out of range in random cells, NaN never out of range."""
    import numpy as np

    from creditmodel.service.scoring import FastScorer

    scorer = FastScorer(bundle, self_check=False, dictionary=True)
    X = bundle.schema.encode(demo_rows[list(bundle.schema.names)])
    rng = np.random.default_rng(5)
    far = rng.random(X.shape) < 0.02
    X[far] = rng.normal(scale=1e7, size=far.sum())
    X[rng.random(X.shape) < 0.05] = np.nan
    bad_rows, outside = [], []
    for row in X:
        bad, names = False, []
        for j, p in enumerate(scorer.policies):
            v = row[j]
            if np.isnan(v):
                continue
            bad |= p.bounds is not None and not p.bounds[0] <= v <= p.bounds[1]
            if p.training_range is not None and p.categories is None and not p.training_range[0] <= v <= p.training_range[1]:
                names.append(p.name)
        bad_rows.append(bad)
        outside.append(names)
    assert scorer.out_of_range(X).tolist() == np.flatnonzero(bad_rows).tolist() and any(bad_rows)
    assert scorer.outside_training(X) == outside and any(outside)
    for i in range(0, len(X), 50):  # one row, as a request sends it
        assert scorer.out_of_range(X[i:i + 1]).tolist() == ([0] if bad_rows[i] else [])
        assert scorer.outside_training(X[i:i + 1]) == [outside[i]]
