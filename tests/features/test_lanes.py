"""The catalogue in two lanes (``build_features(lanes=2)``): the one query's features, bit for bit."""

import duckdb
import numpy as np
import pandas as pd
import pytest

from creditmodel.data.dictionary import default_dictionary, parse_dictionary
from creditmodel.data.io import load_tables_leaving, resolve_extraction_date
from creditmodel.data.synthetic import write_world_partitioned
from creditmodel.features.build import _lanes, build_features
from creditmodel.features.catalogue import CATALOGUE, Feature, attribute_features


def _same_bits(one: pd.DataFrame, two: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(one, two, check_exact=True)
    for c in one.columns:
        a, b = one[c].to_numpy(), two[c].to_numpy()
        if a.dtype.kind == "f":  # the same doubles: NaN where NaN, the sign of a zero too
            assert np.array_equal(a.view(np.int64), b.view(np.int64)), c


def test_the_lanes_split_the_transaction_sources_from_the_others():
    txn, rest = _lanes(CATALOGUE)
    assert {f.source for f in txn} == {"transactions", "transactions_monthly", "transaction_gaps",
                                       "transaction_counterparties"}
    assert "derived" not in {f.source for f in rest} and "application" in {f.source for f in rest}
    assert len(txn) + len(rest) == sum(f.source != "derived" for f in CATALOGUE)
    assert _lanes([f for f in CATALOGUE if f.source == "transactions"]) is None  # one lane would be empty


def test_two_lanes_give_the_one_querys_features_bit_for_bit(small_world):
    tables = small_world.tables
    one = build_features(tables)
    _same_bits(one, build_features(tables, lanes=2))
    # some applications, shuffled, at later decision dates (a monitoring date): the same again
    loans = tables["loans"]
    apps = loans.sample(frac=0.4, random_state=3).assign(application_date=loans["application_date"].max())
    _same_bits(build_features(tables, apps), build_features(tables, apps, lanes=2))


def test_two_lanes_read_parquet_left_in_its_files_and_a_cut(tmp_path):
    """Transactions left in their files are a view of the build's database, which the second lane's
    connection sees; its as-of cut holds in both lanes."""
    world = write_world_partitioned(tmp_path / "world", 300, seed=5, transaction_density=0.3)
    tables = load_tables_leaving(world, ("transactions",), extraction_date=resolve_extraction_date(None, world))
    date = pd.Timestamp("2022-06-30")
    cut = {**tables, "transactions": tables["transactions"].cut(date)}
    apps = tables["loans"][tables["loans"]["application_date"] <= date]
    one = build_features(cut, apps)
    assert one["txn_inflow_12m"].gt(0).any()
    _same_bits(one, build_features(cut, apps, lanes=2))


def test_derived_features_read_both_lanes_and_the_keys(small_world):
    own = Feature("own_inflow_by_month", "derived",
                  "txn_inflow_12m / nullif(month(decision_date), 0) + loan_amount * 0", "Inflow by month")
    feats = (*CATALOGUE, own)
    one = build_features(small_world.tables, features=feats)
    two = build_features(small_world.tables, features=feats, lanes=2)
    _same_bits(one, two)
    expected = one["txn_inflow_12m"] / one["decision_date"].dt.month
    np.testing.assert_allclose(two["own_inflow_by_month"], expected, rtol=1e-15)


def test_the_banks_own_columns_reach_the_second_lane(small_world):
    d = parse_dictionary({"attributes": [
        {"table": "loans", "name": "purpose", "kind": "categorical", "categories": ["car", "business"],
         "en": "Loan purpose", "zh": "贷款用途"},
        {"table": "enterprises", "name": "bureau_score", "kind": "numeric", "en": "Bureau score", "zh": "征信评分"},
    ]}, defaults=default_dictionary())
    tables = {k: v.copy() for k, v in small_world.tables.items()}
    n = len(tables["loans"])
    tables["loans"]["purpose"] = np.where(np.arange(n) % 3 == 0, "car", np.where(np.arange(n) % 3 == 1, "business",
                                                                                 None))
    tables["enterprises"]["bureau_score"] = np.arange(len(tables["enterprises"]), dtype=float)
    feats = (*CATALOGUE, *attribute_features(d.attributes))
    one = build_features(tables, features=feats)
    assert one["purpose"].isna().any() and set(one["purpose"].dropna()) == {"car", "business"}
    _same_bits(one, build_features(tables, features=feats, lanes=2))


def test_a_repeated_loan_or_a_single_lane_is_one_query(small_world):
    tables = small_world.tables
    loans = tables["loans"]
    twice = pd.concat([loans.iloc[:20], loans.iloc[:5]])
    _same_bits(build_features(tables, twice), build_features(tables, twice, lanes=2))
    only = [f for f in CATALOGUE if f.source in ("transactions", "transactions_monthly")]
    _same_bits(build_features(tables, features=only), build_features(tables, features=only, lanes=2))


def test_a_failing_lane_fails_the_build(small_world):
    broken = Feature("own_broken", "transactions", "max(CAST(s.direction AS INTEGER))", "Broken", window_days=365)
    for lanes in (1, 2):
        with pytest.raises(duckdb.ConversionException):
            build_features(small_world.tables, features=(*CATALOGUE[:20], broken, *CATALOGUE[60:80]), lanes=lanes)


def test_lanes_are_one_or_two(small_world):
    with pytest.raises(ValueError, match="lanes 3: expected 1 or 2"):
        build_features(small_world.tables, lanes=3)
