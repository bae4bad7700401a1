"""The amount above which a transaction counts as large, and the currency the catalogue's texts speak of, are
the bank's (its data dictionary's `large_transaction` and `currency`), not the seed bank's CNY 50,000."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from creditmodel.data.dictionary import default_dictionary, dictionary_toml, load_dictionary, parse_dictionary
from creditmodel.exceptions import ConfigError
from creditmodel.features.build import build_features
from creditmodel.features.catalogue import CATALOGUE, catalogue

LARGE = ("txn_large_inflow_count_3m", "txn_large_inflow_count_12m", "txn_large_outflow_count_12m")


def _dictionary(tmp_path, text: str):
    path = tmp_path / "dictionary.toml"
    path.write_text(text, encoding="utf-8")
    return load_dictionary(path)


def test_the_shipped_dictionary_keeps_the_catalogue_as_it_was():
    d = default_dictionary()
    assert d.currency == "CNY" and d.large_transaction == 50_000
    assert catalogue(d) == CATALOGUE
    by = {f.name: f for f in CATALOGUE}
    assert by["txn_large_inflow_count_3m"].label == "Receipts of CNY 50,000 or more, last 3 months"
    assert by["txn_large_inflow_count_3m"].label_zh == "近3个月5万元及以上入账笔数"
    assert by["txn_large_outflow_count_12m"].label_zh == "近12个月5万元及以上出账笔数"
    assert all("s.amount >= 50000 " in by[n].sql or by[n].sql.endswith("s.amount >= 50000") or
               "s.amount >= 50000)" in by[n].sql for n in LARGE)


def test_a_bank_in_dollars_with_its_own_threshold(tmp_path):
    d = _dictionary(tmp_path, 'currency = "USD"\nlarge_transaction = 20000\n')
    feats = {f.name: f for f in catalogue(d)}
    assert feats["txn_large_inflow_count_12m"].label == "Receipts of USD 20,000 or more, last 12 months"
    assert feats["txn_large_outflow_count_12m"].description == \
        "Number of single payments of at least USD 20,000 in the last 365 days."
    assert feats["txn_large_inflow_count_3m"].label_zh == "近3个月20,000 USD及以上入账笔数"
    assert feats["txn_large_inflow_count_3m"].reason_zh == {f.name: f for f in CATALOGUE}[
        "txn_large_inflow_count_3m"].reason_zh  # the reason names no amount
    for f in feats.values():
        said = " ".join(str(getattr(f, k)) for k in ("label", "description", "reason", "label_zh", "reason_zh"))
        assert "CNY" not in said and "元" not in said, f.name
        if f.name in LARGE:
            assert "s.amount >= 20000" in f.sql and "50000" not in f.sql
    # everything but the texts and the large-transaction conditions is the catalogue's
    shipped = {f.name: f for f in CATALOGUE}
    for name, f in feats.items():
        same = {k: v for k, v in dataclasses.asdict(f).items() if k not in ("label", "description", "label_zh", "sql")}
        assert same == {k: v for k, v in dataclasses.asdict(shipped[name]).items() if k in same}, name
        if name not in LARGE:
            assert f.sql == shipped[name].sql, name


@pytest.mark.parametrize("amount, said", [(100_000, "近12个月10万元及以上入账笔数"), (12_500, "近12个月12,500元及以上入账笔数"),
                                          (7_500.5, "近12个月7,500.5元及以上入账笔数")])
def test_chinese_labels_of_other_thresholds_in_yuan(tmp_path, amount, said):
    d = _dictionary(tmp_path, f"large_transaction = {amount}\n")
    assert {f.name: f for f in catalogue(d)}["txn_large_inflow_count_12m"].label_zh == said


def test_the_counts_use_the_bank_threshold(small_world, tmp_path):
    """Counted against pandas over the raw transactions: receipts of the threshold or more in [d - 365, d)."""
    tables = small_world.tables
    loans = tables["loans"].sort_values("loan_id").head(300)
    txn = tables["transactions"]
    threshold = float(np.quantile(txn["amount"], 0.9))  # a threshold the world's amounts straddle
    d = _dictionary(tmp_path, f'currency = "USD"\nlarge_transaction = {threshold!r}\n')
    feats = [f for f in catalogue(d) if f.name in LARGE]
    got = build_features(tables, loans, features=feats).set_index("loan_id")
    shipped = build_features(tables, loans, features=[f for f in CATALOGUE if f.name in LARGE]).set_index("loan_id")
    ts = pd.to_datetime(txn["ts"])
    for loan in loans.itertuples():
        dd = pd.Timestamp(loan.application_date)
        mine = txn[(txn["enterprise_id"] == loan.enterprise_id) & (ts < dd)]
        mts = pd.to_datetime(mine["ts"])
        big = mine["amount"] >= threshold
        expected = {
            "txn_large_inflow_count_3m": int((big & (mine["direction"] == "in") & (mts >= dd - pd.Timedelta(days=90))).sum()),
            "txn_large_inflow_count_12m": int((big & (mine["direction"] == "in") & (mts >= dd - pd.Timedelta(days=365))).sum()),
            "txn_large_outflow_count_12m": int((big & (mine["direction"] == "out") & (mts >= dd - pd.Timedelta(days=365))).sum()),
        }
        assert {n: int(got.at[loan.loan_id, n]) for n in LARGE} == expected, loan.loan_id
    assert threshold != 50_000 and (got["txn_large_inflow_count_12m"] != shipped["txn_large_inflow_count_12m"]).any()


@pytest.mark.parametrize("value, message", [
    ("-5", "large_transaction: expected a positive amount in CNY, got -5"),
    ("0", "large_transaction: expected a positive amount in CNY, got 0"),
    ('"lots"', "large_transaction: expected a number, got 'lots'"),
    ("inf", "large_transaction: expected a positive amount in CNY, got inf"),
])
def test_a_bad_threshold_is_one_line(tmp_path, value, message):
    with pytest.raises(ConfigError, match=message) as info:
        _dictionary(tmp_path, f"large_transaction = {value}\n")
    assert "\n" not in str(info.value) and "dictionary.toml" in str(info.value)


def test_the_threshold_round_trips():
    import tomllib

    d = parse_dictionary(tomllib.loads('currency = "USD"\nlarge_transaction = 12500.5\n'), defaults=default_dictionary())
    again = parse_dictionary(tomllib.loads(dictionary_toml(d)))
    assert again == d and again.large_transaction == 12_500.5
