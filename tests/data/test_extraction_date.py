"""The extraction date is explicit (configuration or the data's declared as-of date), rows after it
fail the contracts, and `data check` reads the run configuration and lists every failure at once."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from creditmodel.cli import main
from creditmodel.data.io import (
    DATASET_FILE,
    declared_extraction_date,
    read_tables,
    resolve_extraction_date,
    write_tables,
)
from creditmodel.data.synthetic import write_world, write_world_partitioned
from creditmodel.exceptions import ConfigError, DataContractError


@pytest.fixture(scope="module")
def world_dir(small_world, tmp_path_factory):
    return write_world(small_world, tmp_path_factory.mktemp("asof") / "world")


@pytest.fixture
def data(world_dir, tmp_path):
    out = tmp_path / "data"
    shutil.copytree(world_dir, out)
    return out


def _stderr_lines(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


def _future_repayments(data, n: int = 5) -> None:
    """The drill: move `n` repayment dates to 2035."""
    rep = pd.read_parquet(data / "repayments.parquet")
    rep.loc[rep.index[[10 * i for i in range(n)]], "date"] = pd.Timestamp("2035-03-01")
    rep.to_parquet(data / "repayments.parquet", index=False)


# ---------------------------------------------------------------------------- declaring the date


def test_the_synthetic_world_declares_its_extraction_date(small_world, world_dir, tmp_path):
    assert json.loads((world_dir / DATASET_FILE).read_text()) == {"extraction_date": "2025-06-30"}
    assert declared_extraction_date(world_dir) == pd.Timestamp(small_world.extraction_date) == pd.Timestamp("2025-06-30")
    assert DATASET_FILE.removesuffix(".json") not in read_tables(world_dir)  # not a table
    parts = write_world_partitioned(tmp_path / "parts", 60, seed=1, extraction_date="2024-12-31")
    assert declared_extraction_date(parts) == pd.Timestamp("2024-12-31")


def test_write_tables_declares_the_date_when_given(small_world, tmp_path):
    required = {n: small_world.tables[n] for n in ("enterprises", "loans", "repayments")}
    assert declared_extraction_date(write_tables(required, tmp_path / "a")) is None
    assert declared_extraction_date(write_tables(required, tmp_path / "b", extraction_date="2025-06-30")) == \
        pd.Timestamp("2025-06-30")


def test_a_duckdb_file_declares_it_in_a_table(small_world, tmp_path):
    import duckdb

    path = tmp_path / "bank.duckdb"
    with duckdb.connect(str(path)) as con:
        for name in ("enterprises", "loans", "repayments"):
            frame = small_world.tables[name]  # noqa: F841 - read by DuckDB's replacement scan
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
    assert declared_extraction_date(path) is None
    with pytest.raises(ConfigError, match="table _dataset with a column extraction_date"):
        resolve_extraction_date(None, path)
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE _dataset AS SELECT DATE '2025-06-30' AS extraction_date")
    assert resolve_extraction_date(None, path) == pd.Timestamp("2025-06-30")
    assert set(read_tables(path)) == {"enterprises", "loans", "repayments"}


def test_the_configured_date_comes_first_and_none_is_asked_for(world_dir, tmp_path):
    assert resolve_extraction_date("2024-12-31", world_dir) == pd.Timestamp("2024-12-31")
    assert resolve_extraction_date(None, world_dir) == pd.Timestamp("2025-06-30")
    (tmp_path / "bare").mkdir()
    with pytest.raises(ConfigError) as err:
        resolve_extraction_date(None, tmp_path / "bare")
    assert str(err.value) == (
        f"{tmp_path / 'bare'}: no extraction date; set extraction_date = YYYY-MM-DD in the run configuration or "
        f'declare it in {tmp_path / "bare" / DATASET_FILE} ({{"extraction_date": "YYYY-MM-DD"}})')


@pytest.mark.parametrize("text, match", [
    ("{not json", "not a readable JSON file"),
    ('{"as_of": "2025-06-30"}', 'expected {"extraction_date": "YYYY-MM-DD"}'),
    ('{"extraction_date": "30/06/2025"}', "extraction_date '30/06/2025' is not a date"),
    ('{"extraction_date": "2025-02-30"}', "extraction_date '2025-02-30' is not a valid date"),
])
def test_a_bad_dataset_file_is_one_line(data, text, match):
    (data / DATASET_FILE).write_text(text)
    with pytest.raises(DataContractError, match=match) as err:
        declared_extraction_date(data)
    assert "\n" not in str(err.value) and DATASET_FILE in str(err.value)


# ---------------------------------------------------------------------------- the drill


def test_five_future_repayments_fail_data_check(data, capsys):
    _future_repayments(data)
    assert main(["data", "check", str(data)]) == 2
    err = _stderr_lines(capsys)
    assert len(err) == 1
    assert err[0].startswith("creditmodel: error: repayments.date: value 2035-03-01 later than extraction date "
                             "2025-06-30; 5 rows, e.g. rows ")


def test_five_future_repayments_stop_the_run_before_training(data, tmp_path, capsys):
    _future_repayments(data)
    out, db = tmp_path / "out", tmp_path / "mlflow.db"
    assert main(["run", "--data", str(data), "--out", str(out), "--tracking-uri", f"sqlite:///{db}"]) == 2
    printed = capsys.readouterr()
    assert "repayments.date: value 2035-03-01 later than extraction date 2025-06-30; 5 rows" in printed.err
    assert "1/8 loading data" in printed.out and "2/8" not in printed.out and "training" not in printed.out
    assert not out.exists() and not db.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_without_an_extraction_date_data_check_and_run_ask_for_it(data, tmp_path, capsys):
    (data / DATASET_FILE).unlink()
    assert main(["data", "check", str(data)]) == 2
    err = _stderr_lines(capsys)
    assert len(err) == 1 and "no extraction date; set extraction_date = YYYY-MM-DD" in err[0]
    assert main(["run", "--data", str(data), "--out", str(tmp_path / "out"),
                 "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]) == 2
    assert "no extraction date" in _stderr_lines(capsys)[0]
    assert main(["data", "check", str(data), "--extraction-date", "2025-06-30"]) == 0
    assert "extraction date 2025-06-30" in capsys.readouterr().out


# ---------------------------------------------------------------------------- data check


def test_data_check_lists_every_failure_at_once(data, capsys):
    _future_repayments(data)
    loans = pd.read_parquet(data / "loans.parquet")
    loans.loc[[1, 2], "amount"] = [-100.0, 0.0]
    loans.loc[5, "guarantee_type"] = "gold"
    loans.loc[6, "term_months"] = 0
    loans.to_parquet(data / "loans.parquet", index=False)
    ent = pd.read_parquet(data / "enterprises.parquet")
    ent.loc[0, "industry"] = "shipbuilding"
    ent.to_parquet(data / "enterprises.parquet", index=False)
    assert main(["data", "check", str(data)]) == 2
    err = _stderr_lines(capsys)
    assert err[0].startswith("creditmodel: error: enterprises.industry: value 'shipbuilding' not in allowed "
                             "categories") and err[0].endswith("(+4 more failures)")
    assert err[1] == "5 failures:"
    listed = [line.removeprefix("  - ") for line in err[2:]]
    assert len(listed) == 5
    assert listed[0].startswith("enterprises.industry: value 'shipbuilding'")
    assert listed[1].startswith("loans.guarantee_type: value 'gold' not in allowed categories")
    assert listed[2].startswith("loans.amount: values -100, 0 below minimum 1; 2 rows, e.g. loan_id ")
    assert listed[3].startswith("loans.term_months: value 0 below minimum 1; 1 row")
    assert listed[4].startswith("repayments.date: value 2035-03-01 later than extraction date 2025-06-30; 5 rows")


def test_data_check_reads_the_run_configuration(data, tmp_path, capsys):
    loans = pd.read_parquet(data / "loans.parquet")
    loans.loc[0, "amount"] = 8e6  # above the approval authority: a flag, not an error
    loans["officer_note"] = "x"  # not declared: listed, never dropped silently
    loans.to_parquet(data / "loans.parquet", index=False)
    cfg = tmp_path / "run.toml"
    cfg.write_text("[label]\nwindow_months = 6\ndpd_threshold = 60\n")
    assert main(["data", "check", str(data), "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "ignored columns (not declared as attributes in the data dictionary): loans.officer_note" in out
    assert "60+ days past due on a repayment record within 6 months" in out and "by application year" in out
    assert "policy: 1 of " in out and "loans need referral (approval_authority 1)" in out
    assert "all contracts passed" in out
    # the profile's default rates follow the configured label: check one year against a direct count
    from creditmodel.features.labels import default_labels

    tables = read_tables(data)
    labels = default_labels(tables["loans"], tables["repayments"], pd.Timestamp("2025-06-30"),
                            window_months=6, dpd_threshold=60)
    year = pd.to_datetime(tables["loans"]["application_date"]).dt.year
    rate_2021 = tables["loans"]["loan_id"].map(labels)[year == 2021].dropna().astype(float).mean()
    assert f"{rate_2021:6.2%}" in next(line for line in out.splitlines() if line.strip().startswith("2021"))

    dictionary = tmp_path / "bank.toml"
    dictionary.write_text('[[attributes]]\ntable = "loans"\nname = "officer_note"\nkind = "categorical"\n'
                          'categories = ["x"]\n')
    cfg.write_text(f'dictionary = "{dictionary}"\n')
    assert main(["data", "check", str(data), "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "ignored columns" not in out and f"data dictionary: data dictionary {dictionary}" in out
    assert "policy: 0 of " in out  # a bank's file without [[policy]] has no rules


# ---------------------------------------------------------------------------- wrong files: one line each


def test_a_directory_named_like_a_table_file_is_one_line(data, capsys):
    (data / "court_cases.parquet").unlink()
    (data / "court_cases.csv").mkdir()
    assert main(["data", "check", str(data)]) == 2
    err = _stderr_lines(capsys)
    assert len(err) == 1 and "court_cases.csv: is a directory; expected a CSV file of table 'court_cases'" in err[0]


def test_a_csv_with_the_wrong_columns_is_one_line(data, capsys):
    (data / "loans.parquet").unlink()
    (data / "loans.csv").write_text("id,sum\n1,100\n")
    assert main(["data", "check", str(data)]) == 2
    err = _stderr_lines(capsys)
    assert err[0] == ("creditmodel: error: loans.loan_id: required column missing (columns found: id, sum) "
                      "(+8 more failures)")
    assert all("required column missing" in line for line in err[2:])


def test_an_unreadable_parquet_is_one_line(data, capsys):
    (data / "loans.parquet").write_bytes(b"PAR1 not really")
    assert main(["data", "check", str(data)]) == 2
    err = _stderr_lines(capsys)
    assert len(err) == 1 and "loans.parquet: cannot read as parquet" in err[0]


def test_wrong_files_for_the_taiwan_adapter_are_one_line(data, tmp_path, capsys):
    for wrong, match in ((data / "loans.parquet", "cannot read as a CSV file"),
                         (data, "is a directory"),
                         (tmp_path / "other.csv", "not the UCI Taiwan credit-card file; missing columns")):
        if wrong.suffix == ".csv":
            wrong.write_text("ID,LIMIT_BAL\n1,1000\n")
        out = tmp_path / "tw"
        assert main(["data", "adapt", "taiwan", "--csv", str(wrong), "--out", str(out)]) == 2
        err = _stderr_lines(capsys)
        assert len(err) == 1 and match in err[0], err
        assert not out.exists()


def test_wrong_files_for_price_applications_are_one_line(data, tmp_path):
    from creditmodel.cli import _read_frame

    (tmp_path / "broken.parquet").write_bytes(b"garbage")
    (tmp_path / "broken.csv").write_bytes(b'a,b\n"unclosed,1\n')
    for wrong, match in ((data, "is a directory; expected a .parquet or .csv file"),
                         (tmp_path / "broken.parquet", "cannot read as parquet"),
                         (tmp_path / "broken.csv", "cannot read as csv")):
        with pytest.raises(DataContractError, match=match) as err:
            _read_frame(wrong)
        assert "\n" not in str(err.value)
