"""The Taiwan credit-card adapter: canonical tables, labels equal to the source's flag, a full pipeline run.

Uses the public UCI file under ../shared/data/ (never copied into the project); skipped when absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from conftest import mlflow_store
from creditmodel.data.adapters.taiwan import (
    DECISION_DATE,
    EXTRACTION_DATE,
    SCORED_LOAN_OFFSET,
    taiwan_tables,
    write_taiwan,
)
from creditmodel.data.contracts import validate_tables
from creditmodel.data.io import load_tables
from creditmodel.features.labels import default_labels

CSV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "taiwan_credit_card" / "UCI_Credit_Card.csv"

pytestmark = pytest.mark.skipif(not CSV.is_file(), reason=f"public Taiwan data not found at {CSV}")

ABSENT = ["court_cases", "environment_checks", "financial_statements", "registration_events"]


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return pd.read_csv(CSV).set_index("ID")


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return taiwan_tables(CSV)


@pytest.fixture(scope="module")
def taiwan_run(tmp_path_factory):
    from creditmodel.config import build_config
    from creditmodel.pipeline import run_pipeline

    root = tmp_path_factory.mktemp("taiwan")
    data_dir = write_taiwan(CSV, root / "data")
    config = build_config({"data_dir": str(data_dir), "output_dir": str(root / "out"),
                           "split": {"method": "holdout"}, "extraction_date": "2006-10-01",
                           "label": {"first_decision_date": "2005-10-01"}, "segments": {"enabled": False}})
    return run_pipeline(config, tracking_uri=mlflow_store(root / "mlflow.db"))


def test_tables_pass_the_contracts_and_round_trip(tables, tmp_path):
    assert set(tables) == {"enterprises", "loans", "repayments", "transactions"}
    again = validate_tables(tables, extraction_date=EXTRACTION_DATE)
    for name, df in tables.items():
        pd.testing.assert_frame_equal(again[name], df)
    loaded = load_tables(write_taiwan(CSV, tmp_path / "tw"), extraction_date=EXTRACTION_DATE)
    assert {n: len(df) for n, df in loaded.items()} == {n: len(df) for n, df in tables.items()}


def test_row_counts_and_keys(tables, raw):
    ent, loans, rep, txn = (tables[n] for n in ("enterprises", "loans", "repayments", "transactions"))
    assert len(ent) == 30_000 and ent["enterprise_id"].is_unique
    assert len(loans) == 60_000 and loans["loan_id"].is_unique
    assert (loans.groupby("enterprise_id").size() == 2).all()
    scored = loans[loans["application_date"] == DECISION_DATE]
    assert len(scored) == 30_000 and (scored["loan_id"] >= SCORED_LOAN_OFFSET).all()
    bad = int(raw["default.payment.next.month"].sum())
    assert len(rep) == 6 * 30_000 + 3 * bad + 12 * (30_000 - bad)
    # one inflow per client-month with PAY_AMT > 0, one outflow per client-month with BILL_AMT > 0
    n_in = int((raw[[f"PAY_AMT{k}" for k in range(1, 7)]] > 0).to_numpy().sum())
    n_out = int((raw[[f"BILL_AMT{k}" for k in range(1, 7)]] > 0).to_numpy().sum())
    assert (txn["direction"] == "in").sum() == n_in and (txn["direction"] == "out").sum() == n_out
    assert txn["ts"].between(pd.Timestamp("2005-04-01"), pd.Timestamp("2005-10-01"), inclusive="left").all()


def test_history_rows_reproduce_the_source_by_hand(tables, raw):
    client = 2  # PAY_0..PAY_6 = -1, 2, 0, 0, 0, 2; BILL_AMT1 = 2682, PAY_AMT2 = 1000
    rep = tables["repayments"].set_index(["loan_id", "date"])["days_past_due"]
    assert rep.loc[client].tolist() == [60, 0, 0, 0, 60, 0]  # April .. September, month ends
    assert rep.loc[(client, pd.Timestamp("2005-09-30"))] == 0
    assert rep.loc[(client, pd.Timestamp("2005-08-31"))] == 60
    txn = tables["transactions"]
    mine = txn[txn["enterprise_id"] == client]
    mine = mine.set_index([mine["direction"], mine["ts"].dt.month])["amount"]
    assert mine.loc[("out", 9)] == raw.loc[client, "BILL_AMT1"] == 2682
    assert mine.loc[("in", 8)] == raw.loc[client, "PAY_AMT2"] == 1000
    assert ("in", 9) not in mine.index  # PAY_AMT1 = 0: no row
    assert tables["enterprises"].set_index("enterprise_id").loc[client, "owner_birth_year"] == 2005 - 26


def test_label_of_the_scored_loans_equals_the_source_flag(tables, raw):
    labels = default_labels(tables["loans"], tables["repayments"], EXTRACTION_DATE)
    scored = labels[labels.index >= SCORED_LOAN_OFFSET]
    assert scored.notna().all() and len(scored) == 30_000
    flag = raw["default.payment.next.month"].reindex(scored.index - SCORED_LOAN_OFFSET).to_numpy()
    np.testing.assert_array_equal(scored.to_numpy(dtype=int), flag)
    assert scored.mean() == pytest.approx(0.2212, abs=5e-4)  # 6,636 / 30,000


@pytest.mark.slow  # the whole pipeline on the 30,000 public loans
def test_pipeline_runs_and_reports_the_missing_sources(taiwan_run):
    assert taiwan_run.missing_sources == ABSENT
    assert (taiwan_run.bundle_dir / "model.txt").is_file()


def test_hold_out_discrimination(taiwan_run):
    # Only the scored applications are modelling rows (label.first_decision_date); the card accounts
    # are history. Published levels: about 0.78 (gradient boosting) and 0.765 (logistic regression).
    frame = pd.read_parquet(taiwan_run.features_path)
    assert (frame["loan_id"] >= SCORED_LOAN_OFFSET).all() and len(frame) == 30_000
    oot = frame[frame["split"] == "oot"]
    assert len(oot) > 5_000
    cols = list(taiwan_run.models.lightgbm.schema_.names)
    auc = {k: roc_auc_score(oot["default"], taiwan_run.models.pd(k, oot[cols])) for k in ("lightgbm", "scorecard")}
    m = taiwan_run.metrics.set_index(["model", "split"])
    for k in auc:
        assert m.loc[(k, "oot"), "auc"] == pytest.approx(auc[k], abs=1e-12)
    brier = brier_score_loss(oot["default"], taiwan_run.models.pd("lightgbm", oot[cols]))
    assert auc["lightgbm"] > 0.75 and auc["scorecard"] > 0.73, auc
    assert auc["lightgbm"] > auc["scorecard"]
    assert brier < 0.15
