"""`creditmodel monitor` on the demo run: re-rating as of a date, outputs through the safe writer."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading

import pandas as pd
import pytest

from creditmodel.cli import main
from creditmodel.data.io import read_tables
from creditmodel.features.catalogue import CATALOGUE
from creditmodel.monitoring.book import live_book


def test_monitor_writes_rerating_watch_list_npl_and_eva(monitored, world_dir):
    names = {p.name for p in monitored.iterdir() if not p.name.startswith(".")}
    assert {"rerating.parquet", "migration.parquet", "watch_list.parquet", "watch_list.csv", "npl_by_team.parquet",
            "npl_by_officer.parquet", "npl_by_year.parquet", "eva_loans.parquet", "eva_by_officer.parquet",
            "eva_by_team.parquet", "summary.json"} <= names
    s = json.loads((monitored / "summary.json").read_text())
    rated = pd.read_parquet(monitored / "rerating.parquet")
    tables = read_tables(world_dir)
    assert len(rated) == s["loans"] == len(live_book(tables, "2023-09-30"))
    assert s["share_downgraded_2plus"] == pytest.approx((rated["notches"] >= 2).mean())
    # the migration matrix counts every loan once, and its diagonal are the loans that kept their grade
    m = pd.read_parquet(monitored / "migration.parquet").set_index("grade_origination")
    assert int(m.to_numpy().sum()) == len(rated)
    assert sum(m.loc[g, g] for g in m.index) == int((rated["notches"] == 0).sum())
    moved = rated[rated["notches"] != 0]
    assert moved["reason_1"].notna().all()  # every move comes with its reasons
    # and in Chinese, as the officers read them: the catalogue's Chinese reason of the same feature
    zh = {f.name: f.reason_zh for f in CATALOGUE}
    for k in (1, 2, 3):
        said = moved.dropna(subset=[f"reason_{k}_feature"])
        assert said[f"reason_{k}_zh"].notna().all() and len(said) > 0
        assert all(t.startswith(zh[f] + "：") for t, f in zip(said[f"reason_{k}_zh"], said[f"reason_{k}_feature"]))
    assert rated.loc[rated["notches"] == 0, "reason_1_zh"].isna().all()
    eva = pd.read_parquet(monitored / "eva_loans.parquet")
    by_team = pd.read_parquet(monitored / "eva_by_team.parquet")
    assert round(by_team["eva"].sum(), 2) == round(eva["eva"].sum(), 2) == round(s["eva_total"], 2)
    wl = pd.read_csv(monitored / "watch_list.csv")
    assert len(wl) == len(pd.read_parquet(monitored / "watch_list.parquet"))


@pytest.mark.parametrize("as_of, message", [
    ("2010-01-01", "--as-of 2010-01-01: outside the data"),
    ("2023-13-01", "--as-of '2023-13-01': expected a date"),
])
def test_bad_as_of_is_one_line_and_writes_nothing(demo_run, world_dir, tmp_path, capsys, as_of, message):
    out = tmp_path / "mon"
    assert main(["monitor", "--bundle", str(demo_run["result"].bundle_dir), "--data", str(world_dir),
                 "--as-of", as_of, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists()


@pytest.mark.parametrize("drop, message", [
    ("balances", "table balances: missing"),
    ("transactions", "the data cannot provide it"),
])
def test_data_without_what_monitoring_needs_is_one_line(demo_run, world_dir, tmp_path, capsys, drop, message):
    data = tmp_path / "data"
    shutil.copytree(world_dir, data, ignore=shutil.ignore_patterns(drop, f"{drop}.parquet", ".creditmodel*"))
    out = tmp_path / "mon"
    assert main(["monitor", "--bundle", str(demo_run["result"].bundle_dir), "--data", str(data),
                 "--as-of", "2023-06-30", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()


def test_unknown_officer_is_one_line(demo_run, world_dir, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(world_dir, data, ignore=shutil.ignore_patterns(".creditmodel*"))
    officers = pd.read_parquet(data / "officers.parquet")
    officers.iloc[1:].to_parquet(data / "officers.parquet", index=False)
    out = tmp_path / "mon"
    assert main(["monitor", "--bundle", str(demo_run["result"].bundle_dir), "--data", str(data),
                 "--as-of", "2023-06-30", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "loan_accounts.officer_id: value 1 not found in officers.officer_id" in err[0], err
    assert not out.exists()


def test_rerating_reads_nothing_after_the_as_of_date(demo_run, world_dir):
    """Re-rating on the full data equals re-rating on the data cut at the date (point in time)."""
    from creditmodel.data.schema import TABLES
    from creditmodel.export.bundle import load_bundle
    from creditmodel.monitoring.rerate import rerate

    as_of = pd.Timestamp("2023-06-30")
    tables = read_tables(world_dir)
    cut = {n: (df if TABLES[n].event_date is None else df[df[TABLES[n].event_date] <= as_of])
           for n, df in tables.items()}
    book = live_book(tables, as_of).iloc[:200]
    bundle = load_bundle(demo_run["result"].bundle_dir)
    full, truncated = rerate(bundle, tables, book, as_of), rerate(bundle, cut, book, as_of)
    pd.testing.assert_frame_equal(full, truncated)
    assert (full["pd_now"] != full["pd_origination"]).mean() > 0.9  # the date moved the features


def test_backtest_counts_the_matured_loans_and_their_defaults(monitored, world_dir):
    from scipy.stats import beta

    bt = pd.read_parquet(monitored / "backtest.parquet")
    t = read_tables(world_dir)
    as_of = pd.Timestamp("2023-09-30")
    loans = t["loans"]
    end = loans["application_date"] + pd.DateOffset(months=12)
    matured = loans[end <= as_of]
    rep = t["repayments"].merge(matured[["loan_id", "application_date"]], on="loan_id")
    rep = rep[(rep.date <= as_of) & (rep.date <= rep.application_date + pd.DateOffset(months=12))]
    bad = set(rep.loc[rep.days_past_due >= 90, "loan_id"])
    quarter = matured["application_date"].dt.to_period("Q").astype(str)
    expected = pd.DataFrame({"n": quarter.value_counts(), "d": quarter[matured.loan_id.isin(bad)].value_counts()}
                            ).fillna(0).sort_index()
    assert list(bt["quarter"]) == list(expected.index)
    assert list(bt["loans"]) == list(expected["n"]) and list(bt["defaults"]) == list(expected["d"].astype(int))
    r = bt.iloc[-1]
    assert r["jeffreys_p"] == pytest.approx(beta.cdf(r["mean_pd"], r["defaults"] + 0.5, r["loans"] - r["defaults"] + 0.5))
    assert set(bt["status"]) <= {"green", "amber", "red"}


def test_one_shared_build_at_origination_gives_the_same_pds(demo_run, world_dir):
    """Re-rating and the backtest with the run's shared features at origination equal their own builds."""
    from creditmodel.config import build_config
    from creditmodel.export.bundle import load_bundle
    from creditmodel.monitoring.backtest import matured_loans
    from creditmodel.monitoring.rerate import OriginationFeatures, as_of_tables, rerate

    as_of = pd.Timestamp("2023-06-30")
    tables = read_tables(world_dir)
    bundle = load_bundle(demo_run["result"].bundle_dir)
    book = live_book(tables, as_of).iloc[:150]
    shared = OriginationFeatures(bundle, as_of_tables(tables, as_of))
    shared.of(tables["loans"][tables["loans"]["application_date"] <= as_of].iloc[::3])  # built in pieces, in any order
    pd.testing.assert_frame_equal(rerate(bundle, tables, book, as_of, origination=shared),
                                  rerate(bundle, tables, book, as_of))
    config = build_config({})
    pd.testing.assert_frame_equal(matured_loans(bundle, tables, as_of, config, shared),
                                  matured_loans(bundle, tables, as_of, config))
    assert shared.frame.index.is_unique


def test_one_query_for_both_dates_gives_the_standalone_results(demo_run, world_dir):
    """The run's one catalogue query (every loan at origination and the open book as of the date) and
    its one scoring give the re-rating, the backtest and the stability of their own separate builds."""
    from creditmodel.config import build_config
    from creditmodel.export.bundle import load_bundle
    from creditmodel.monitoring.backtest import matured_loans
    from creditmodel.monitoring.rerate import OriginationFeatures, as_of_tables, rerate
    from creditmodel.monitoring.stability import stability

    as_of = pd.Timestamp("2023-09-30")
    tables = read_tables(world_dir)
    bundle = load_bundle(demo_run["result"].bundle_dir)
    book = live_book(tables, as_of)
    known = as_of_tables(tables, as_of)
    shared = OriginationFeatures(bundle, known)
    shared.build(known["loans"], as_of, book[[c for c in tables["loans"].columns if c in book.columns]])
    assert len(shared.pd_now) == len(shared.reasons_now) == len(book) and len(shared.frame) == len(known["loans"])
    config = build_config({})
    one = rerate(bundle, known, book, as_of, origination=shared)
    alone = rerate(bundle, tables, book, as_of)
    pd.testing.assert_frame_equal(one, alone, check_exact=False, rtol=1e-9)
    assert list(one["grade_now"]) == list(alone["grade_now"]) and list(one["notches"]) == list(alone["notches"])
    pd.testing.assert_frame_equal(matured_loans(bundle, known, as_of, config, shared),
                                  matured_loans(bundle, tables, as_of, config), check_exact=False, rtol=1e-9)
    s1, s2 = stability(bundle, known, as_of, origination=shared), stability(bundle, tables, as_of)
    pd.testing.assert_series_equal(s1.pd_reference, s2.pd_reference, check_exact=False, rtol=1e-9)
    pd.testing.assert_series_equal(s1.pd_recent, s2.pd_recent, check_exact=False, rtol=1e-9)
    pd.testing.assert_frame_equal(s1.csi, s2.csi, check_exact=False, rtol=1e-9)
    assert s1.csi_reference == s2.csi_reference  # the development side, taken a column at a time, is the same


def test_a_book_built_in_chunks_of_borrowers_gives_the_same_ratings(demo_run, world_dir):
    """A large book is built a chunk of whole borrowers at a time, keeping only the features the
    stability samples read: PDs, reasons and the kept features equal those of one query."""
    from creditmodel.export.bundle import load_bundle
    from creditmodel.monitoring.rerate import OriginationFeatures, _chunks, as_of_tables

    as_of = pd.Timestamp("2023-09-30")
    tables = read_tables(world_dir)
    bundle = load_bundle(demo_run["result"].bundle_dir)
    book = live_book(tables, as_of)
    known = as_of_tables(tables, as_of)
    loans = known["loans"]
    rows = book[[c for c in tables["loans"].columns if c in book.columns]]
    keep = loans["loan_id"].to_numpy()[::7]
    one, pieces = OriginationFeatures(bundle, known), OriginationFeatures(bundle, known, chunk_rows=700)
    single = OriginationFeatures(bundle, known, chunk_rows=700, lanes=1)  # each chunk as one query
    one.build(loans, as_of, rows, keep=keep)
    pieces.build(loans, as_of, rows, keep=keep)
    single.build(loans, as_of, rows, keep=keep)
    for name in ("pds", "pd_now"):  # two lanes or one: the same numbers, bit for bit
        pd.testing.assert_series_equal(getattr(single, name), getattr(pieces, name), check_exact=True)
    pd.testing.assert_frame_equal(single.reasons_now, pieces.reasons_now, check_exact=True)
    pd.testing.assert_frame_equal(pd.concat(single._pieces["frame"]), pd.concat(pieces._pieces["frame"]),
                                  check_exact=True)  # the kept pieces compared without joining them
    with pytest.raises(ValueError, match="lanes 3: expected 1 or 2"):
        OriginationFeatures(bundle, known, lanes=3)
    assert len(pieces._pieces["frame"]) > 3
    # a column at a time from the kept pieces, unjoined, in any order of loans: the columns of `of`
    names = list(bundle.schema.names)
    some = loans[loans["loan_id"].isin(keep)].iloc[::-3]
    with pytest.raises(KeyError, match="not kept"):
        next(pieces.columns_of(loans, names))
    taken = pd.DataFrame(dict(pieces.columns_of(some, names)))
    assert len(pieces._pieces["frame"]) > 3  # still apart
    joined = pieces.frame.loc[some["loan_id"].to_numpy(), names]  # the pieces joined whole, as `of` once did
    pd.testing.assert_frame_equal(taken, joined, check_exact=True)
    pd.testing.assert_frame_equal(pieces.of(some).set_index("loan_id")[names], joined, check_exact=True)
    chunks = _chunks(pd.concat([loans, rows]), 700)
    assert len(chunks) > 3 and sum(map(len, chunks)) == len(loans) + len(rows)
    owners = [set(c["enterprise_id"]) for c in chunks]
    assert all(not (a & b) for i, a in enumerate(owners) for b in owners[i + 1:])  # borrowers stay whole
    pd.testing.assert_series_equal(pieces.pds.sort_index(), one.pds.sort_index(), check_exact=True)
    pd.testing.assert_series_equal(pieces.pd_now.sort_index(), one.pd_now.sort_index(), check_exact=True)
    pd.testing.assert_frame_equal(pieces.reasons_now.sort_index(), one.reasons_now.sort_index(), check_exact=True)
    assert sorted(one.frame.index) == sorted(keep)
    pd.testing.assert_frame_equal(pieces.frame.sort_index(), one.frame.sort_index(), check_exact=True)


def test_reasons_of_the_moves_are_those_of_a_rating_of_all(demo_run, world_dir):
    """By default the re-rating explains the loans whose grade moved (what the report shows), with the
    reasons a rating of every loan gives them; `reasons = "all"` explains every open loan."""
    from creditmodel.export.bundle import load_bundle
    from creditmodel.monitoring.rerate import OriginationFeatures, as_of_tables, rerate

    as_of = pd.Timestamp("2023-09-30")
    tables = read_tables(world_dir)
    bundle = load_bundle(demo_run["result"].bundle_dir)
    book = live_book(tables, as_of)
    known = as_of_tables(tables, as_of)
    rows = book[[c for c in tables["loans"].columns if c in book.columns]]
    rated = {}
    for mode in ("moves", "all"):
        shared = OriginationFeatures(bundle, known, reasons=mode, chunk_rows=1500)
        shared.build(known["loans"], as_of, rows)
        rated[mode] = rerate(bundle, known, book, as_of, origination=shared, reasons=mode)
    moves, every = rated["moves"], rated["all"]
    moved = (moves["grade_origination"] != moves["grade_now"]).to_numpy()
    assert 0 < moved.sum() < len(moves) and every["reason_1"].notna().all()
    reason_cols = [c for c in moves.columns if c.startswith("reason_")]
    pd.testing.assert_frame_equal(moves.loc[moved, reason_cols], every.loc[moved, reason_cols])
    assert moves.loc[~moved, reason_cols].isna().all().all()
    others = [c for c in moves.columns if c not in reason_cols]
    pd.testing.assert_frame_equal(moves[others], every[others])
    alone = rerate(bundle, tables, book, as_of)  # its own builds, the same reasons
    pd.testing.assert_frame_equal(alone[reason_cols], moves[reason_cols])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's")
def test_the_explainers_threads_keep_the_runs_priority(demo_run, world_dir, monkeypatch):
    """The rating thread runs at a lower priority and explains on one thread; the explainer's pool, which
    stays with the model after the run, is started by the run's own thread (the last chunk is rated
    there), so later explaining in the same process keeps the caller's priority."""
    from creditmodel.export.bundle import load_bundle
    from creditmodel.models import treeshap
    from creditmodel.monitoring.rerate import OriginationFeatures, as_of_tables

    monkeypatch.setattr(treeshap, "PARALLEL_ROWS", 1)  # a small world's chunks explained in parallel too
    monkeypatch.setattr(treeshap, "BLOCK_CELLS", 1)  # blocks of 16 rows: several per chunk
    as_of = pd.Timestamp("2023-09-30")
    tables = read_tables(world_dir)
    bundle = load_bundle(demo_run["result"].bundle_dir)  # a model of its own: no explainer built for it yet
    known = as_of_tables(tables, as_of)
    book = live_book(tables, as_of)
    rows = book[[c for c in tables["loans"].columns if c in book.columns]]
    shared = OriginationFeatures(bundle, known, reasons="all", chunk_rows=700)
    shared.build(known["loans"], as_of, rows)
    explainer = treeshap.explainer(bundle.booster)
    assert explainer is not None and explainer._pool is not None
    workers = list(explainer._pool._threads)
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert len(workers) >= 2 and [os.getpriority(os.PRIO_PROCESS, t.native_id) for t in workers] == [mine] * len(workers)


def test_the_runs_chunks_and_lanes_come_from_the_config(demo_run, world_dir, monkeypatch):
    from creditmodel.config import build_config
    from creditmodel.export.bundle import load_bundle
    from creditmodel.monitoring import rerate, run

    defaults = build_config({}).monitoring
    assert (defaults.chunk_rows, defaults.lanes) == (rerate.CHUNK_ROWS, rerate.LANES)
    seen = {}

    class Stop(Exception):
        pass

    def spy(*args, **kwargs):
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(run, "OriginationFeatures", spy)
    config = build_config({"monitoring": {"chunk_rows": 5000, "lanes": 1}})
    with pytest.raises(Stop):
        run.monitor(load_bundle(demo_run["result"].bundle_dir), read_tables(world_dir), "2023-09-30", config)
    assert (seen["chunk_rows"], seen["lanes"]) == (5000, 1)
