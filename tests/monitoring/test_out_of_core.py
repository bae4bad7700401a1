"""Monitoring with the transactions left in their parquet files (`load_tables_leaving`, as
`creditmodel monitor --data` reads a world): the same results as with every table in memory, the
as-of cut applied where DuckDB reads, and bad files refused in one line before anything is written."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from creditmodel.cli import main
from creditmodel.data.contracts_sql import parquet_table_violations
from creditmodel.data.io import load_tables, load_tables_leaving, resolve_extraction_date
from creditmodel.data.parquet_table import ParquetTable
from creditmodel.exceptions import DataContractError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_world(small_run):
    return small_run["out"] / "world"


def test_monitoring_from_the_files_equals_monitoring_in_memory(demo_run, world_dir):
    from creditmodel.export.bundle import load_bundle
    from creditmodel.monitoring.run import monitor

    config = demo_run["config"]
    extraction = resolve_extraction_date(None, world_dir)
    in_memory = load_tables(world_dir, extraction_date=extraction)
    left = load_tables_leaving(world_dir, extraction_date=extraction)
    assert isinstance(left["transactions"], ParquetTable)
    assert list(left) == list(in_memory)
    for name in in_memory:
        if name != "transactions":
            pd.testing.assert_frame_equal(left[name], in_memory[name])
    bundle = load_bundle(demo_run["result"].bundle_dir)
    a, b = monitor(bundle, in_memory, "2023-09-30", config), monitor(bundle, left, "2023-09-30", config)
    assert list(a.frames) == list(b.frames)
    for name in a.frames:  # bit for bit: DuckDB reads the same rows in the same order
        pd.testing.assert_frame_equal(a.frames[name], b.frames[name], check_exact=True, obj=name)
    assert a.summary.keys() == b.summary.keys()
    for key, value in a.summary.items():
        assert str(value) == str(b.summary[key]), key
    assert a.summary["watch_list_by_trigger"].get("inflow_drop_3m", 0) > 0  # the inflow triggers read the files


def test_the_cut_is_applied_where_duckdb_reads(small_world):
    import duckdb

    from creditmodel.monitoring.rerate import as_of_tables

    table = load_tables_leaving(small_world)["transactions"]
    frame = pd.read_parquet(small_world / "transactions.parquet")
    as_of = pd.Timestamp("2022-03-31")
    cut = as_of_tables({"transactions": table}, as_of)["transactions"]
    assert isinstance(cut, ParquetTable) and cut.until == as_of.date()
    with duckdb.connect() as con:
        last, n = con.execute(f"SELECT max(ts), count(*) FROM {cut.source()}").fetchall()[0]
    expected = frame[frame["ts"] < as_of + pd.Timedelta(days=1)]
    assert n == len(expected) == len(cut) and pd.Timestamp(last) == expected["ts"].max()
    assert pd.Timestamp(last) < as_of + pd.Timedelta(days=1) <= frame["ts"].max()
    assert cut.cut(as_of + pd.Timedelta(days=30)) is cut  # a later cut reads no more than the first
    assert cut.cut(pd.Timestamp("2021-12-31")).until == pd.Timestamp("2021-12-31").date()


def _broken(world, tmp_path, change):
    """A copy of `world` whose transactions file is changed by `change(frame) -> frame`."""
    bad = tmp_path / "world"
    shutil.copytree(world, bad)
    tx = pd.read_parquet(bad / "transactions.parquet")
    change(tx).to_parquet(bad / "transactions.parquet", index=False)
    return bad


BAD = {
    "orphan": (lambda tx: tx.assign(enterprise_id=np.where(np.arange(len(tx)) == 7, 10**9, tx["enterprise_id"])),
               "transactions"),
    "vocabulary": (lambda tx: tx.assign(direction=np.where(np.arange(len(tx)) == 7, "sideways", tx["direction"])),
                   "direction"),
    "null": (lambda tx: tx.assign(amount=np.where(np.arange(len(tx)) == 7, np.nan, tx["amount"])), "amount"),
    "type": (lambda tx: tx.assign(amount=tx["amount"].map(lambda a: f"{a:.2f}元")), "amount"),
    "column": (lambda tx: tx.drop(columns=["channel"]), "channel"),
}


@pytest.mark.parametrize("fault", list(BAD))
def test_a_broken_transactions_file_is_named_by_the_contracts(small_world, tmp_path, fault):
    change, named = BAD[fault]
    bad = _broken(small_world, tmp_path, change)
    table = ParquetTable.of("transactions", [bad / "transactions.parquet"])
    parents = load_tables(small_world)
    assert parquet_table_violations(table, parents) > 0
    with pytest.raises(DataContractError) as err:
        load_tables_leaving(bad)
    assert "transactions" in str(err.value) and named in str(err.value)
    assert parquet_table_violations(ParquetTable.of("transactions", [small_world / "transactions.parquet"]),
                                    parents) == 0


@pytest.mark.parametrize("fault", ["orphan", "unreadable"])
def test_monitor_refuses_broken_transactions_in_one_line_and_writes_nothing(demo_run, small_world, tmp_path, capsys,
                                                                           fault):
    if fault == "unreadable":
        bad = tmp_path / "world"
        shutil.copytree(small_world, bad)
        (bad / "transactions.parquet").write_bytes(b"not parquet at all")
    else:
        bad = _broken(small_world, tmp_path, BAD[fault][0])
    out = tmp_path / "mon"
    rc = main(["monitor", "--bundle", str(demo_run["result"].bundle_dir), "--data", str(bad),
               "--as-of", "2023-09-30", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "transactions" in err[0] and "Traceback" not in err[0], err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["world"]


@pytest.fixture(scope="module")
def june(demo_run, world_dir, tmp_path_factory):
    """`creditmodel monitor` as of 2023-06-30: the quarter before the session's run (`monitored`)."""
    out = tmp_path_factory.mktemp("carry") / "2023q2"
    assert main(["monitor", "--bundle", str(demo_run["result"].bundle_dir), "--data", str(world_dir),
                 "--as-of", "2023-06-30", "--out", str(out)]) == 0
    return out


def test_a_run_carried_from_an_earlier_date_equals_a_run_from_scratch(demo_run, world_dir, monitored, june, tmp_path,
                                                                       capsys):
    """`monitor --previous DIR` starts from the ratings at origination the earlier run carried: it builds
    far fewer rows and gives every output the run from scratch (`monitored`, 2023-09-30) gives."""
    carried, scratch = tmp_path / "carried", monitored
    assert main(["monitor", "--bundle", str(demo_run["result"].bundle_dir), "--data", str(world_dir),
                 "--as-of", "2023-09-30", "--out", str(carried), "--lang", "en", "--previous", str(june)]) == 0
    capsys.readouterr()
    names = sorted(p.name for p in scratch.glob("*.parquet"))
    assert names == sorted(p.name for p in carried.glob("*.parquet")) and "origination.parquet" in names
    # a loan's features at origination are the same rows summed in whatever order the query joined them,
    # which may differ with the other loans of the query: the same to 1e-9, grades and moves exactly
    for name in names:
        pd.testing.assert_frame_equal(pd.read_parquet(carried / name), pd.read_parquet(scratch / name),
                                      check_exact=False, rtol=1e-9, obj=name)
    for name, columns in (("rerating.parquet", ["grade_origination", "grade_now", "notches", "reason_1"]),
                          ("watch_list.parquet", ["loan_id", "trigger"])):
        pd.testing.assert_frame_equal(pd.read_parquet(carried / name)[columns], pd.read_parquet(scratch / name)[columns],
                                      check_exact=True, obj=name)
    import json
    import math

    a, b = (json.loads((d / "summary.json").read_text()) for d in (scratch, carried))
    assert b.pop("carried_from") == "2023-06-30" and a.pop("carried_from") is None
    built_scratch, built_carried = a.pop("rows_built"), b.pop("rows_built")
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], float):
            assert math.isclose(a[key], b[key], rel_tol=1e-9) or (math.isnan(a[key]) and math.isnan(b[key])), key
        else:
            assert a[key] == b[key], key
    assert built_carried < built_scratch / 2, (built_carried, built_scratch)


def test_carried_ratings_of_another_model_or_other_data_are_one_line(demo_run, world_dir, small_run, june, tmp_path,
                                                                      capsys):
    bundle = str(demo_run["result"].bundle_dir)
    cases = {"not a monitor output": (bundle, world_dir, june / "migration.parquet", "carried.json"),
             "other data": (bundle, small_run["out"] / "world", june, "expected a run on the same data"),
             "other model": (str(small_run["result"].bundle_dir), world_dir, june, "expected this bundle's")}
    for label, (b, data, previous, message) in cases.items():
        out = tmp_path / "out"
        trust = ["--allow-unsigned"] if b != bundle else []  # the small run's bundle is unsigned
        rc = main(["monitor", "--bundle", b, "--data", str(data), "--as-of", "2023-09-30", "--out", str(out),
                   "--previous", str(previous), *trust])
        err = [line for line in capsys.readouterr().err.strip().splitlines() if "--allow-unsigned" not in line]
        assert rc != 0 and len(err) == 1 and message in err[0] and "--previous" in err[0], (label, err)
        assert not out.exists(), label
