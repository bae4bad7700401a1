"""`creditmodel price`: score applications with a bundle, price them, write atomically; bad input -> exit 2."""

import numpy as np
import pandas as pd
import pytest

from creditmodel.cli import main
from creditmodel.outputs import LEDGER
from creditmodel.pricing import OUTPUT_COLUMNS, POLICY_COLUMNS


@pytest.fixture
def applications(demo_run, tmp_path):
    frame = pd.read_parquet(demo_run["result"].features_path)
    apps = frame[frame["split"] == "oot"].drop(columns=["default", "split"]).head(300).copy()
    apps["amount"] = apps["loan_amount"]
    apps["maturity_years"] = apps["term_months"] / 12
    return apps


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("creditmodel: error: ")
    return err[0]


@pytest.mark.parametrize("suffix_in, suffix_out", [(".csv", ".parquet"), (".parquet", ".csv")])
def test_price_portfolio_with_target_raroc(demo_run, applications, tmp_path, capsys, suffix_in, suffix_out):
    src = tmp_path / f"apps{suffix_in}"
    applications.to_csv(src, index=False) if suffix_in == ".csv" else applications.to_parquet(src)
    out = tmp_path / f"priced{suffix_out}"
    assert main(["price", "--bundle", str(demo_run["result"].bundle_dir), "--applications", str(src),
                 "--out", str(out), "--target-raroc", "0.15"]) == 0
    priced = pd.read_parquet(out) if suffix_out == ".parquet" else pd.read_csv(out)
    assert list(priced.columns) == [*OUTPUT_COLUMNS, *POLICY_COLUMNS, "rate_for_target_raroc"]
    assert len(priced) == 300
    np.testing.assert_array_equal(priced["ead"], applications["amount"].to_numpy(dtype=float))
    # the target rate earns exactly 15% on capital
    credit = 0.0
    got = (priced["rate_for_target_raroc"] - priced["funding_cost"] - priced["operating_cost"]
           - priced["expected_loss"] + credit) / priced["k"]
    np.testing.assert_allclose(got, 0.15, rtol=1e-9)
    text = capsys.readouterr().out
    assert "priced 300 loans" in text and "RAROC" in text and "EVA" in text and "cap" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([LEDGER, src.name, out.name])  # no temp file left


def test_price_without_target_keeps_the_output_columns(demo_run, applications, tmp_path):
    src = tmp_path / "apps.parquet"
    applications.drop(columns=["amount", "maturity_years"]).to_parquet(src)
    out = tmp_path / "priced.csv"
    assert main(["price", "--bundle", str(demo_run["result"].bundle_dir), "--features", str(src),
                 "--out", str(out)]) == 0
    priced = pd.read_csv(out)
    assert list(priced.columns) == [*OUTPUT_COLUMNS, *POLICY_COLUMNS]
    np.testing.assert_allclose(priced["maturity_years"], applications["term_months"] / 12)  # from term_months


@pytest.mark.parametrize("change, match", [
    (lambda a: a.assign(guarantee_type=["gold"] + list(a["guarantee_type"].iloc[1:])),
     "feature 'guarantee_type': value 'gold' is not one of"),  # the bundle checks it first
    (lambda a: a.assign(amount=[-1.0] + list(a["amount"].iloc[1:])), "pricing input: amount must be a number >= 0"),
    (lambda a: a.assign(maturity_years=0.0), "pricing input: maturity_years must be a number of years in (0, 50]"),
    (lambda a: a.drop(columns=["guarantee_type"]), "feature 'guarantee_type' is missing"),
    (lambda a: a.drop(columns=["loan_id"]), "pricing input: column 'loan_id' is missing"),
    (lambda a: a.assign(annual_sales="n/a"), "pricing input: annual_sales must be a number >= 0"),
])
def test_bad_applications_exit_2_and_write_nothing(demo_run, applications, tmp_path, capsys, change, match):
    src = tmp_path / "apps.parquet"
    change(applications).to_parquet(src)
    out = tmp_path / "priced.parquet"
    assert main(["price", "--bundle", str(demo_run["result"].bundle_dir), "--applications", str(src),
                 "--out", str(out)]) == 2
    assert match in _one_error_line(capsys)
    assert [p.name for p in tmp_path.iterdir()] == ["apps.parquet"]


def test_bad_price_arguments_exit_2(demo_run, applications, tmp_path, capsys):
    src = tmp_path / "apps.parquet"
    applications.to_parquet(src)
    bundle = str(demo_run["result"].bundle_dir)
    assert main(["price", "--bundle", bundle, "--applications", str(src), "--out", str(tmp_path / "p.xlsx")]) == 2
    assert "expected a .csv or .parquet" in _one_error_line(capsys)
    assert main(["price", "--bundle", bundle, "--applications", str(src), "--out", str(tmp_path / "p.csv"),
                 "--target-raroc", "nan"]) == 2
    assert "--target-raroc nan" in _one_error_line(capsys)
    assert main(["price", "--bundle", bundle, "--applications", str(tmp_path / "none.csv"),
                 "--out", str(tmp_path / "p.csv")]) == 2
    assert "does not exist" in _one_error_line(capsys)
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[pricing]\ncapital_approach = \"irb\"\n")
    assert main(["price", "--bundle", bundle, "--applications", str(src), "--out", str(tmp_path / "p.csv"),
                 "--config", str(cfg)]) == 2
    assert "pricing.capital_approach" in _one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["apps.parquet", "bad.toml"]


def test_price_in_chinese_gives_chinese_headings_and_summary(demo_run, applications, tmp_path, capsys):
    from creditmodel.texts import column_heading

    src = tmp_path / "apps.parquet"
    applications.to_parquet(src)
    out_en, out_zh = tmp_path / "en.csv", tmp_path / "zh.csv"
    bundle = str(demo_run["result"].bundle_dir)
    assert main(["price", "--bundle", bundle, "--applications", str(src), "--out", str(out_en)]) == 0
    capsys.readouterr()
    assert main(["price", "--bundle", bundle, "--applications", str(src), "--out", str(out_zh), "--lang", "zh"]) == 0
    said = capsys.readouterr().out
    assert "已定价 300 笔贷款" in said and "风险调整后资本收益率" in said and "经济增加值" in said
    en, zh = pd.read_csv(out_en), pd.read_csv(out_zh)
    assert list(zh.columns) == [column_heading(c, "zh") for c in en.columns]
    assert "执行利率" in zh.columns and "违约概率" in zh.columns
    np.testing.assert_array_equal(zh["执行利率"].to_numpy(), en["rate"].to_numpy())  # same numbers, other headings


def test_price_with_an_unknown_language_exits_2(demo_run, applications, tmp_path, capsys):
    src = tmp_path / "apps.parquet"
    applications.to_parquet(src)
    with pytest.raises(SystemExit) as info:
        main(["price", "--bundle", str(demo_run["result"].bundle_dir), "--applications", str(src),
              "--out", str(tmp_path / "p.csv"), "--lang", "fr"])
    assert info.value.code == 2
    assert not (tmp_path / "p.csv").exists()
