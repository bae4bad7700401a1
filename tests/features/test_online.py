"""Features at decision time from a store: the catalogue's own SQL restricted to one borrower equals the
offline feature matrix, never sees rows dated on or after the decision date, and refuses a store that
does not fit the catalogue in one line."""

import json
import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest
from edge_world import online_rows

from creditmodel.exceptions import BundleError, StoreError
from creditmodel.features.build import available_features, build_features
from creditmodel.features.online import (
    CATALOGUE_FILE,
    OnlineFeatures,
    build_store,
    catalogue_document,
    catalogue_from_document,
    parquet_tables,
    parse_store,
)
from creditmodel.features.spark import frame_mismatches


def _expected(offline, loans, got):
    exp = offline[offline["loan_id"].isin(loans["loan_id"])].set_index("loan_id").loc[got["loan_id"]].reset_index()
    got = got.copy()
    got["loan_id"] = got["loan_id"].astype(exp["loan_id"].dtype)
    got["enterprise_id"] = got["enterprise_id"].astype(exp["enterprise_id"].dtype)
    return exp[got.columns], got


@pytest.fixture(scope="module")
def world_store(small_world, tmp_path_factory):
    tables = small_world.tables
    kept, _ = available_features(tables)
    path = tmp_path_factory.mktemp("store") / "store.duckdb"
    build_store(tables, path)
    return {"tables": tables, "features": kept, "path": path, "offline": build_features(tables, features=kept)}


def _sample(tables, n=40, seed=1):
    loans = tables["loans"]
    grouped = loans[loans["group_id"].notna()].sample(n // 2, random_state=seed)
    return pd.concat([grouped, loans.drop(grouped.index).sample(n - len(grouped), random_state=seed)])


def test_online_features_equal_the_offline_matrix(world_store):
    features = catalogue_from_document(catalogue_document(world_store["features"]))  # as a bundle carries them
    online = OnlineFeatures(features, world_store["path"])
    loans = _sample(world_store["tables"])
    exp, got = _expected(world_store["offline"], loans, online_rows(online, loans))
    assert frame_mismatches(exp, got, rtol=1e-12) == {}
    assert (got["grp_members"] > 0).sum() >= 5  # the group block really reached the members' rows


def test_the_catalogue_is_planned_once_per_thread_not_per_application(world_store, tmp_path):
    # DuckDB plans again, at every execution, a prepared statement that reads a table; the catalogue's query
    # reads only its parameters (the application's rows), so DuckDB's profile of a later application's
    # query shows no optimising at all, and the features still change with the borrower
    online = OnlineFeatures(world_store["features"], world_store["path"], engine="duckdb")
    loans = _sample(world_store["tables"], n=6, seed=3)
    cur = online._statement()
    # and without the caching operators, which only copy one application's few-row chunks
    assert cur.execute("SELECT current_setting('enable_caching_operators')").fetchone()[0] is False
    out = tmp_path / "profile.json"
    cur.execute("PRAGMA enable_profiling = 'json'").fetchall()
    cur.execute(f"PRAGMA profiling_output = '{out}'").fetchall()
    got = online_rows(online, loans)
    profile = json.loads(out.read_text())
    assert profile["query"]["sql"].startswith("EXECUTE application")
    assert profile["optimizer"].get("total_time", 0.0) == 0.0
    assert got["txn_inflow_12m"].nunique() > 1
    exp, got = _expected(world_store["offline"], loans, got)
    assert frame_mismatches(exp, got, rtol=1e-12) == {}


def test_rows_on_or_after_the_decision_date_never_reach_a_feature(world_store, tmp_path):
    path = tmp_path / "future.duckdb"
    shutil.copy(world_store["path"], path)
    loans = _sample(world_store["tables"], n=12, seed=5)
    ids = iter(range(10**9, 10**9 + 100))
    with duckdb.connect(str(path)) as con:
        for loan in loans.itertuples():
            d, e = pd.Timestamp(loan.application_date), int(loan.enterprise_id)
            for day in (0, 1, 30):
                when = d + pd.Timedelta(days=day)
                con.execute("INSERT INTO transactions (enterprise_id, ts, amount, direction, channel, counterparty) "
                            "VALUES (?, ?, 9e6, 'in', 'cash', 999999)", [e, when]).fetchall()
                con.execute("INSERT INTO court_cases (case_id, enterprise_id, filed_date, closed_date, amount, "
                            "dishonest_debtor) VALUES (?, ?, ?, NULL, 5e6, TRUE)", [next(ids), e, when.date()]).fetchall()
                con.execute("INSERT INTO registration_events (enterprise_id, event_date, kind, amount) "
                            "VALUES (?, ?, 'penalty', 1e5)", [e, when.date()]).fetchall()
    online = OnlineFeatures(world_store["features"], path)
    exp, got = _expected(world_store["offline"], loans, online_rows(online, loans))
    assert frame_mismatches(exp, got, rtol=1e-12) == {}


def test_an_unknown_enterprise_gets_thin_file_features(world_store):
    online = OnlineFeatures(world_store["features"], world_store["path"])
    assert online.known(int(world_store["tables"]["enterprises"]["enterprise_id"].iloc[0]))
    assert not online.known(987_654_321)
    row = online.features(987_654_321, "2023-06-01", amount=100_000.0, term_months=12, product="working_capital",
                          guarantee_type="unsecured").iloc[0]
    assert row["loan_amount"] == 100_000.0 and row["monthly_principal"] == pytest.approx(100_000 / 12, rel=1e-15)
    assert row["txn_inflow_12m"] == 0 and row["court_cases_ever"] == 0 and row["grp_members"] == 0
    assert pd.isna(row["firm_age_years"]) and row["legal_form"] is None


def test_a_store_that_does_not_fit_the_catalogue_is_refused_in_one_line(world_store, tmp_path):
    broken = tmp_path / "broken.duckdb"
    shutil.copy(world_store["path"], broken)
    with duckdb.connect(str(broken)) as con:
        con.execute("ALTER TABLE transactions DROP COLUMN channel").fetchall()
    with pytest.raises(StoreError, match=r"table 'transactions' lacks column 'channel'") as err:
        OnlineFeatures(world_store["features"], broken)
    assert "\n" not in str(err.value)
    with duckdb.connect(str(broken)) as con:
        con.execute("DROP TABLE repayments").fetchall()
    with pytest.raises(StoreError, match=r"table 'repayments' is missing"):
        OnlineFeatures(world_store["features"], broken)
    with pytest.raises(StoreError, match="no such DuckDB file"):
        parse_store(f"duckdb://{tmp_path / 'absent.duckdb'}")
    (tmp_path / "text.duckdb").write_text("not a database")
    with pytest.raises(StoreError, match="cannot be opened as DuckDB"):
        OnlineFeatures(world_store["features"], tmp_path / "text.duckdb")


def test_an_edited_catalogue_document_is_refused(world_store):
    doc = catalogue_document(world_store["features"][:10])
    edited = json.loads(json.dumps(doc))
    edited["features"][0]["sql"] = "a.amount * 2"
    with pytest.raises(ValueError, match="sha256 does not match"):
        catalogue_from_document(edited)
    body = {k: edited[k] for k in ("format", "version", "features", "duckdb_sql")}
    from creditmodel.features.online import _digest

    edited["sha256"] = _digest(body)  # a consistent hash, but the SQL is not what the declarations compile to
    with pytest.raises(ValueError, match="not what its declarations compile to"):
        catalogue_from_document(edited)


def test_store_build_cli_writes_through_the_output_rules(small_world, tmp_path, capsys):
    from creditmodel.cli import main
    from creditmodel.data.synthetic import write_world

    data = tmp_path / "world"
    write_world(small_world, data)
    out = tmp_path / "store.duckdb"
    assert main(["store", "build", "--data", str(data), "--out", str(out)]) == 0
    with duckdb.connect(str(out), read_only=True) as con:
        n = con.execute("SELECT count(*) FROM transactions").fetchall()[0][0]
        first = con.execute("SELECT value FROM store_meta WHERE key = 'first_date'").fetchall()[0][0]
    assert n == len(small_world.tables["transactions"])
    assert pd.Timestamp(first) == min(pd.to_datetime(small_world.tables[t][c]).min() for t, c in
                                      (("transactions", "ts"), ("loans", "application_date"))).normalize()
    assert main(["store", "build", "--data", str(data), "--out", str(data / "loans.parquet")]) == 2
    capsys.readouterr()


def test_the_demo_bundle_scores_online_features_like_the_offline_matrix(demo_run, tmp_path):
    from creditmodel.export.bundle import load_bundle

    result = demo_run["result"]
    bundle = load_bundle(result.bundle_dir)
    assert bundle.catalogue is not None
    assert bundle.manifest["feature_catalogue"]["sha256"] == json.loads(
        (result.bundle_dir / CATALOGUE_FILE).read_text())["sha256"]
    from creditmodel.data.io import read_tables

    tables = read_tables(result.output_dir / "world")
    path = tmp_path / "demo.duckdb"
    build_store(tables, path)
    online = OnlineFeatures(bundle.catalogue, path)
    frame = pd.read_parquet(result.features_path)
    loans = tables["loans"].set_index("loan_id").loc[frame["loan_id"].sample(30, random_state=3)].reset_index()
    got = online_rows(online, loans)
    names = list(bundle.schema.names)
    exp = frame.set_index("loan_id").loc[got["loan_id"]].reset_index()
    for f in bundle.catalogue:  # parquet reads text back as pandas' str dtype; the builders give objects
        if f.is_categorical and f.name in names:
            exp[f.name] = exp[f.name].astype(object).where(exp[f.name].notna(), None)
    assert frame_mismatches(exp[names], got[names], rtol=1e-12) == {}
    np.testing.assert_allclose(bundle.predict_pd(got[names]), bundle.predict_pd(exp[names]), rtol=1e-12, atol=0)


def test_a_bundle_with_an_edited_catalogue_is_refused(demo_run, tmp_path):
    from creditmodel.export.bundle import load_bundle

    copy = tmp_path / "bundle"
    shutil.copytree(demo_run["result"].bundle_dir, copy)
    doc = json.loads((copy / CATALOGUE_FILE).read_text())
    doc["features"][0]["description"] += " "
    (copy / CATALOGUE_FILE).write_text(json.dumps(doc))
    with pytest.raises(BundleError, match=CATALOGUE_FILE):
        load_bundle(copy)


def test_a_store_path_with_a_quote_opens(world_store, tmp_path):
    path = tmp_path / "bank's store.duckdb"
    shutil.copy(world_store["path"], path)
    online = OnlineFeatures(world_store["features"][:5], f"duckdb://{path}")
    assert online.first_date <= online.last_date


def test_a_store_built_from_parquet_files_equals_one_built_from_frames(tmp_path):
    """The out-of-core path (``parquet_tables``: a partitioned world never held whole) writes the same
    store, row for row in the stored order, as the frames of the same world."""
    from creditmodel.data.io import read_tables
    from creditmodel.data.synthetic import write_world_partitioned

    world = write_world_partitioned(tmp_path / "world", 300, seed=5, transaction_density=0.3)
    files = parquet_tables(world)
    assert files["transactions"][0].parent.name == "transactions"  # a directory of parts
    frames = build_store(read_tables(world), tmp_path / "frames.duckdb")
    parts = build_store(files, tmp_path / "parts.duckdb", memory_limit="256MB")
    assert parts == frames
    with duckdb.connect(str(tmp_path / "frames.duckdb"), read_only=True) as a, \
            duckdb.connect(str(tmp_path / "parts.duckdb"), read_only=True) as b:
        for name in frames:
            assert a.execute(f"DESCRIBE {name}").fetchall() == b.execute(f"DESCRIBE {name}").fetchall(), name
            assert a.execute(f"SELECT * FROM {name}").fetchall() == b.execute(f"SELECT * FROM {name}").fetchall(), name
        assert a.execute("SELECT * FROM store_meta").fetchall() == b.execute("SELECT * FROM store_meta").fetchall()


@pytest.mark.parametrize("table, column, alter", [
    ("transactions", "direction", "INTEGER USING (CASE WHEN direction = 'in' THEN 1 ELSE 0 END)"),
    ("court_cases", "dishonest_debtor", "VARCHAR"),
    ("transactions", "amount", "VARCHAR"),
])
def test_a_store_with_a_column_of_another_type_is_refused_in_one_line(world_store, tmp_path, table, column, alter):
    """A column typed otherwise than the canonical schema: refused when the store is opened, naming it, not
    at the first request (an INTEGER direction bound fine and failed in every query; a VARCHAR flag was cast
    silently)."""
    broken = tmp_path / "mistyped.duckdb"
    shutil.copy(world_store["path"], broken)
    with duckdb.connect(str(broken)) as con:
        con.execute(f"ALTER TABLE {table} ALTER {column} TYPE {alter}").fetchall()
    before = broken.read_bytes()
    with pytest.raises(StoreError, match=rf"table '{table}' column '{column}' is (INTEGER|VARCHAR), expected") as err:
        OnlineFeatures(world_store["features"], broken)
    assert "\n" not in str(err.value) and broken.read_bytes() == before
