"""The synthetic world: exact schema, integrity, determinism and the risk signal it must carry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from creditmodel.data import synthetic
from creditmodel.data.contracts import validate_tables
from creditmodel.data.io import read_tables
from creditmodel.data.schema import TABLES
from creditmodel.data.synthetic import (
    PARTITIONED_TABLES,
    TRUTH_DIR,
    TRUTH_FILE,
    World,
    generate_world,
    write_world,
    write_world_partitioned,
)
from creditmodel.exceptions import ConfigError
from creditmodel.outputs import LEDGER

N_BIG = 3000
SEED = 0
WINDOW = pd.DateOffset(months=12)


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(N_BIG, seed=SEED)


@pytest.fixture(scope="module")
def small() -> World:
    return generate_world(120, seed=7)


@pytest.fixture(scope="module")
def labelled(world: World) -> pd.DataFrame:
    """Loans whose 12-month performance window is complete at extraction, with their truth."""
    loans = world.tables["loans"].merge(world.truth, on="loan_id", validate="one_to_one")
    return loans[loans["application_date"] <= world.extraction_date - WINDOW].reset_index(drop=True)


def _expected_dtype(kind: str, nullable: bool):
    if kind == "int":
        return pd.Int64Dtype() if nullable else np.dtype("int64")
    return {
        "float": np.dtype("float64"),
        "str": pd.Series(["x"]).dtype,
        "date": np.dtype("datetime64[ns]"),
        "timestamp": np.dtype("datetime64[ns]"),
        "bool": np.dtype("bool"),
    }[kind]


# --- determinism --------------------------------------------------------------------------------


def test_same_seed_gives_identical_frames(small: World) -> None:
    again = generate_world(120, seed=7)
    assert list(again.tables) == list(small.tables)
    for name in TABLES:
        pd.testing.assert_frame_equal(small.tables[name], again.tables[name], check_exact=True)
    pd.testing.assert_frame_equal(small.truth, again.truth, check_exact=True)
    assert again.extraction_date == small.extraction_date == pd.Timestamp("2025-06-30")


def test_different_seed_gives_different_world(small: World) -> None:
    other = generate_world(120, seed=8)
    assert not small.tables["transactions"]["amount"].equals(other.tables["transactions"]["amount"])
    assert not small.tables["loans"]["application_date"].equals(other.tables["loans"]["application_date"])
    assert not small.truth["true_pd"].equals(other.truth["true_pd"])


# --- schema -------------------------------------------------------------------------------------


def test_tables_have_exactly_the_schema_columns_and_dtypes(world: World) -> None:
    assert list(world.tables) == list(TABLES)
    for name, table in TABLES.items():
        df = world.tables[name]
        assert list(df.columns) == table.column_names, name
        assert len(df) > 0, name
        assert isinstance(df.index, pd.RangeIndex), name
        for col in table.columns:
            expected = _expected_dtype(col.kind, col.nullable)
            assert df[col.name].dtype == expected, (name, col.name, df[col.name].dtype, expected)


def test_values_respect_nullability_categories_and_bounds(world: World) -> None:
    for name, table in TABLES.items():
        df = world.tables[name]
        for col in table.columns:
            s = df[col.name]
            if not col.nullable:
                assert not s.isna().any(), (name, col.name)
            v = s.dropna()
            if col.categories is not None:
                assert set(v.unique()) <= set(col.categories), (name, col.name)
            if col.min_value is not None:
                assert (v >= col.min_value).all(), (name, col.name, v.min())
            if col.max_value is not None:
                assert (v <= col.max_value).all(), (name, col.name, v.max())
            if col.kind == "date":
                assert (v == v.dt.normalize()).all(), (name, col.name)
    ent = world.tables["enterprises"]
    assert ent["owner_birth_year"].dropna().between(1955, 1998).all()
    assert 0.02 < ent["owner_birth_year"].isna().mean() < 0.09
    assert (world.truth.columns.tolist() == ["loan_id", "true_pd", "defaulted"])
    assert world.truth["true_pd"].dtype == np.float64 and world.truth["defaulted"].dtype == bool
    assert world.truth["true_pd"].between(0, 1).all()


def test_mix_of_legal_forms_and_industries(world: World) -> None:
    ent = world.tables["enterprises"]
    share = ent["legal_form"].value_counts(normalize=True)
    assert share["sole_trader"] == pytest.approx(0.50, abs=0.04)
    assert share["farmer_household"] == pytest.approx(0.25, abs=0.04)
    assert share["limited_company"] == pytest.approx(0.25, abs=0.04)
    main = ent["industry"].isin(["bamboo_products", "furniture", "agri_processing", "commerce_trade"])
    assert main.mean() == pytest.approx(0.70, abs=0.04)
    # statements: limited companies mostly have them, about half of the others have none
    has_fs = ent["enterprise_id"].isin(world.tables["financial_statements"]["enterprise_id"])
    by_form = has_fs.groupby(ent["legal_form"]).mean()
    assert by_form["limited_company"] > 0.8
    assert 0.35 < by_form["sole_trader"] < 0.65


# --- integrity ----------------------------------------------------------------------------------


def test_keys_unique_and_foreign_keys_resolve(world: World) -> None:
    for name, table in TABLES.items():
        df = world.tables[name]
        if table.key:
            assert not df.duplicated(list(table.key)).any(), (name, table.key)
        for col, target in table.foreign_keys.items():
            t_name, t_col = target.split(".")
            assert df[col].isin(world.tables[t_name][t_col]).all(), (name, col, target)
    assert world.truth["loan_id"].is_unique
    assert set(world.truth["loan_id"]) == set(world.tables["loans"]["loan_id"])


def test_nothing_dated_after_extraction(world: World) -> None:
    cutoff = world.extraction_date
    for name, table in TABLES.items():
        for col in table.columns:
            if col.kind in ("date", "timestamp"):
                assert (world.tables[name][col.name].dropna() <= cutoff).all(), (name, col.name)
    assert (world.tables["transactions"]["ts"] < cutoff).all()
    loans = world.tables["loans"]
    assert (loans["application_date"] <= cutoff - pd.DateOffset(months=1)).all()
    assert (loans["application_date"] >= pd.Timestamp("2019-01-01")).all()
    ent = world.tables["enterprises"]
    assert (ent["registration_date"] <= pd.Timestamp("2018-01-01")).all()


def test_event_rules(world: World) -> None:
    ev = world.tables["registration_events"]
    penalty = ev["kind"] == "penalty"
    assert (ev.loc[penalty, "amount"] > 0).all()
    assert ev.loc[~penalty, "amount"].isna().all()
    cases = world.tables["court_cases"]
    closed = cases["closed_date"].notna()
    assert (cases.loc[closed, "closed_date"] > cases.loc[closed, "filed_date"]).all()
    assert 0 < (~closed).sum() < len(cases)


def test_joint_groups_are_three_to_five_loans_of_different_firms_in_one_month(world: World) -> None:
    loans = world.tables["loans"]
    joint = loans["product"] == "joint_guarantee_group"
    assert (loans.loc[joint, "guarantee_type"] == "joint_group").all()
    assert (loans.loc[~joint, "guarantee_type"] != "joint_group").all()
    assert loans.loc[joint, "group_id"].notna().all() and loans.loc[~joint, "group_id"].isna().all()
    g = loans[joint].groupby("group_id").agg(
        size=("loan_id", "size"),
        firms=("enterprise_id", "nunique"),
        months=("application_date", lambda s: s.dt.to_period("M").nunique()),
    )
    assert g["size"].between(3, 5).all()
    assert (g["firms"] == g["size"]).all()
    assert (g["months"] == 1).all()


# --- the signal ---------------------------------------------------------------------------------


def test_default_rate_of_labelled_loans(labelled: pd.DataFrame) -> None:
    assert len(labelled) > 4000
    rate = labelled["defaulted"].mean()
    assert 0.015 <= rate <= 0.08, rate


def test_downturn_year_defaults_more_than_2021(world: World, labelled: pd.DataFrame) -> None:
    loans = world.tables["loans"].merge(world.truth, on="loan_id")
    year = loans["application_date"].dt.year
    pd_2021, pd_2023 = loans.loc[year == 2021, "true_pd"].mean(), loans.loc[year == 2023, "true_pd"].mean()
    assert pd_2023 > 1.5 * pd_2021, (pd_2021, pd_2023)
    lab_year = labelled["application_date"].dt.year
    dr_2021 = labelled.loc[lab_year == 2021, "defaulted"].mean()
    dr_2023 = labelled.loc[lab_year == 2023, "defaulted"].mean()
    assert dr_2023 > dr_2021 + 0.01, (dr_2021, dr_2023)


def test_oracle_auc(labelled: pd.DataFrame) -> None:
    auc = roc_auc_score(labelled["defaulted"], labelled["true_pd"])
    assert auc > 0.7, auc


def test_pd_ordered_by_guarantee(world: World) -> None:
    loans = world.tables["loans"].merge(world.truth, on="loan_id")
    by_g = loans.groupby("guarantee_type")["true_pd"].mean()
    assert by_g["collateral"] < by_g["third_party"] < by_g["unsecured"]


def test_realised_default_matches_repayments(world: World, labelled: pd.DataFrame) -> None:
    rep = world.tables["repayments"].merge(labelled[["loan_id", "application_date"]], on="loan_id")
    within = rep[rep["date"] <= rep["application_date"] + WINDOW]
    bad = within.groupby("loan_id")["days_past_due"].max().ge(90)
    bad = bad.reindex(labelled["loan_id"], fill_value=False)
    np.testing.assert_array_equal(bad.to_numpy(), labelled["defaulted"].to_numpy())
    # every labelled loan has its min(term, 12) monthly rows inside the window
    rows = within.groupby("loan_id").size().reindex(labelled["loan_id"]).to_numpy()
    np.testing.assert_array_equal(rows, np.minimum(labelled["term_months"].to_numpy(), 12))
    # some good loans are briefly late, and never 30+ in their first year
    good = within[~within["loan_id"].isin(labelled.loc[labelled["defaulted"], "loan_id"])]
    assert good["days_past_due"].between(1, 29).any()
    assert good["days_past_due"].max() < 30


def test_repayment_schedule_covers_term_or_extraction(world: World) -> None:
    loans = world.tables["loans"]
    rep = world.tables["repayments"].merge(loans[["loan_id", "application_date", "term_months"]], on="loan_id")
    expected_last = np.minimum(
        loans["term_months"].to_numpy(),
        ((world.extraction_date.year - loans["application_date"].dt.year) * 12
         + world.extraction_date.month - loans["application_date"].dt.month).to_numpy(),
    )
    counts = rep.groupby("loan_id").size().reindex(loans["loan_id"]).to_numpy()
    # rows k = 1..term with date <= extraction: at most one month off the calendar difference
    assert np.all(np.abs(counts - expected_last) <= 1)
    assert np.all(counts <= loans["term_months"].to_numpy())


def test_risk_shows_in_behaviour(world: World) -> None:
    """Firms whose loans carry higher true PD take more cash and fewer POS receipts, lever more."""
    loans = world.tables["loans"].merge(world.truth, on="loan_id")
    firm_pd = loans.groupby("enterprise_id")["true_pd"].mean()
    tx = world.tables["transactions"]
    inflow = tx[tx["direction"] == "in"]
    cash_share = (inflow["channel"] == "cash").groupby(inflow["enterprise_id"]).mean()
    joined = pd.concat([firm_pd, cash_share.rename("cash")], axis=1, join="inner")
    assert spearmanr(joined["true_pd"], joined["cash"]).statistic > 0.4
    fs = world.tables["financial_statements"]
    lev = (fs["liabilities"] / fs["assets"]).groupby(fs["enterprise_id"]).mean().rename("lev")
    joined = pd.concat([firm_pd, lev], axis=1, join="inner")
    assert spearmanr(joined["true_pd"], joined["lev"]).statistic > 0.4
    cases = world.tables["court_cases"].groupby("enterprise_id").size()
    has_case = firm_pd.index.isin(cases.index)
    assert firm_pd[has_case].mean() > 1.5 * firm_pd[~has_case].mean()


# --- writing ------------------------------------------------------------------------------------


def test_write_world_writes_every_table_and_truth(small: World, tmp_path) -> None:
    out = write_world(small, tmp_path / "world")
    assert sorted(p.name for p in out.glob("*.parquet")) == sorted(f"{t}.parquet" for t in TABLES)
    assert (out / TRUTH_DIR / TRUTH_FILE).is_file()
    for name in TABLES:
        back = pd.read_parquet(out / f"{name}.parquet")
        assert list(back.columns) == TABLES[name].column_names
        assert len(back) == len(small.tables[name])
    loans = pd.read_parquet(out / "loans.parquet")
    pd.testing.assert_frame_equal(loans, small.tables["loans"], check_dtype=False)
    truth = pd.read_parquet(out / TRUTH_DIR / TRUTH_FILE)
    pd.testing.assert_frame_equal(truth, small.truth)
    assert sorted(p.name for p in tmp_path.iterdir()) == [LEDGER, "world"]  # no temporary directory left


def test_write_world_accepts_empty_dir_and_refuses_non_empty(small: World, tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (write_world(small, empty) / "loans.parquet").is_file()
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty: it holds 'keep.txt', which creditmodel did not write"):
        write_world(small, full)
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [LEDGER, "empty", "full"]


# --- blocks, chunks and the partitioned writer -----------------------------------------------------

# A world with many small blocks, so that block and chunk boundaries are crossed at test sizes.
TINY_BLOCK = 100
MULTI = {"n_enterprises": 460, "seed": 3, "start": "2024-01-01"}


@pytest.fixture
def tiny_blocks(monkeypatch) -> None:
    monkeypatch.setattr(synthetic, "BLOCK_ENTERPRISES", TINY_BLOCK)


def _read_world(out) -> World:
    tables = read_tables(out)
    truth = pd.read_parquet(out / TRUTH_DIR / TRUTH_FILE)
    return World(tables=tables, truth=truth, extraction_date=pd.Timestamp("2025-06-30"))


def _assert_same_world(a: World, b: World) -> None:
    assert list(a.tables) == list(b.tables) == list(TABLES)
    for name in TABLES:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name], check_exact=True, obj=name)
    pd.testing.assert_frame_equal(a.truth, b.truth, check_exact=True)


def test_block_sizes() -> None:
    assert synthetic._block_sizes(50, 10_000) == (50,)
    assert synthetic._block_sizes(14_999, 10_000) == (14_999,)  # < 1.5 blocks: one stream
    assert synthetic._block_sizes(15_000, 10_000) == (7_500, 7_500)
    assert synthetic._block_sizes(1_000_000, 10_000) == (10_000,) * 100
    sizes = synthetic._block_sizes(1_234_567, 10_000)
    assert len(sizes) == 123 and sum(sizes) == 1_234_567 and max(sizes) - min(sizes) <= 1


def test_single_block_world_is_the_single_stream_world(small: World) -> None:
    """Worlds of < 1.5 blocks draw from default_rng(seed) exactly as before blocks existed."""
    assert synthetic._block_sizes(120, synthetic.BLOCK_ENTERPRISES) == (120,)
    assert {n: len(df) for n, df in small.tables.items()} == {
        "enterprises": 120, "registration_events": 94, "court_cases": 29, "environment_checks": 693,
        "transactions": 201793, "financial_statements": 432, "loans": 236, "repayments": 2910,
        "collateral": 83, "guarantees": 62,  # from their own stream, added later
        # life after the loan (added later, from its own random stream: the counts above unchanged)
        "officers": 5, "loan_accounts": 236, "balances": 2910,
    }
    tx = small.tables["transactions"]
    assert tx["amount"].sum() == pytest.approx(4243983365.9, rel=1e-12)
    assert int(tx["counterparty"].sum()) == 202126202564
    assert small.truth["true_pd"].sum() == pytest.approx(9.44, rel=1e-12)


def test_multi_block_world_keeps_ids_unique_and_passes_the_contracts(tiny_blocks) -> None:
    world = generate_world(**MULTI)
    assert len(synthetic._block_sizes(460, TINY_BLOCK)) == 5
    ent, loans = world.tables["enterprises"], world.tables["loans"]
    np.testing.assert_array_equal(ent["enterprise_id"], np.arange(1, 461))
    np.testing.assert_array_equal(loans["loan_id"], np.arange(1, len(loans) + 1))
    np.testing.assert_array_equal(world.tables["court_cases"]["case_id"],
                                  np.arange(1, len(world.tables["court_cases"]) + 1))
    # every block contributes loans and groups, and their ids run on
    block_of = (loans["enterprise_id"] - 1) // 92
    assert block_of.nunique() == 5
    groups = loans.dropna(subset=["group_id"]).groupby("group_id").agg(
        size=("loan_id", "size"), firms=("enterprise_id", "nunique"),
        blocks=("enterprise_id", lambda s: ((s - 1) // 92).nunique()))
    assert groups.index.min() == 1 and groups.index.max() == len(groups)
    assert groups["size"].between(3, 5).all() and (groups["firms"] == groups["size"]).all()
    assert (groups["blocks"] == 1).all()  # joint-guarantee groups stay inside a block
    # counterparty pools of different enterprises never overlap
    tx = world.tables["transactions"]
    span = tx.groupby("enterprise_id")["counterparty"].agg(["min", "max"]).sort_index()
    assert (span["min"].to_numpy()[1:] > span["max"].to_numpy()[:-1]).all()
    validated = validate_tables(world.tables, extraction_date=world.extraction_date)
    assert {n: len(df) for n, df in validated.items()} == {n: len(df) for n, df in world.tables.items()}
    # blocks are independent streams: no two blocks repeat each other's draws
    reg = ent["registration_date"].to_numpy().reshape(5, 92)
    assert len({row.tobytes() for row in reg}) == 5
    assert (reg[0] != reg[1]).mean() > 0.9


def test_partitioned_world_equals_in_memory_world_for_any_chunking(tiny_blocks, tmp_path) -> None:
    world = generate_world(**MULTI)
    seen = []
    out = write_world_partitioned(tmp_path / "w200", **MULTI, chunk_enterprises=200,
                                  progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]  # 5 blocks of 92, two blocks a chunk
    for name in PARTITIONED_TABLES:
        assert sorted(p.name for p in (out / name).iterdir()) == [
            "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    small_tables = [t for t in TABLES if t not in PARTITIONED_TABLES]
    assert sorted(p.name for p in out.glob("*.parquet")) == sorted(f"{t}.parquet" for t in small_tables)
    assert (out / TRUTH_DIR / TRUTH_FILE).is_file()
    _assert_same_world(_read_world(out), world)
    # chunks smaller than a block are whole blocks; the world does not depend on the chunking
    one = write_world_partitioned(tmp_path / "w1", **MULTI, chunk_enterprises=1)
    assert len(list((one / "transactions").iterdir())) == 5
    _assert_same_world(_read_world(one), world)
    assert sorted(p.name for p in tmp_path.iterdir()) == [LEDGER, "w1", "w200"]  # no temporary directory


def test_partitioned_world_is_deterministic_and_seeded(tmp_path) -> None:
    kwargs = {"n_enterprises": 60, "start": "2024-06-01"}
    a = _read_world(write_world_partitioned(tmp_path / "a", seed=5, **kwargs))
    b = _read_world(write_world_partitioned(tmp_path / "b", seed=5, **kwargs))
    _assert_same_world(a, b)
    _assert_same_world(a, generate_world(seed=5, **kwargs))
    c = _read_world(write_world_partitioned(tmp_path / "c", seed=6, **kwargs))
    assert not a.tables["transactions"]["amount"].equals(c.tables["transactions"]["amount"])


def test_partitioned_writer_refuses_non_empty_dir_and_leaves_nothing_on_failure(tmp_path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty: it holds 'keep.txt'"):
        write_world_partitioned(full, 60, start="2024-06-01")
    assert [p.name for p in full.iterdir()] == ["keep.txt"]

    def fail(done: int, total: int) -> None:
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        write_world_partitioned(tmp_path / "out", 60, start="2024-06-01", progress=fail)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]
    with pytest.raises(ConfigError, match="chunk_enterprises"):
        write_world_partitioned(tmp_path / "out", 60, chunk_enterprises=0)
    with pytest.raises(ConfigError, match="n_enterprises"):
        write_world_partitioned(tmp_path / "out", 10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]


# --- arguments ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_enterprises": 49}, "n_enterprises=49"),
        ({"n_enterprises": 10.5}, "n_enterprises"),
        ({"start": "2025-06-30"}, "start"),
        ({"start": "2026-01-01"}, "start"),
        ({"start": "not a date"}, "start"),
        ({"extraction_date": "2018-12-31"}, "start"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments_raise_config_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        generate_world(**kwargs)
    assert "\n" not in str(info.value)
    assert "expected" in str(info.value)


def test_security_tables_leave_every_other_table_bit_identical():
    """Collateral and guarantors come from their own stream: the tables that existed before keep their
    content hashes (recorded from the generator before the security tables were added)."""
    from creditmodel.data.fingerprint import fingerprints

    world = generate_world(400, seed=7)
    fp = {k: v["sha256"][:12] for k, v in fingerprints(world.tables).items()}
    assert fp == {**fp, "court_cases": "228aae89ed61", "enterprises": "c5816f15b672", "environment_checks": "6c9414cc568d",
                  "financial_statements": "f22880e40202", "loans": "2de09daab5b2", "registration_events": "f206efb454bb",
                  "repayments": "ec3c2b8a52ed", "transactions": "19104024c311"}
    loans, col, gua = world.tables["loans"], world.tables["collateral"], world.tables["guarantees"]
    assert set(col["loan_id"]) == set(loans.loc[loans["guarantee_type"] == "collateral", "loan_id"])
    assert (col["value"] > 0).all() and set(col["collateral_type"]) <= {
        "land_use_right", "building", "equipment", "deposit_pledge", "forest_right"}
    owner = loans.set_index("loan_id")["enterprise_id"]
    assert set(gua["loan_id"]) <= set(loans.loc[loans["guarantee_type"] == "third_party", "loan_id"])
    assert (gua["guarantor_id"].to_numpy() > owner.loc[gua["loan_id"]].to_numpy()).all()  # no circles
    assert gua["guarantor_id"].isin(world.tables["enterprises"]["enterprise_id"]).all()


# ---------------------------------------------------------------------------- life after the loan


def test_balances_follow_the_schedule_and_interest_is_the_rate_on_the_opening_balance(small: World) -> None:
    loans = small.tables["loans"].set_index("loan_id")
    bal = small.tables["balances"]
    rep = small.tables["repayments"]
    assert (bal[["loan_id", "date"]].to_numpy() == rep[["loan_id", "date"]].to_numpy()).all()  # row for row
    defaulted = small.truth.set_index("loan_id")["defaulted"]
    for loan_id, rows in bal.groupby("loan_id"):
        loan = loans.loc[loan_id]
        principal = loan.amount / loan.term_months
        opening = np.r_[loan.amount, rows["balance"].to_numpy()[:-1]]
        dpd = rep.loc[rows.index, "days_past_due"].to_numpy()
        expected = np.where(dpd >= 90, 0.0, np.round(opening * loan.rate / 12, 2))
        # the opening balance is the unrounded one: allow a cent
        np.testing.assert_allclose(rows["interest"], expected, atol=0.011)
        if not defaulted[loan_id]:
            k = np.arange(1, len(rows) + 1)
            np.testing.assert_allclose(rows["balance"], np.round(loan.amount - principal * k, 2), atol=0.011)
    last = bal.groupby("loan_id")["balance"].last()
    finished = [i for i in last.index if not defaulted[i]
                and len(bal[bal.loan_id == i]) == loans.loc[i, "term_months"]]
    assert finished and (last[finished].abs() < 0.011).all()


def test_write_offs_and_recoveries_only_for_defaults_and_never_after_extraction(small: World) -> None:
    acc = small.tables["loan_accounts"].merge(small.truth, on="loan_id")
    wo = acc[acc["written_off_date"].notna()]
    assert len(wo) > 0 and wo["defaulted"].all()
    assert (wo["written_off_date"] <= small.extraction_date).all()
    rec = acc[acc["recovered_amount"].notna()]
    assert (rec["recovered_amount"] <= rec["written_off_amount"]).all()
    assert (rec["recovered_date"] > rec["written_off_date"]).all()
    bal = small.tables["balances"].merge(wo[["loan_id", "written_off_date"]], on="loan_id")
    assert (bal.loc[bal["date"] >= bal["written_off_date"], "balance"] == 0).all()  # off the book


def test_officers_serve_their_industry_team(world: World) -> None:
    from creditmodel.data.dictionary import default_dictionary

    d = default_dictionary()
    officers = world.tables["officers"]
    assert set(officers["team"]) == set(d.vocabulary("industry_team"))  # every team staffed
    loans = (world.tables["loans"].merge(world.tables["loan_accounts"], on="loan_id")
             .merge(officers, on="officer_id").merge(world.tables["enterprises"], on="enterprise_id"))
    assert (loans["industry"].map(d.industry_teams) == loans["team"]).all()
    assert loans.groupby("enterprise_id")["officer_id"].nunique().max() == 1  # one officer per borrower
    assert validate_tables(world.tables, extraction_date=world.extraction_date)["balances"].shape == \
        world.tables["balances"].shape
