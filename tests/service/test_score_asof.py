"""`creditmodel score --store --as-of`: every active (or listed) borrower rated as of a date in one query; the
PDs equal the bundle's on the offline feature matrix built for the same rows; bad input is one line, exit 2,
nothing written."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from creditmodel.cli import main
from creditmodel.data.io import read_tables
from creditmodel.export.bundle import load_bundle
from creditmodel.features.build import build_features
from creditmodel.features.online import build_store

AS_OF = "2024-01-01"


@pytest.fixture(scope="module")
def book(demo_run, tmp_path_factory):
    result = demo_run["result"]
    tables = read_tables(result.output_dir / "world")
    root = tmp_path_factory.mktemp("asof")
    build_store(tables, root / "store.duckdb")
    return {"bundle": load_bundle(result.bundle_dir), "bundle_dir": result.bundle_dir, "tables": tables,
            "store": root / "store.duckdb"}


def _score(book, out, *extra):
    return main(["score", "--bundle", str(book["bundle_dir"]), "--store", f"duckdb://{book['store']}",
                 "--as-of", AS_OF, "--out", str(out), *extra])


def test_the_active_book_is_rated_as_the_bundle_rates_the_offline_matrix(book, tmp_path, capsys):
    out = tmp_path / "rated.parquet"
    assert _score(book, out, "--reasons") == 0
    assert "rated" in capsys.readouterr().out
    rated = pd.read_parquet(out)
    assert len(rated) > 100 and rated["enterprise_id"].is_unique
    assert (rated["as_of"] == pd.Timestamp(AS_OF)).all() and not rated["new_to_bank"].any()
    assert {"reason_1", "reason_1_feature", "reason_3_shap"} <= set(rated.columns)
    # the reference: the training build over the whole tables, for the same loans' terms, decided on the date
    loans = book["tables"]["loans"].set_index("loan_id").loc[rated["loan_id"].to_numpy()].reset_index()
    assert (loans["enterprise_id"].to_numpy() == rated["enterprise_id"].to_numpy()).all()
    assert (pd.to_datetime(loans["application_date"]) < pd.Timestamp(AS_OF)).all()
    offline = build_features(book["tables"], loans.assign(application_date=pd.Timestamp(AS_OF)),
                             features=book["bundle"].catalogue)
    offline = offline.set_index("loan_id").loc[rated["loan_id"].to_numpy()]
    expected = book["bundle"].predict_pd(offline)
    np.testing.assert_allclose(rated["pd"].to_numpy(), expected, rtol=1e-12, atol=0)
    assert (rated["grade"].to_numpy() == book["bundle"].grade(expected)).all()


def test_a_list_with_terms_and_a_csv_output(book, tmp_path, capsys):
    ent = book["tables"]["enterprises"]["enterprise_id"]
    listed = pd.DataFrame({"enterprise_id": [int(ent.iloc[0]), int(ent.iloc[1]), 987_654_321],
                           "amount": [100_000.0, 250_000.0, 50_000.0], "term_months": [12, 24, 6],
                           "product": ["working_capital", "micro", "micro"],
                           "guarantee_type": ["unsecured", "third_party", "unsecured"]})
    listed.to_csv(tmp_path / "list.csv", index=False)
    out = tmp_path / "rated.csv"
    assert _score(book, out, "--enterprises", str(tmp_path / "list.csv")) == 0
    rated = pd.read_csv(out)
    assert rated["enterprise_id"].tolist() == listed["enterprise_id"].tolist()
    assert rated["new_to_bank"].tolist() == [False, False, True] and rated["loan_id"].isna().all()
    assert ((rated["pd"] > 0) & (rated["pd"] < 1)).all()
    # the officers' reading: the same reasons, written in Chinese
    for lang in ("en", "zh"):
        assert _score(book, tmp_path / f"{lang}.csv", "--enterprises", str(tmp_path / "list.csv"), "--reasons",
                      "--lang", lang) == 0
    en, zh = pd.read_csv(tmp_path / "en.csv"), pd.read_csv(tmp_path / "zh.csv")
    assert zh["reason_1_feature"].tolist() == en["reason_1_feature"].tolist()
    assert zh["pd"].tolist() == en["pd"].tolist() == rated["pd"].tolist()
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in t) and t not in set(en["reason_1"])
               for t in zh["reason_1"])
    capsys.readouterr()


def _refused(capsys, code, out, match):
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and match in err, err
    assert not out.exists()


@pytest.mark.parametrize("extra, match", [
    (["--as-of", "2999-01-01"], "in the future"),
    (["--as-of", "2000-01-01"], "not after the store's first data"),
    (["--as-of", "someday"], "expected a date YYYY-MM-DD"),
])
def test_bad_dates_are_refused(book, tmp_path, capsys, extra, match):
    out = tmp_path / "rated.parquet"
    code = _score(book, out, *extra)  # the last --as-of wins
    _refused(capsys, code, out, match)


def test_bad_stores_lists_and_arguments_are_refused(book, tmp_path, capsys):
    out = tmp_path / "rated.parquet"
    base = ["score", "--bundle", str(book["bundle_dir"]), "--as-of", AS_OF, "--out", str(out)]
    _refused(capsys, main([*base, "--store", f"duckdb://{tmp_path / 'absent.duckdb'}"]), out, "no such DuckDB file")
    broken = tmp_path / "broken.duckdb"
    shutil.copy(book["store"], broken)
    with duckdb.connect(str(broken)) as con:
        con.execute("ALTER TABLE transactions DROP COLUMN channel").fetchall()
    _refused(capsys, main([*base, "--store", str(broken)]), out, "table 'transactions' lacks column 'channel'")
    (tmp_path / "text.duckdb").write_text("not a database")
    _refused(capsys, main([*base, "--store", str(tmp_path / "text.duckdb")]), out, "cannot be opened as DuckDB")
    pd.DataFrame({"enterprise_id": [1], "colour": ["red"]}).to_csv(tmp_path / "list.csv", index=False)
    _refused(capsys, main([*base, "--store", str(book["store"]), "--enterprises", str(tmp_path / "list.csv")]), out,
             "column 'colour' is not one of")
    (tmp_path / "bad.parquet").write_text("not parquet")
    _refused(capsys, main([*base, "--store", str(book["store"]), "--enterprises", str(tmp_path / "bad.parquet")]),
             out, "not a readable parquet table")
    _refused(capsys, main([*base, "--store", str(book["store"]), "--input", str(tmp_path / "x.parquet")]), out,
             "not both")
    _refused(capsys, main(["score", "--bundle", str(book["bundle_dir"]), "--store", str(book["store"]), "--out",
                           str(out)]), out, "--as-of DATE is needed")
    _refused(capsys, main([*base, "--store", str(book["store"]), "--out", str(tmp_path / "rated.json")]),
             tmp_path / "rated.json", "expected a .csv or .parquet file name")
    # the store is left as it was: opened read-only
    with duckdb.connect(str(book["store"]), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM loans").fetchall()[0][0] == len(book["tables"]["loans"])


def test_a_memory_limit_changes_nothing_but_memory(book, tmp_path, capsys):
    """DuckDB spills what does not fit under --memory-limit; the ratings are the same, and no spill is left."""
    import tempfile

    before = set(Path(tempfile.gettempdir()).glob("creditmodel-duckdb-*"))
    assert _score(book, tmp_path / "free.parquet") == 0
    assert _score(book, tmp_path / "bounded.parquet", "--memory-limit", "300MB") == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "free.parquet"),
                                  pd.read_parquet(tmp_path / "bounded.parquet"))
    assert set(Path(tempfile.gettempdir()).glob("creditmodel-duckdb-*")) == before
    capsys.readouterr()
    out = tmp_path / "rated.parquet"
    with pytest.raises(SystemExit) as exit_:  # argparse's own exit, with its one-line error
        _score(book, out, "--memory-limit", "lots")
    _refused(capsys, exit_.value.code, out, "expected a size such as 4GB")
    _refused(capsys, _score(book, out, "--memory-limit", "8MB"), out, "needs more memory than the limit given (8MB)")
