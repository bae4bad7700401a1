"""A guarantor's PD comes from the data: the bundle scores the guarantor enterprise from the store as of the
guaranteed loan's decision date, for that loan's terms. Checked against the offline feature matrix (the
guarantor's own loan with the same terms on the same date), then the substitution by hand; unknown
guarantors, circles A <-> B and a PD typed in are one line and write nothing."""

from __future__ import annotations

import math
from statistics import NormalDist

import pandas as pd
import pytest

from creditmodel.cli import main
from creditmodel.config import PricingConfig
from creditmodel.data.io import read_tables
from creditmodel.export.bundle import load_bundle
from creditmodel.features.online import build_store

N = NormalDist()
TERMS = ["decision_date", "loan_amount", "term_months", "product", "guarantee_type"]


@pytest.fixture(scope="module")
def world(demo_run, tmp_path_factory):
    result = demo_run["result"]
    tables = read_tables(result.output_dir / "world")
    store = tmp_path_factory.mktemp("security") / "store.duckdb"
    build_store(tables, store)
    frame = pd.read_parquet(result.features_path)
    loans = tables["loans"].set_index("loan_id")
    return {"bundle": load_bundle(result.bundle_dir), "bundle_dir": result.bundle_dir, "store": store, "tables": tables,
            "frame": frame, "single": frame[frame["loan_id"].map(loans["group_id"]).isna()]}


def _pair(world):
    """Loan L1 of borrower A, re-dated and re-termed as loan L2 of another borrower B (no joint group), so that
    B guaranteeing L1 is scored exactly as B's own application L2 was in the offline feature matrix."""
    single = world["single"]
    l2 = single[single["split"] == "oot"].iloc[3]
    bare = ~single["loan_id"].isin(world["tables"]["collateral"]["loan_id"])  # L1 without collateral items
    l1 = single[(single["enterprise_id"] != l2["enterprise_id"]) & (single["split"] == "oot") & bare].iloc[0].copy()
    l1[TERMS] = l2[TERMS]
    return l1, l2


def _apps(rows):
    return pd.DataFrame(rows).drop(columns=["default", "split"]).reset_index(drop=True)


def _retail_k(pd_, lgd):
    w = (1 - math.exp(-35 * pd_)) / (1 - math.exp(-35))
    r = 0.03 * w + 0.16 * (1 - w)
    return lgd * (N.cdf((N.inv_cdf(pd_) + math.sqrt(r) * N.inv_cdf(0.999)) / math.sqrt(1 - r)) - pd_)


def test_the_guarantor_is_scored_from_the_data_and_substituted(world, tmp_path, capsys):
    bundle = world["bundle"]
    l1, l2 = _pair(world)
    pd_b = float(bundle.predict_pd(l2.to_frame().T)[0])  # B's PD on its own loan, offline feature matrix
    apps = _apps([l1])
    apps["guarantor_id"] = int(l2["enterprise_id"])
    pd_a = float(bundle.predict_pd(apps)[0])
    src, out = tmp_path / "apps.parquet", tmp_path / "priced.csv"
    apps.to_parquet(src)
    assert main(["price", "--bundle", str(world["bundle_dir"]), "--applications", str(src), "--store",
                 str(world["store"]), "--out", str(out)]) == 0, capsys.readouterr().err
    row = pd.read_csv(out).iloc[0]
    assert row["pd_guarantor"] == pytest.approx(pd_b, rel=1e-12)
    assert row["pd"] == pytest.approx(pd_a, rel=1e-12)
    # substitution by hand: the loan is priced and capitalised at the lower of the two PDs
    cfg = PricingConfig()
    p = min(pd_a, pd_b)
    lgd = cfg.lgd[row["guarantee_type"]]
    assert row["pd_priced"] == pytest.approx(p, rel=1e-12) and row["lgd"] == pytest.approx(lgd)
    assert row["expected_loss"] == pytest.approx(p * lgd, rel=1e-12)
    if row["capital_approach"] == "retail":
        assert row["k"] == pytest.approx(_retail_k(max(p, cfg.pd_floor), lgd), rel=1e-9)
    parts = cfg.funding_cost + cfg.operating_cost + p * lgd + row["k"] * cfg.capital_cost_rate + cfg.margin
    assert row["risk_covering_rate"] == pytest.approx(parts, rel=1e-12)


def test_the_stores_guarantees_and_collateral_reach_the_price(world, tmp_path):
    """Without a guarantor_id column the store's guarantees table names the guarantors, and its collateral
    items give the recognised cover."""
    from creditmodel.features.online import OnlineFeatures
    from creditmodel.pricing.guarantees import collateral_cover
    from creditmodel.pricing.security import loan_security

    tables = world["tables"]
    oot = world["frame"][world["frame"]["split"] == "oot"]
    guaranteed = oot[oot["loan_id"].isin(tables["guarantees"]["loan_id"])].head(3)
    secured = oot[oot["loan_id"].isin(tables["collateral"]["loan_id"])].head(2)
    apps = _apps(pd.concat([guaranteed, secured]))
    online = OnlineFeatures(world["bundle"].catalogue, world["store"])
    try:
        got = loan_security(world["bundle"], online, apps, PricingConfig().collateral_haircuts).set_index("loan_id")
        g = tables["guarantees"].merge(apps[["loan_id", *TERMS]], on="loan_id")
        expected = {}
        for r in g.itertuples(index=False):  # each guarantor scored as of the loan's date for the loan's terms
            x = online.features(r.guarantor_id, r.decision_date, amount=r.loan_amount, term_months=int(r.term_months),
                                product=r.product, guarantee_type=r.guarantee_type)
            pd_g = float(world["bundle"].predict_pd(x)[0])
            expected[r.loan_id] = min(expected.get(r.loan_id, 1.0), pd_g)
    finally:
        online.close()
    assert got.loc[list(expected), "pd_guarantor"].tolist() == pytest.approx(list(expected.values()), rel=1e-12)
    assert got.loc[guaranteed["loan_id"], "pd_guarantor"].notna().all()
    assert got.loc[secured["loan_id"], "pd_guarantor"].isna().all()
    cover = collateral_cover(tables["collateral"][tables["collateral"]["loan_id"].isin(secured["loan_id"])],
                             PricingConfig().collateral_haircuts)
    assert got.loc[secured["loan_id"], "collateral_cover"].to_numpy() == pytest.approx(cover.loc[secured["loan_id"]])


@pytest.mark.parametrize("case, message", [
    ("unknown", "guarantees: guarantor_id 987654321 of loan_id"),
    ("circle", "guarantees: circular guarantees"),
    ("self", "is guaranteed by its own borrower"),
    ("given", "column 'pd_guarantor' is not taken as given"),
])
def test_bad_guarantees_are_one_line_and_write_nothing(world, tmp_path, capsys, case, message):
    l1, l2 = _pair(world)
    l3 = world["single"][world["single"]["enterprise_id"] == l2["enterprise_id"]].iloc[0].copy()
    apps = _apps([l1, l3])
    a, b = int(l1["enterprise_id"]), int(l2["enterprise_id"])
    apps["guarantor_id"] = {"unknown": [987654321, None], "circle": [b, a], "self": [a, None],
                            "given": [b, None]}[case]
    if case == "given":
        apps["pd_guarantor"] = [0.01, None]
    src, out = tmp_path / "apps.parquet", tmp_path / "priced.csv"
    apps.to_parquet(src)
    assert main(["price", "--bundle", str(world["bundle_dir"]), "--applications", str(src), "--store",
                 str(world["store"]), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()
