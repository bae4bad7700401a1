"""The bank's own columns through the application endpoints: a loan attribute is part of the application,
so the request states it and the service scores exactly what the offline matrix holds; an enterprise
attribute comes from the store. A request without them, or a store without the column, is refused in one
line."""

from __future__ import annotations

import json
import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest

from creditmodel.config import RunConfig
from creditmodel.data.dictionary import default_dictionary, parse_dictionary
from creditmodel.exceptions import StoreError
from creditmodel.export.bundle import load_bundle, write_bundle
from creditmodel.features import catalogue as cat
from creditmodel.features.build import available_features, build_features
from creditmodel.features.catalogue import run_features
from creditmodel.features.labels import make_labels
from creditmodel.features.matrix import FeatureSchema
from creditmodel.features.online import OnlineFeatures, build_store
from creditmodel.features.spark import frame_mismatches
from creditmodel.models.calibration import PDCalibrator
from creditmodel.models.gbm import LightGBMPD
from creditmodel.models.master_scale import MasterScale
from creditmodel.service.app import ScoringService
from creditmodel.service.applications import ApplicationService

ATTRS = {"attributes": [
    {"table": "loans", "name": "purpose", "kind": "categorical", "categories": ["car", "business"],
     "en": "Loan purpose", "zh": "贷款用途"},
    {"table": "loans", "name": "bureau_score", "kind": "numeric", "direction": -1, "en": "Bureau score",
     "zh": "征信评分"},
    {"table": "loans", "name": "refinancing", "kind": "bool", "en": "Refinancing", "zh": "借新还旧"},
    {"table": "enterprises", "name": "exporter", "kind": "bool", "en": "Exporter", "zh": "出口企业"},
]}
OWN = ("purpose", "bureau_score", "refinancing")


@pytest.fixture(scope="module")
def own(small_world, tmp_path_factory):
    """A bundle trained with the bank's attributes, its store, and the offline matrix it was trained on."""
    d = parse_dictionary(ATTRS, defaults=default_dictionary())
    t = {k: v.copy() for k, v in small_world.tables.items()}
    loans, n = t["loans"], len(t["loans"])
    rng = np.random.default_rng(3)
    loans["purpose"] = pd.Series(np.where(np.arange(n) % 3 == 0, "car", np.where(np.arange(n) % 3 == 1, "business",
                                                                                  None)), dtype=object)
    labels = make_labels(t, pd.Timestamp(small_world.extraction_date))
    bad = loans["loan_id"].map(labels).fillna(0).to_numpy()
    # a bureau score that tells defaulters apart, so the model leans on it (a missing one moves the PD)
    loans["bureau_score"] = np.round(rng.normal(650, 30, n) - 150 * bad)
    loans["refinancing"] = rng.random(n) < 0.2 + 0.5 * bad
    t["enterprises"]["exporter"] = t["enterprises"]["enterprise_id"] % 2 == 0
    kept, _ = available_features(t, run_features(d))
    frame = build_features(t, features=kept)
    train = frame.assign(default=frame["loan_id"].map(labels)).dropna(subset=["default"])
    cols = [f.name for f in kept]
    model = LightGBMPD(n_estimators=30, feature_schema=FeatureSchema.for_columns(cols, kept)).fit(
        train[cols], train["default"].astype(int))
    margin = model.decision_function(train[cols])
    cal = PDCalibrator().fit(margin, train["default"].astype(int).to_numpy())
    ms = RunConfig().master_scale
    scale = MasterScale(ms.grades, ms.upper_bounds, pd_floor=cal.pd_floor, assigned_pd=ms.assigned_pd).fit(
        cal.predict(margin))
    root = tmp_path_factory.mktemp("own")
    write_bundle(root / "bundle", model, cal, scale, catalogue=kept)
    build_store(t, root / "store.duckdb")
    bundle = load_bundle(root / "bundle", allow_unsigned=True)
    yield {"tables": t, "frame": frame.set_index("loan_id"), "bundle": bundle, "store": root / "store.duckdb",
           "service": ApplicationService(ScoringService(bundle), str(root / "store.duckdb"))}
    cat.BY_NAME.clear()
    cat.BY_NAME.update({f.name: f for f in cat.CATALOGUE})


def _body(loan, **changes):
    body = {"id": f"loan-{loan.loan_id}", "enterprise_id": int(loan.enterprise_id), "amount": float(loan.amount),
            "term_months": int(loan.term_months), "product": loan.product, "guarantee_type": loan.guarantee_type,
            "decision_date": str(pd.Timestamp(loan.application_date).date()),
            "group_id": None if pd.isna(loan.group_id) else int(loan.group_id),
            "attributes": {"purpose": loan.purpose if isinstance(loan.purpose, str) else None,
                           "bureau_score": int(loan.bureau_score), "refinancing": bool(loan.refinancing)}}
    body.update(changes)
    return json.dumps(body).encode()


def test_the_stated_attributes_score_as_the_offline_matrix(own):
    svc, bundle, frame = own["service"], own["bundle"], own["frame"]
    names = list(bundle.schema.names)
    assert set(OWN) | {"exporter"} <= set(names)
    assert bundle.booster.feature_importance()[names.index("bureau_score")] > 0  # the model reads it
    loans = own["tables"]["loans"].sample(25, random_state=2)
    expected = bundle.predict_pd(frame.loc[loans["loan_id"], names])
    for i, loan in enumerate(loans.itertuples()):
        status, out, _ = svc.handle("/v1/applications/score", _body(loan))
        assert status == 200, out
        res = json.loads(out)["result"]
        assert res["pd"] == pytest.approx(expected[i], rel=1e-12, abs=0)
        want = frame.loc[loan.loan_id]
        assert res["features"]["bureau_score"] == want["bureau_score"]
        assert res["features"]["refinancing"] == want["refinancing"] in (0.0, 1.0)
        assert res["features"]["purpose"] == (want["purpose"] if isinstance(want["purpose"], str) else None)
        assert res["features"]["exporter"] == want["exporter"]  # from the store's enterprises table


def test_online_rows_with_attributes_equal_the_offline_matrix(own):
    online = OnlineFeatures(own["bundle"].catalogue, own["store"])
    assert online.engine == "sqlite"  # the bank's own columns (text, number, boolean) translate too
    loans = own["tables"]["loans"].sample(30, random_state=5)
    rows = []
    for loan in loans.itertuples():
        attrs = {"purpose": loan.purpose if isinstance(loan.purpose, str) else None,
                 "bureau_score": float(loan.bureau_score), "refinancing": bool(loan.refinancing)}
        row = online.features(loan.enterprise_id, loan.application_date, amount=loan.amount,
                              term_months=loan.term_months, product=loan.product, guarantee_type=loan.guarantee_type,
                              group_id=None if pd.isna(loan.group_id) else int(loan.group_id), attributes=attrs)
        rows.append(row.assign(loan_id=loan.loan_id))
    got = pd.concat(rows, ignore_index=True)
    exp = own["frame"].loc[got["loan_id"]].reset_index()
    got["loan_id"] = got["loan_id"].astype(exp["loan_id"].dtype)
    got["enterprise_id"] = got["enterprise_id"].astype(exp["enterprise_id"].dtype)
    assert frame_mismatches(exp[got.columns], got, rtol=1e-12) == {}


@pytest.mark.parametrize("change, field", [
    ({"attributes": None}, "attributes"),
    ("drop", "attributes"),
    ({"attributes": {"purpose": "car", "bureau_score": 700}}, "refinancing"),
    ({"attributes": {"purpose": "yacht", "bureau_score": 700, "refinancing": False}}, "purpose"),
    ({"attributes": {"purpose": "car", "bureau_score": "700", "refinancing": False}}, "bureau_score"),
    ({"attributes": {"purpose": "car", "bureau_score": 700, "refinancing": 1}}, "refinancing"),
    ({"attributes": {"purpose": "car", "bureau_score": 700, "refinancing": False, "colour": "red"}}, "colour"),
])
def test_missing_or_wrong_attributes_are_422_naming_the_field(own, change, field):
    loan = next(own["tables"]["loans"].head(1).itertuples())
    body = json.loads(_body(loan))
    if change == "drop":
        del body["attributes"]
    else:
        body.update(change)
    status, out, _ = own["service"].handle("/v1/applications/score", json.dumps(body).encode())
    assert status == 422, out
    assert field in json.dumps(json.loads(out)["detail"][0]["loc"])


def test_unknown_attributes_are_stated_as_null(own):
    loan = next(own["tables"]["loans"].head(1).itertuples())
    body = json.loads(_body(loan))
    body["attributes"] = {"purpose": None, "bureau_score": None, "refinancing": None}
    status, out, _ = own["service"].handle("/v1/applications/price", json.dumps(body).encode())
    assert status == 200, out
    res = json.loads(out)["result"]
    assert [res["features"][n] for n in OWN] == [None, None, None]


def test_a_store_without_an_attribute_column_is_one_store_error(own, tmp_path):
    broken = tmp_path / "broken.duckdb"
    shutil.copy(own["store"], broken)
    with duckdb.connect(str(broken)) as con:
        con.execute("DROP INDEX loans_enterprise").fetchall()  # an index on the table blocks ALTER
        con.execute("ALTER TABLE loans DROP COLUMN bureau_score").fetchall()
    with pytest.raises(StoreError, match=r"table 'loans' lacks column 'bureau_score', the bank's own attribute"):
        OnlineFeatures(own["bundle"].catalogue, broken)


def test_as_of_scoring_takes_the_attributes_of_the_latest_loan(own):
    """`score --as-of` rates each active borrower on its latest loan's terms, its own columns included: the
    bulk query equals one application each with those terms stated."""
    from creditmodel.features.asof import AsOfFeatures

    as_of = pd.Timestamp(own["tables"]["loans"]["application_date"].quantile(0.8)).date()
    with AsOfFeatures(own["bundle"].catalogue, own["store"]) as bulk:
        borrowers = bulk.borrowers(as_of).head(25)
        got = bulk.compute_many(borrowers, as_of)
    loans = own["tables"]["loans"].set_index("loan_id")
    assert set(OWN) <= set(borrowers.columns)
    online = OnlineFeatures(own["bundle"].catalogue, own["store"])
    rows = []
    for b in borrowers.itertuples():
        loan = loans.loc[b.loan_id]
        attrs = {"purpose": loan["purpose"] if isinstance(loan["purpose"], str) else None,
                 "bureau_score": float(loan["bureau_score"]), "refinancing": bool(loan["refinancing"])}
        rows.append(online.features(b.enterprise_id, as_of, amount=b.amount, term_months=b.term_months,
                                    product=b.product, guarantee_type=b.guarantee_type,
                                    group_id=None if pd.isna(b.group_id) else int(b.group_id), attributes=attrs))
    want = pd.concat(rows, ignore_index=True)
    cols = [c for c in want.columns if c not in ("loan_id",)]
    assert frame_mismatches(want[cols], got[cols], rtol=1e-12) == {}
    assert got["bureau_score"].tolist() == [float(loans.loc[i, "bureau_score"]) for i in borrowers["loan_id"]]


def test_a_guarantor_is_scored_with_the_loans_own_columns_by_the_service_and_by_batch_pricing(own):
    """The guarantor takes on the loan as it is, its own columns included: the service's guarantor PD and
    batch pricing's (``price --store``, from feature rows whose flags are 0/1) are the same number."""
    from creditmodel.pricing.security import guarantor_pds_from_data

    svc, frame = own["service"], own["frame"]
    ents = own["tables"]["enterprises"]["enterprise_id"].to_numpy()
    compared = 0
    for loan in own["tables"]["loans"].sample(12, random_state=9).itertuples():
        guarantor = next((int(g) for g in ents[:40] if g != loan.enterprise_id and svc.handle(
            "/v1/applications/price", _body(loan, guarantor_id=int(g)))[0] == 200), None)
        if guarantor is None:
            continue
        status, out, _ = svc.handle("/v1/applications/price", _body(loan, guarantor_id=guarantor))
        served = json.loads(out)["result"]["guarantor"]["pd"]
        row = frame.loc[loan.loan_id]
        apps = pd.DataFrame({"loan_id": [loan.loan_id], "enterprise_id": [loan.enterprise_id],
                             "amount": [loan.amount], "term_months": [loan.term_months], "product": [loan.product],
                             "guarantee_type": [loan.guarantee_type], "decision_date": [loan.application_date],
                             **{c: [row[c]] for c in OWN}})
        assert apps["refinancing"].iloc[0] in (0.0, 1.0)  # as a feature row holds a flag
        batch = guarantor_pds_from_data(own["bundle"], svc.online,
                                        pd.DataFrame({"loan_id": [loan.loan_id], "guarantor_id": [guarantor]}), apps)
        assert batch["pd"].iloc[0] == pytest.approx(served, rel=1e-12, abs=0)
        compared += 1
    assert compared >= 8


def test_batch_pricing_without_the_loans_own_column_is_one_line(own):
    from creditmodel.exceptions import RequestError
    from creditmodel.pricing.security import guarantor_pds_from_data

    loan = next(own["tables"]["loans"].head(1).itertuples())
    apps = pd.DataFrame({"loan_id": [loan.loan_id], "enterprise_id": [loan.enterprise_id], "amount": [loan.amount],
                         "term_months": [loan.term_months], "product": [loan.product],
                         "guarantee_type": [loan.guarantee_type], "decision_date": [loan.application_date]})
    with pytest.raises(RequestError, match="column 'purpose' is missing; the bundle reads this column of the loan"):
        guarantor_pds_from_data(own["bundle"], own["service"].online,
                                pd.DataFrame({"loan_id": [loan.loan_id], "guarantor_id": [123]}), apps)
