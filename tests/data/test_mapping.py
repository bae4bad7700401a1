"""`creditmodel data map`: a bank's extracts (GBK CSV, Excel, Parquet, PostgreSQL) to canonical tables.

Every bad input gives one line on stderr, exit code 2 and no output directory. The PostgreSQL
tests start a throwaway server on loopback and skip cleanly where its programs are absent
(`.ci/run` installs them); the German credit example reads ../shared/data and skips without it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import free_port as _free_port
from conftest import mlflow_store
from creditmodel.cli import main
from creditmodel.data.mapping import load_mapping, map_tables

ROOT = Path(__file__).resolve().parents[2]
GERMAN = ROOT.parent / "shared" / "data" / "german_credit" / "german.data"

# -------------------------------------------------------------------------------------------
# a small bank extract in the shape banks export it: GBK, Chinese headers, money strings, dd/mm/yy
# -------------------------------------------------------------------------------------------

ENTERPRISES = pd.DataFrame({
    "客户号": ["C0001", "C0002", "C0003", "C0004"],
    "成立日期": ["01/02/98", "15/06/05", "30/12/51", "07/07/49"],   # pivot 1950: 1998, 2005, 1951, 2049?
    "行业代码": ["A01", "A02", "B11", "A01"],
    "企业类型": ["个体", "个体", "公司", "农户"],
    "注册资本": ["12.5万", "1,200元", "$3,000.00", ""],
    "出生年份": [1970, 1980, 1990, 1965],
})
ENTERPRISES.loc[3, "成立日期"] = "07/07/09"   # 2009 (a 2049 date would be after the extraction date)

LOANS = pd.DataFrame({
    "合同号": ["HT-001", "HT-002", "HT-003", "HT-004", "HT-005"],
    "客户号": ["C0001", "C0002", "C0003", "C0004", "C0001"],
    "放款日": ["01/03/23", "15/04/23", "30/06/23", "01/09/22", "05/01/24"],
    "金额": ["5万", "1,200.50", "￥300,000", "2.5万元", "80,000元"],
    "期限": ["12", "24", "36", "12", "6"],
    "产品": ["信用贷", "经营贷", "经营贷", "信用贷", "信用贷"],
    "状态": ["正常", "正常", "正常", "正常", "撤销"],
})

REPAYMENTS = pd.DataFrame({
    "合同号": ["HT-001", "HT-001", "HT-002", "HT-003", "HT-004", "HT-004"],
    "日期": ["2023-04-01", "2023-05-01", "2023-05-15", "2023-07-30", "2022-10-01", "2023-02-01"],
    "逾期天数": [0, 30, 0, 0, 0, 95],
})

STATEMENTS = pd.DataFrame({
    "客户号": ["C0001", "C0002"],
    "报表日": ["31/12/22", "31/12/22"],
    "营业收入": ["120万", "85,000"],
    "资产": ["300万", "200,000"],
    "负债": ["100万", "50,000"],
    "存货": ["10万", "0"],
    "应收": ["5万", "1,000"],
    "净利润": ["(1,200)", "12.5万"],
})

MAPPING = """
extraction_date = 2024-06-30

[tables.enterprises]
source = { path = "enterprises.csv", encoding = "gbk" }
[tables.enterprises.columns]
enterprise_id = { column = "客户号", id = "digits" }
registration_date = { column = "成立日期", date = "%d/%m/%y", pivot = 1950 }
industry = { column = "行业代码", map = { furniture = ["A01", "A02"], forestry = ["B11"] } }
legal_form = { column = "企业类型", map = { "个体" = "sole_trader", "公司" = "limited_company", "农户" = "farmer_household" } }
county = { value = "330523" }
registered_capital = { column = "注册资本", money = true }
owner_birth_year = "出生年份"

[tables.loans]
source = { path = "loans.csv", encoding = "gbk" }
filter = "状态 <> '撤销'"
[tables.loans.columns]
loan_id = { column = "合同号", id = "digits" }
enterprise_id = { column = "客户号", id = "digits" }
application_date = { column = "放款日", date = "%d/%m/%y", pivot = 1950 }
amount = { column = "金额", money = true }
term_months = "期限"
product = { column = "产品", map = { micro = ["信用贷"], working_capital = ["经营贷"] } }
guarantee_type = { value = "unsecured" }

[tables.repayments]
source = { path = "repayments.csv", encoding = "gbk" }
[tables.repayments.columns]
loan_id = { column = "合同号", id = "digits" }
date = "日期"
days_past_due = "逾期天数"

[tables.financial_statements]
source = { path = "statements.csv", encoding = "gbk" }
[tables.financial_statements.columns]
enterprise_id = { column = "客户号", id = "digits" }
period_end = { column = "报表日", date = "%d/%m/%y", pivot = 1950 }
revenue = { column = "营业收入", money = true }
assets = { column = "资产", money = true }
liabilities = { column = "负债", money = true }
inventory = { column = "存货", money = true }
receivables = { column = "应收", money = true }
net_profit = { column = "净利润", money = true, factor = 0.001 }   # reported in thousands
"""


def _bank(tmp_path: Path, mapping: str = MAPPING, encoding: str = "gbk") -> Path:
    """Write the bank's extract and its mapping; returns the mapping file."""
    src = tmp_path / "extract"
    src.mkdir(exist_ok=True)
    for name, df in (("enterprises", ENTERPRISES), ("loans", LOANS), ("repayments", REPAYMENTS),
                     ("statements", STATEMENTS)):
        df.to_csv(src / f"{name}.csv", index=False, encoding=encoding)
    # an ASCII header over GBK values: the decoding problem shows only in the data
    REPAYMENTS.rename(columns={"合同号": "contract", "日期": "date", "逾期天数": "dpd"}).assign(
        contract=[f"合同{i}" for i in range(len(REPAYMENTS))]).to_csv(src / "rep_ascii.csv", index=False, encoding="gbk")
    path = src / "mapping.toml"
    path.write_text(mapping, encoding="utf-8")
    return path


def _run(capsys, mapping: Path, out: Path) -> tuple[int, str, str]:
    code = main(["data", "map", "--mapping", str(mapping), "--out", str(out)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_gbk_csv_money_strings_and_two_digit_years(tmp_path, capsys):
    out = tmp_path / "canonical"
    code, stdout, err = _run(capsys, _bank(tmp_path), out)
    assert code == 0, err
    assert "loans 4" in stdout   # the cancelled loan is filtered out
    assert json.loads((out / "_dataset.json").read_text()) == {"extraction_date": "2024-06-30"}
    ent = pd.read_parquet(out / "enterprises.parquet").set_index("enterprise_id")
    assert ent.index.tolist() == [1, 2, 3, 4]
    assert ent["registration_date"].dt.strftime("%Y-%m-%d").tolist() == [
        "1998-02-01", "2005-06-15", "1951-12-30", "2009-07-07"]
    assert ent["industry"].tolist() == ["furniture", "furniture", "forestry", "furniture"]
    assert ent["legal_form"].tolist() == ["sole_trader", "sole_trader", "limited_company", "farmer_household"]
    np.testing.assert_array_equal(ent["registered_capital"].to_numpy(), [125_000.0, 1_200.0, 3_000.0, np.nan])
    loans = pd.read_parquet(out / "loans.parquet").set_index("loan_id")
    assert loans.index.tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(loans["amount"].to_numpy(), [50_000.0, 1_200.5, 300_000.0, 25_000.0])
    assert loans["application_date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2023-03-01", "2023-04-15", "2023-06-30", "2022-09-01"]
    assert loans["product"].tolist() == ["micro", "working_capital", "working_capital", "micro"]
    assert loans["term_months"].tolist() == [12, 24, 36, 12]
    assert loans["rate"].isna().all() and loans["group_id"].isna().all()   # not in the extract: null
    rep = pd.read_parquet(out / "repayments.parquet")
    assert rep["days_past_due"].tolist() == [0, 30, 0, 0, 0, 95]
    fs = pd.read_parquet(out / "financial_statements.parquet")
    np.testing.assert_allclose(fs["net_profit"].to_numpy(), [-1.2, 125.0])   # "(1,200)" negative, x 0.001
    np.testing.assert_allclose(fs["revenue"].to_numpy(), [1_200_000.0, 85_000.0])


def test_gb18030_tsv_without_header_and_hashed_ids(tmp_path):
    """Text ids (not digits) hash to the same integer in every table, so the keys still join."""
    src = tmp_path / "x"
    src.mkdir()
    ent = ENTERPRISES.assign(客户号=["甲", "乙", "丙", "丁"])
    ent.to_csv(src / "ent.tsv", sep="\t", index=False, header=False, encoding="gb18030")
    LOANS.assign(客户号=["甲", "乙", "丙", "丁", "甲"]).to_csv(src / "loans.csv", index=False, encoding="gb18030")
    REPAYMENTS.to_csv(src / "rep.csv", index=False, encoding="gb18030")
    names = ", ".join(f'"{c}"' for c in ENTERPRISES.columns)
    text = (MAPPING.split("[tables.financial_statements]")[0]
            .replace('source = { path = "enterprises.csv", encoding = "gbk" }',
                     f'source = {{ path = "ent.tsv", encoding = "gb18030", header = false, names = [{names}] }}')
            .replace('"loans.csv", encoding = "gbk"', '"loans.csv", encoding = "gb18030"')
            .replace('"repayments.csv", encoding = "gbk"', '"rep.csv", encoding = "gb18030"')
            .replace('enterprise_id = { column = "客户号", id = "digits" }',
                     'enterprise_id = { column = "客户号", id = "hash" }'))
    (src / "m.toml").write_text(text, encoding="utf-8")
    tables = map_tables(*load_mapping(src / "m.toml"))
    ent_ids = tables["enterprises"]["enterprise_id"]
    assert ent_ids.nunique() == 4 and (ent_ids >= 0).all()
    by_name = dict(zip(["甲", "乙", "丙", "丁"], ent_ids))
    assert tables["loans"]["enterprise_id"].tolist() == [by_name[n] for n in ["甲", "乙", "丙", "丁"]]


def test_excel_sheet(tmp_path, capsys):
    src = tmp_path / "x"
    src.mkdir()
    book = src / "台账.xlsx"
    with pd.ExcelWriter(book, engine="openpyxl") as xl:
        ENTERPRISES.assign(成立日期=pd.to_datetime(["1998-02-01", "2005-06-15", "1951-12-30", "2009-07-07"]),
                           客户号=[1, 2, 3, 4]).to_excel(xl, sheet_name="客户", index=False)
        LOANS.assign(期限=[12, 24, 36, 12, 6], 金额=[50_000, "1,200.50", 300_000, "2.5万", "8万"]).to_excel(
            xl, sheet_name="贷款", index=False)
        REPAYMENTS.to_excel(xl, sheet_name="还款", index=False)
    text = (MAPPING.split("[tables.financial_statements]")[0]
            .replace('{ path = "enterprises.csv", encoding = "gbk" }', '{ path = "台账.xlsx", sheet = "客户" }')
            .replace('{ path = "loans.csv", encoding = "gbk" }', '{ path = "台账.xlsx", sheet = "贷款" }')
            .replace('{ path = "repayments.csv", encoding = "gbk" }', '{ path = "台账.xlsx", sheet = "还款" }')
            .replace('enterprise_id = { column = "客户号", id = "digits" }\nregistration',
                     'enterprise_id = "客户号"\nregistration'))
    (src / "m.toml").write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    code, stdout, err = _run(capsys, src / "m.toml", out)
    assert code == 0, err
    ent = pd.read_parquet(out / "enterprises.parquet")   # date cells stay dates despite the text format
    assert ent["registration_date"].dt.strftime("%Y-%m-%d").tolist() == [
        "1998-02-01", "2005-06-15", "1951-12-30", "2009-07-07"]
    loans = pd.read_parquet(out / "loans.parquet")
    np.testing.assert_allclose(loans["amount"].to_numpy(), [50_000.0, 1_200.5, 300_000.0, 25_000.0])
    assert loans["term_months"].tolist() == [12, 24, 36, 12]
    # a sheet that is not there: one line, nothing written
    (src / "m.toml").write_text(text.replace('sheet = "贷款"', 'sheet = "Loans"'), encoding="utf-8")
    code, _, err = _run(capsys, src / "m.toml", tmp_path / "out2")
    assert code == 2 and err.count("\n") == 1 and "Loans" in err and "loans" in err
    assert not (tmp_path / "out2").exists()


def test_parquet_source_with_expression_and_constant_dates(tmp_path):
    src = tmp_path / "x"
    src.mkdir()
    pd.DataFrame({"id": [1, 2], "age": [40, 30]}).to_parquet(src / "people.parquet")
    pd.DataFrame({"id": [1, 2], "bad": [0, 1]}).to_parquet(src / "outcome.parquet")
    (src / "m.toml").write_text("""
extraction_date = 2001-01-01
[tables.enterprises]
source = { path = "people.parquet" }
[tables.enterprises.columns]
enterprise_id = "id"
registration_date = { value = 1990-01-01 }
legal_form = { value = "sole_trader" }
industry = { value = "furniture" }
county = { value = "X" }
owner_birth_year = { expr = "2000 - age" }
[tables.loans]
source = { path = "people.parquet" }
[tables.loans.columns]
loan_id = { row_number = true, start = 100 }
enterprise_id = "id"
application_date = { value = 2000-01-01 }
product = { value = "micro" }
guarantee_type = { value = "unsecured" }
amount = { value = 1000 }
term_months = { value = 12 }
[tables.repayments]
source = { path = "outcome.parquet" }
[tables.repayments.columns]
loan_id = { expr = "id + 99" }
date = { value = 2000-07-01 }
days_past_due = { column = "bad", map = { "0" = 0, "1" = 90 } }
""", encoding="utf-8")
    t = map_tables(*load_mapping(src / "m.toml"))
    assert t["enterprises"]["owner_birth_year"].tolist() == [1960, 1970]
    assert t["loans"]["loan_id"].tolist() == [100, 101]
    assert t["repayments"]["days_past_due"].tolist() == [0, 90]
    assert (t["loans"]["application_date"] == pd.Timestamp("2000-01-01")).all()


def test_own_dictionary_vocabulary_attributes_and_other(tmp_path, capsys):
    """The mapping names the bank's dictionary: its vocabulary is the contract, its attributes are kept."""
    mapping = _bank(tmp_path, MAPPING.split("[tables.financial_statements]")[0]
                    .replace("extraction_date = 2024-06-30", 'extraction_date = 2024-06-30\ndictionary = "dict.toml"')
                    .replace('industry = { column = "行业代码", map = { furniture = ["A01", "A02"], forestry = ["B11"] } }',
                             'industry = { column = "行业代码", map = { wood = ["A01", "A02"] }, other = "retail" }\n'
                             'sector_code = "行业代码"'))
    (mapping.parent / "dict.toml").write_text("""
currency = "USD"
[vocabularies]
industry = ["wood", "retail"]
[[attributes]]
table = "enterprises"
name = "sector_code"
kind = "categorical"
categories = ["A01", "A02", "B11"]
en = "Sector code"
zh = "行业代码"
reason_en = "Sector"
reason_zh = "行业"
""", encoding="utf-8")
    out = tmp_path / "canonical"
    code, _, err = _run(capsys, mapping, out)
    assert code == 0, err
    ent = pd.read_parquet(out / "enterprises.parquet")
    assert ent["industry"].tolist() == ["wood", "wood", "retail", "wood"]
    assert ent["sector_code"].tolist() == ["A01", "A02", "B11", "A01"]   # a declared attribute is kept
    # without the dictionary the seed bank's vocabulary applies: 'wood' is refused, nothing written
    mapping.write_text(mapping.read_text(encoding="utf-8").replace('dictionary = "dict.toml"', ""), encoding="utf-8")
    code, _, err = _run(capsys, mapping, tmp_path / "other")
    assert code == 2 and "enterprises.industry" in err.splitlines()[0] and "'wood'" in err
    assert not (tmp_path / "other").exists()
    mapping.write_text('dictionary = "nope.toml"\n' + mapping.read_text(encoding="utf-8"), encoding="utf-8")
    code, _, err = _run(capsys, mapping, tmp_path / "other")
    assert code == 2 and "nope.toml not found" in err and err.count("\n") == 1


MONEY = {
    "1200": 1200.0, "$1,200.00": 1200.0, "US$ 1,200.50": 1200.5, "1,200元": 1200.0, "12.5万": 125_000.0,
    "12.5万元": 125_000.0, "1.2亿": 120_000_000.0, "(1,200)": -1200.0, "（1,200元）": -1200.0, "-3.5": -3.5,
    "￥-80": -80.0, "RMB 1,000": 1000.0, "1,000 RMB": 1000.0, "3k": 3000.0, "2.5M": 2_500_000.0, " 7 ": 7.0,
    ".5": 0.5, "1,234,567.891": 1_234_567.891, "5千": 5000.0, "1200.": 1200.0, "RMB 2.5M": 2_500_000.0,
    "HKD 12k": 12_000.0, "12\u3000万": 120_000.0,
}


def test_money_strings_against_hand_computed_values():
    from creditmodel.data.mapping import ColumnMapping, convert_values

    spec = ColumnMapping(column="x", money=True)
    got = convert_values(spec, list(MONEY) + [None, ""], name="amount")
    assert got[:-2] == pytest.approx(list(MONEY.values()))
    assert got[-2:] == [None, None]
    for bad in ("1,2", "12abc", "1.2.3", "(1,200", "$", "1,200)", "万", "12 34"):
        with pytest.raises(Exception, match=r"loans\.amount \(source column 'x' in the values given\): 1 value is "
                                            r"not money"):
            convert_values(spec, ["1", bad], name="amount")


# -------------------------------------------------------------------------------------------
# bad input: one line, exit code 2, nothing written
# -------------------------------------------------------------------------------------------

BAD = {
    "unknown source column": (
        lambda m: m.replace('term_months = "期限"', 'term_months = "贷款期限"'),
        ["loans", "'贷款期限'", "not found", "loans.csv"]),
    "unmapped category": (
        lambda m: m.replace('forestry = ["B11"]', 'forestry = ["B12"]'),
        ["enterprises.industry", "行业代码", "'B11' (1 row)", "other"]),
    "unparseable date": (
        lambda m: m.replace('registration_date = { column = "成立日期", date = "%d/%m/%y", pivot = 1950 }',
                            'registration_date = { column = "成立日期", date = "%Y-%m-%d" }'),
        ["enterprises.registration_date", "4 values", "'01/02/98'", "%Y-%m-%d"]),
    "unparseable money": (
        lambda m: m.replace('revenue = { column = "营业收入", money = true }', 'revenue = { column = "净利润" }'),
        ["financial_statements.revenue", "净利润", "'(1,200)'", "money = true"]),
    "money string that is no amount": (
        lambda m: m.replace('registered_capital = { column = "注册资本", money = true }',
                            'registered_capital = { column = "企业类型", money = true }'),
        ["enterprises.registered_capital", "企业类型", "4 values are not money amounts", "'个体'", "12.5万"]),
    "missing file": (
        lambda m: m.replace('"statements.csv"', '"statement.csv"'),
        ["financial_statements", "statement.csv", "not found"]),
    "bad encoding": (
        lambda m: m.replace('"loans.csv", encoding = "gbk"', '"loans.csv", encoding = "utf-8"'),
        ["loans", "cannot decode loans.csv as utf-8", "gbk"]),
    "GBK data under an ASCII header read as UTF-8": (
        lambda m: m.replace('{ path = "repayments.csv", encoding = "gbk" }', '{ path = "rep_ascii.csv" }')
        .replace('loan_id = { column = "合同号", id = "digits" }\ndate = "日期"\ndays_past_due = "逾期天数"',
                 'loan_id = { column = "contract", id = "digits" }\ndate = "date"\ndays_past_due = "dpd"'),
        ["repayments", "cannot decode rep_ascii.csv as utf-8", "gbk"]),
    "unknown encoding": (
        lambda m: m.replace('"loans.csv", encoding = "gbk"', '"loans.csv", encoding = "gbk2"'),
        ["loans", "unknown encoding 'gbk2'"]),
    "bad filter": (
        lambda m: m.replace("状态 <> '撤销'", "stat <> 1"),
        ["loans: filter", "stat"]),
    "TOML syntax": (
        lambda m: m.replace("[tables.loans.columns]", "[tables.loans.columns"),
        ["mapping.toml", "not valid TOML", "line"]),
    "unknown table": (
        lambda m: m.replace("[tables.financial_statements]", "[tables.statements]")
        .replace("[tables.financial_statements.columns]", "[tables.statements.columns]"),
        ["tables", "unknown table 'statements'"]),
    "unknown key": (
        lambda m: m.replace('term_months = "期限"', 'term_months = { column = "期限", kast = "int" }'),
        ["tables.loans.columns.term_months.kast", "Extra inputs are not permitted"]),
    "two sources of one column": (
        lambda m: m.replace('guarantee_type = { value = "unsecured" }',
                            'guarantee_type = { value = "unsecured", column = "产品" }'),
        ["tables.loans.columns.guarantee_type", "exactly one of column, value"]),
    "pivot without %y": (
        lambda m: m.replace('date = "%d/%m/%y", pivot = 1950 }\nindustry', 'date = "%d/%m/%Y", pivot = 1950 }\nindustry'),
        ["tables.enterprises.columns.registration_date", "pivot applies to two-digit years"]),
    "missing extraction date": (
        lambda m: m.replace("extraction_date = 2024-06-30", ""),
        ["extraction_date", "Field required"]),
    "contract failure": (
        lambda m: m.replace("extraction_date = 2024-06-30", "extraction_date = 2023-06-01"),
        ["later than extraction date 2023-06-01"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_nothing_written(tmp_path, capsys, case):
    edit, needles = BAD[case]
    mapping = _bank(tmp_path, edit(MAPPING))
    out = tmp_path / "canonical"
    code, stdout, err = _run(capsys, mapping, out)
    assert code == 2, (case, stdout, err)
    first, *rest = err.splitlines()
    assert first.startswith("creditmodel: error: "), err
    # one line; contract failures of the mapped tables are followed by the list of all of them
    assert not rest or (case == "contract failure" and rest[0] == f"{len(rest) - 1} failures:"), err
    for needle in needles:
        assert needle.lower() in first.lower(), (case, needle, err)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["extract"]   # no temporary left behind


# Each kind of contract fault, planted in the mapped data (not in the mapping's conversions): the
# one-pass writer's SQL checks must catch it, and the message is the contracts' own.
CONTRACT_FAULTS = {
    "null in a required column": (
        lambda m: m.replace('term_months = "期限"',
                            'term_months = { expr = "CASE WHEN 合同号 = \'HT-002\' THEN NULL ELSE 期限 END" }'),
        "loans.term_months: null value in non-nullable column"),
    "value outside the vocabulary": (
        lambda m: m.replace('guarantee_type = { value = "unsecured" }', 'guarantee_type = { value = "gold" }'),
        "loans.guarantee_type: value 'gold' not in allowed categories"),
    "value below the valid domain": (
        lambda m: m.replace('amount = { column = "金额", money = true }',
                            'amount = { column = "金额", money = true, factor = -1 }'),
        "loans.amount: values"),
    "duplicate key": (
        lambda m: m.replace('loan_id = { column = "合同号", id = "digits" }\nenterprise_id',
                            'loan_id = { value = 7 }\nenterprise_id'),
        "loans.loan_id: duplicate key"),
    "orphan foreign key": (
        lambda m: m.replace('loan_id = { column = "合同号", id = "digits" }\ndate', 'loan_id = { value = 999 }\ndate'),
        "repayments.loan_id: value 999 not found in loans.loan_id"),
    "row after the extraction date": (
        lambda m: m.replace("extraction_date = 2024-06-30", "extraction_date = 2023-06-01"),
        "later than extraction date 2023-06-01"),
}


@pytest.mark.parametrize("case", list(CONTRACT_FAULTS))
def test_contract_faults_are_caught_on_the_way_and_named_by_the_contracts(tmp_path, capsys, case):
    from creditmodel.data import contracts_sql
    from creditmodel.data.contracts import validate_tables
    from creditmodel.data.mapping import _connect, _convert_all, _load_dictionary
    from creditmodel.exceptions import DataContractError

    edit, needle = CONTRACT_FAULTS[case]
    path = _bank(tmp_path, edit(MAPPING))
    mapping, base = load_mapping(path)
    dictionary = _load_dictionary(mapping, base)
    with _connect() as con:   # the SQL rules see the fault ...
        mapped = _convert_all(con, mapping, base, dictionary)
        frames, faults = {}, 0
        for name, conv in mapped.items():
            types = {r[0]: str(r[1]) for r in con.execute(f"DESCRIBE {conv.query}").fetchall()}
            guard = contracts_sql.row_guard(contracts_sql.tables(dictionary)[name], types, mapping.extraction_date)
            faults += con.execute(f"SELECT count(*) FROM ({conv.query}) WHERE {guard}").fetchall()[0][0]
            frames[name] = con.execute(conv.query).df()
        faults += contracts_sql.key_violations(con, {n: c.query for n, c in mapped.items()}, dictionary)
    assert faults > 0
    with pytest.raises(DataContractError, match="."):   # ... and so do the contracts
        validate_tables(frames, dictionary=dictionary, extraction_date=mapping.extraction_date)
    out = tmp_path / "canonical"
    code, _, err = _run(capsys, path, out)
    assert code == 2 and needle in err.splitlines()[0], err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["extract"]


def test_clean_tables_pass_the_sql_rules_and_the_contracts_alike(tmp_path, capsys):
    """The one-pass writer and the contracts agree on clean data: the written parquet equals the
    frames validate_tables returns (the pandas path of map_tables)."""
    path = _bank(tmp_path)
    out = tmp_path / "canonical"
    assert _run(capsys, path, out)[0] == 0
    expected = map_tables(*load_mapping(path))
    for name, frame in expected.items():
        written = pd.read_parquet(out / f"{name}.parquet")
        assert list(written.columns) == list(frame.columns), name
        for column in frame.columns:
            a, b = written[column], frame[column]
            if pd.api.types.is_datetime64_any_dtype(b):
                a, b = a.astype("datetime64[us]"), b.astype("datetime64[us]")
            assert a.astype(object).where(a.notna(), None).tolist() == b.astype(object).where(b.notna(), None).tolist(), \
                (name, column)


def test_out_not_empty_is_refused(tmp_path, capsys):
    out = tmp_path / "canonical"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = _run(capsys, _bank(tmp_path), out)
    assert code == 2 and "keep.txt" in err and err.count("\n") == 1
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_out_holding_the_sources_is_refused(tmp_path, capsys):
    """An output that contains the mapping's own source files would delete the bank's extracts."""
    mapping = _bank(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = _run(capsys, mapping, tmp_path)
    assert code == 2 and "refusing to write there" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_rerun_replaces_its_own_output(tmp_path, capsys):
    out = tmp_path / "canonical"
    assert _run(capsys, _bank(tmp_path), out)[0] == 0
    assert _run(capsys, _bank(tmp_path), out)[0] == 0
    assert (out / "_dataset.json").is_file()


def test_missing_mapping_file(tmp_path, capsys):
    code, _, err = _run(capsys, tmp_path / "nope.toml", tmp_path / "out")
    assert code == 2 and "mapping file not found" in err and err.count("\n") == 1


# -------------------------------------------------------------------------------------------
# a real PostgreSQL
# -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def postgres(postgres_server):
    return postgres_server("core")


@pytest.fixture(scope="module")
def core_banking(postgres):
    """The loan book as a core-banking schema holds it: amounts in 万元 as numeric, dates as date."""
    import psycopg

    with psycopg.connect(postgres.replace("postgresql://", "postgresql://", 1)) as con:
        con.execute("CREATE TABLE ln_contract (contract_no text, cust_no text, loan_dt date, "
                    "amt_wan numeric(14, 6), term int, prd_cd text, status text)")
        with con.cursor() as cur:
            cur.executemany("INSERT INTO ln_contract VALUES (%s, %s, %s, %s, %s, %s, %s)", [
                ("HT-001", "C0001", "2023-03-01", 5, 12, "01", "N"),
                ("HT-002", "C0002", "2023-04-15", 0.12005, 24, "02", "N"),
                ("HT-003", "C0003", "2023-06-30", 30, 36, "02", "N"),
                ("HT-004", "C0004", "2022-09-01", 2.5, 12, "01", "N"),
                ("HT-005", "C0001", "2024-01-05", 8, 6, "01", "C"),
            ])
    return postgres


def _sql_mapping(url: str, query: str) -> str:
    loans = f"""[tables.loans]
source = {{ url = "{url}", query = "{query}" }}
[tables.loans.columns]
loan_id = {{ column = "contract_no", id = "digits" }}
enterprise_id = {{ column = "cust_no", id = "digits" }}
application_date = "loan_dt"
amount = {{ column = "amt_wan", factor = 10000 }}
term_months = "term"
product = {{ column = "prd_cd", map = {{ micro = ["01"], working_capital = ["02"] }} }}
guarantee_type = {{ value = "unsecured" }}

[tables.repayments]"""
    head, tail = MAPPING.split("[tables.financial_statements]")[0].split("[tables.loans]")
    return head + loans + tail.split("[tables.repayments]")[1]


def test_postgresql_query(tmp_path, capsys, core_banking):
    mapping = _bank(tmp_path, _sql_mapping(core_banking, "SELECT * FROM ln_contract WHERE status = 'N'"))
    out = tmp_path / "canonical"
    code, stdout, err = _run(capsys, mapping, out)
    assert code == 0, err
    loans = pd.read_parquet(out / "loans.parquet")
    assert loans["loan_id"].tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(loans["amount"].to_numpy(), [50_000.0, 1_200.5, 300_000.0, 25_000.0])
    assert loans["application_date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2023-03-01", "2023-04-15", "2023-06-30", "2022-09-01"]
    assert loans["product"].tolist() == ["micro", "working_capital", "working_capital", "micro"]


@pytest.mark.parametrize("case", ["bad query", "unknown table", "unknown driver", "bad URL", "no server"])
def test_postgresql_bad_input(tmp_path, capsys, core_banking, case):
    port = _free_port()
    url, query, needles = {
        "bad query": (core_banking, "SELEC * FROM ln_contract", ["loans", "SQL query failed", "SELEC"]),
        "unknown table": (core_banking, "SELECT * FROM ln_contracts", ["loans", "ln_contracts"]),
        "unknown driver": ("oracle2://u@h/db", "SELECT 1", ["loans", "unknown database kind"]),
        "bad URL": ("not a url", "SELECT 1", ["loans", "not a usable SQLAlchemy URL"]),
        "no server": (f"postgresql://bank:secret@127.0.0.1:{port}/core", "SELECT 1",
                      ["loans", "cannot connect", f"127.0.0.1:{port}"]),
    }[case]
    mapping = _bank(tmp_path, _sql_mapping(url, query))
    out = tmp_path / "canonical"
    code, _, err = _run(capsys, mapping, out)
    assert code == 2 and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, (case, needle, err)
    assert "secret" not in err   # never the password
    assert not out.exists()


# -------------------------------------------------------------------------------------------
# the shipped German credit example
# -------------------------------------------------------------------------------------------


@pytest.mark.skipif(not GERMAN.is_file(), reason="../shared/data/german_credit is not present")
def test_german_credit_mapping(tmp_path, capsys):
    out = tmp_path / "german"
    code, stdout, err = _run(capsys, ROOT / "configs" / "mappings" / "german_credit" / "mapping.toml", out)
    assert code == 0, err
    loans = pd.read_parquet(out / "loans.parquet")
    rep = pd.read_parquet(out / "repayments.parquet")
    raw = pd.read_csv(GERMAN, sep=" ", header=None)
    assert len(loans) == len(rep) == len(raw) == 1000
    assert (rep["days_past_due"] >= 90).sum() == (raw[20] == 2).sum() == 300   # the published 30% bad
    np.testing.assert_array_equal(loans["amount"].to_numpy(), raw[4].to_numpy(dtype=float))
    np.testing.assert_array_equal(loans["term_months"].to_numpy(), raw[1].to_numpy())
    ent = pd.read_parquet(out / "enterprises.parquet")
    np.testing.assert_array_equal(ent["owner_birth_year"].to_numpy(), 2000 - raw[12].to_numpy())
    assert json.loads((out / "_dataset.json").read_text()) == {"extraction_date": "2001-01-01"}


TAIWAN = ROOT.parent / "shared" / "data" / "taiwan_credit_card" / "UCI_Credit_Card.csv"


@pytest.mark.skipif(not TAIWAN.is_file(), reason="../shared/data/taiwan_credit_card is not present")
def test_taiwan_mapping_equals_the_adapter():
    """The shipped Taiwan mapping (DuckDB queries reshape months into rows) = the hand-written adapter."""
    from creditmodel.data.adapters.taiwan import taiwan_tables

    mapped = map_tables(*load_mapping(ROOT / "configs" / "mappings" / "taiwan" / "mapping.toml"))
    adapted = taiwan_tables(TAIWAN)
    assert set(mapped) == set(adapted)
    for name, want in adapted.items():
        order = ["enterprise_id", "ts", "direction"] if name == "transactions" else list(want.columns[:2])
        got = mapped[name][list(want.columns)].sort_values(order).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want.sort_values(order).reset_index(drop=True), check_dtype=False)


def test_query_over_a_file_source(tmp_path, capsys):
    """A DuckDB query reshapes a file before mapping; a broken one is one line naming the table."""
    mapping = _bank(tmp_path, MAPPING.split("[tables.financial_statements]")[0].replace(
        '[tables.repayments]\nsource = { path = "repayments.csv", encoding = "gbk" }',
        '[tables.repayments]\nsource = { path = "repayments.csv", encoding = "gbk", query = '
        '"SELECT 合同号, 日期, max(逾期天数) AS 逾期天数 FROM source GROUP BY ALL ORDER BY ALL" }'))
    out = tmp_path / "canonical"
    code, _, err = _run(capsys, mapping, out)
    assert code == 0, err
    assert pd.read_parquet(out / "repayments.parquet")["days_past_due"].tolist() == [0, 30, 0, 0, 0, 95]
    mapping.write_text(mapping.read_text(encoding="utf-8").replace("GROUP BY ALL", "GROUP BY nothing"),
                       encoding="utf-8")
    code, _, err = _run(capsys, mapping, tmp_path / "other")
    assert code == 2 and err.startswith("creditmodel: error: repayments: source.query failed:") and err.count("\n") == 1
    assert not (tmp_path / "other").exists()


def test_collateral_and_guarantors_map_like_any_canonical_table(tmp_path):
    src = tmp_path / "x"
    src.mkdir()
    pd.DataFrame({"id": [1, 2], "age": [40, 30]}).to_parquet(src / "people.parquet")
    pd.DataFrame({"loan": [100, 100], "kind": ["房产", "林权"], "worth": ["1,200,000", "300,000"]}).to_parquet(
        src / "pledges.parquet")
    pd.DataFrame({"loan": [101], "by": [1]}).to_parquet(src / "sureties.parquet")
    (src / "m.toml").write_text("""
extraction_date = 2001-01-01
[tables.enterprises]
source = { path = "people.parquet" }
[tables.enterprises.columns]
enterprise_id = "id"
registration_date = { value = 1990-01-01 }
legal_form = { value = "sole_trader" }
industry = { value = "furniture" }
county = { value = "X" }
owner_birth_year = { expr = "2000 - age" }
[tables.loans]
source = { path = "people.parquet" }
[tables.loans.columns]
loan_id = { row_number = true, start = 100 }
enterprise_id = "id"
application_date = { value = 2000-01-01 }
product = { value = "micro" }
guarantee_type = { value = "collateral" }
amount = { value = 1000 }
term_months = { value = 12 }
[tables.repayments]
source = { path = "people.parquet" }
[tables.repayments.columns]
loan_id = { expr = "id + 99" }
date = { value = 2000-07-01 }
days_past_due = { value = 0 }
[tables.collateral]
source = { path = "pledges.parquet" }
[tables.collateral.columns]
loan_id = "loan"
collateral_type = { column = "kind", map = { "房产" = "building", "林权" = "forest_right" } }
value = { column = "worth", money = true }
[tables.guarantees]
source = { path = "sureties.parquet" }
[tables.guarantees.columns]
loan_id = "loan"
guarantor_id = "by"
""", encoding="utf-8")
    t = map_tables(*load_mapping(src / "m.toml"))
    assert t["collateral"]["collateral_type"].tolist() == ["building", "forest_right"]
    assert t["collateral"]["value"].tolist() == [1_200_000.0, 300_000.0]
    assert t["guarantees"]["guarantor_id"].tolist() == [1]


@pytest.mark.slow
@pytest.mark.skipif(not GERMAN.is_file(), reason="../shared/data/german_credit is not present")
def test_german_credit_runs_from_its_mapping_and_reaches_the_published_level(tmp_path, capsys, monkeypatch):
    """Mapped, then run with its own run configuration and dictionary: the application attributes
    become features and the hold-out AUC lies in the published range (about 0.70-0.79)."""
    from creditmodel.config import load_config
    from creditmodel.pipeline import run_pipeline

    monkeypatch.chdir(tmp_path)  # the run configuration names its dictionary relative to itself, from anywhere
    data = tmp_path / "german"
    assert _run(capsys, ROOT / "configs" / "mappings" / "german_credit" / "mapping.toml", data)[0] == 0
    config = load_config(ROOT / "configs" / "mappings" / "german_credit" / "run.toml",
                         {"data_dir": str(data), "output_dir": str(tmp_path / "run")})
    result = run_pipeline(config, tracking_uri=mlflow_store(tmp_path / "mlflow.db"))
    auc = result.metrics.set_index(["model", "split"])["auc"]
    assert 0.70 <= auc[("lightgbm", "oot")] <= 0.85, auc
    names = set(result.models.lightgbm.schema_.names)
    assert {"checking_status", "credit_history"} & names, sorted(names)[:20]


def test_ids_two_digit_years_and_value_maps_against_python():
    """The fast paths of digit ids, %y pivots and value maps give what plain Python gives."""
    import calendar
    import datetime as dt

    from creditmodel.data.mapping import ColumnMapping, convert_values

    ids = {"0001234": 1234, "C0001234": 1234, "CN-77x": 77, "12-34": 1234, " 56 ": 56, "9" * 18: int("9" * 18)}
    assert convert_values(ColumnMapping(column="x", id="digits"), list(ids), "int") == list(ids.values())
    with pytest.raises(Exception, match="1 value is not ids with 1 to 18 digits"):
        convert_values(ColumnMapping(column="x", id="digits"), ["1", "9" * 19], "int")
    days = [f"{d}/{yy:02d}" for yy in range(100) for d in ("29/02", "15/06")
            if not (d == "29/02" and yy % 4)]
    for pivot in (1950, 2000, 1800):
        got = convert_values(ColumnMapping(column="x", date="%d/%m/%y", pivot=pivot), days, "date")
        expected = []
        for s in days:
            d = dt.datetime.strptime(s, "%d/%m/%y")
            year = pivot + (d.year - pivot) % 100
            leap_day_lost = d.month == 2 and d.day == 29 and not calendar.isleap(year)
            expected.append(d.replace(year=year, day=28 if leap_day_lost else d.day))
        assert [g.date() for g in got] == [e.date() for e in expected], pivot
    spec = ColumnMapping(column="x", map={" in ": ["C", "c "], "out": ["D"]})
    assert convert_values(spec, ["C", " C", "c ", "D\u3000", None, "  "], "str") == ["in", "in", "in", "out", None, None]
    with pytest.raises(Exception, match=r"1 source value not in map: 'X' \(2 rows\)"):
        convert_values(spec, ["C", "X", " X "], "str")


def test_a_value_map_without_other_yields_only_its_targets():
    """A value map that refuses unmapped codes can only hold its targets: the row guard leaves the
    vocabulary check out for it (the check step after the map does not change its values)."""
    from creditmodel.data import contracts_sql, schema
    from creditmodel.data.mapping import ColumnMapping
    from creditmodel.data.mapping_sql import column_sql

    spec = ColumnMapping(column="dc", map={"in": ["C"], "out": ["D"]})
    col = column_sql("__c0", spec, '"dc"', "VARCHAR", "str")
    assert col.values == frozenset({"in", "out"})
    assert any(step.map_check for step in col.steps)
    table = schema.TABLES["transactions"]
    types = {c.name: {"int": "BIGINT", "float": "DOUBLE", "str": "VARCHAR", "bool": "BOOLEAN", "date": "TIMESTAMP",
                      "timestamp": "TIMESTAMP"}[c.kind] for c in table.columns}
    assert "NOT IN ('in', 'out')" not in contracts_sql.row_guard(table, types, None, {"direction": col.values})
    with_other = column_sql("__c0", ColumnMapping(column="dc", map={"in": ["C"]}, other="out"), '"dc"', "VARCHAR", "str")
    assert with_other.values == frozenset({"in", "out"})


_SPACES = " \t\n\r\v\f\u3000\u00a0"


def _python_int(text: str | None) -> int | None:
    """A whole number as the mapping's documentation defines it, in plain Python."""
    import re

    t = None if text is None else text.strip(_SPACES)
    if not t:
        return None
    if not re.fullmatch(r"[-+]?[0-9]+(\.0*)?", t):
        raise ValueError(t)
    value = int(float(t)) if "." in t else int(t)
    if not -2**63 <= value < 2**63:
        raise ValueError(t)
    return value


ODD_NUMBERS = ["12", " 12 ", "-12", "+5", "-0", "007", "0", "1.0", "1.", "1.5", "1e3", "0x10", "1_000", "1,000",
               "\uff11\uff12", "12\u3000", "\u00a012", "9223372036854775807", "9223372036854775808",
               "-9223372036854775808", "1 2", "", "  ", "inf", "nan", "٣", "12abc", "-", "+"]


def test_whole_numbers_fast_path_against_python():
    """A text column of kind int: the cast-first fast path gives what plain Python gives, value by
    value, and refuses what Python refuses (a cast alone would read 0x10, 1_000 and 1e3)."""
    from creditmodel.data.mapping import ColumnMapping, convert_values
    from creditmodel.exceptions import DataContractError

    spec = ColumnMapping(column="x")
    for value in ODD_NUMBERS:
        try:
            expected: object = _python_int(value)
        except ValueError:
            expected = ValueError
        if expected is ValueError:
            with pytest.raises(DataContractError, match=r"1 value is not whole numbers"):
                convert_values(spec, [value], "int", name="term_months")
        else:
            assert convert_values(spec, [value], "int", name="term_months") == [expected], value
    # many rows at once, the fast path and the regular expression side by side
    good = [v for v in ODD_NUMBERS if _ok(_python_int, v)]
    assert convert_values(spec, good * 3, "int", name="term_months") == [_python_int(v) for v in good] * 3


def _ok(fn, value) -> bool:
    try:
        fn(value)
        return True
    except ValueError:
        return False


ODD_MONEY = {
    " 1200 ": 1200.0, "1200": 1200.0, "1,200": 1200.0, "1,200.50元": 1200.5, "12.5万": 125_000.0,
    "$1,200.00": 1200.0, "-1,200.50": -1200.5, "−5": -5.0, "+5": 5.0, "(12.5万)": -125_000.0, "1.5": 1.5,
    "007": 7.0, "-0": -0.0, "\u00a01200元": 1200.0, "12\u3000万": 120_000.0, ".5元": 0.5,
    "\uff11\uff12\uff10\uff10": None, "0x10": None, "1_000": None, "1e3": None, "inf": None, "nan": None,
    "1,2345": None, "12,34": None, "1 200": None, "1.2.3": None, "元": None, "12元元": None,
}


def test_money_fast_path_and_odd_inputs_against_hand_computed_values():
    """Money strings of the common shape (digits, thousands commas, decimals, 元) and every other
    shape: the values of hand computation, and one refusal for each string that is no amount."""
    from creditmodel.data.mapping import ColumnMapping, convert_values
    from creditmodel.exceptions import DataContractError

    spec = ColumnMapping(column="x", money=True)
    good = {k: v for k, v in ODD_MONEY.items() if v is not None}
    got = convert_values(spec, list(good) * 2, name="amount")
    assert got == pytest.approx(list(good.values()) * 2)
    assert [np.signbit(v) for v in got[: len(good)]] == [np.signbit(v) for v in good.values()]
    for bad in (k for k, v in ODD_MONEY.items() if v is None):
        with pytest.raises(DataContractError, match=r"1 value is not money amounts"):
            convert_values(spec, ["1,200元", bad], name="amount")


CSV_SHAPES = {
    "quoted.csv": 'a;b;c;d\r\n1;"x;y";2024-01-02;01/03/23\r\n2;"he said ""hi""";2024-02-03;15/04/23\r\n',
    "preamble.csv": "# exported 2024-06-30\n# bank\nx,y,z\n1,2.5,a\n3,,b\n",
    "bom.csv": "\ufeff a ,b\n1,2\n",
    "newline.csv": 'a,b\n1,"two\nlines"\n2,x\n',
}


@pytest.mark.parametrize("name", sorted(CSV_SHAPES))
def test_csv_sniffed_once_reads_as_duckdb_detects(tmp_path, name):
    """The CSV view is read with the dialect and types sniffed once (no sniffing at each use) and
    holds what DuckDB's auto-detecting reader gives, typed columns and text columns alike."""
    import duckdb

    from creditmodel.data.mapping import Source, _clean, _duckdb_csv

    path = tmp_path / name
    path.write_text(CSV_SHAPES[name], encoding="utf-8")
    delim = ";" if name == "quoted.csv" else ","
    con = duckdb.connect()
    auto = f"read_csv('{path}', header = true, delim = '{delim}', encoding = 'utf-8'"
    raw = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {auto})").fetchall()]
    text = {_clean(raw[-1])}
    view = _duckdb_csv(con, path, Source(path=str(path), delimiter=delim), "loans", None, text, "utf-8")
    assert "auto_detect = false" in con.execute(f"SELECT sql FROM duckdb_views() WHERE view_name = '{view}'").fetchall()[0][0]
    detected = f"SELECT * FROM {auto}, types = {{'{raw[-1]}': 'VARCHAR'}})"
    assert con.execute(f"SELECT * FROM {view}").fetchall() == con.execute(detected).fetchall()
    got_types = [r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {view}").fetchall()]
    assert got_types == [r[1] for r in con.execute(f"DESCRIBE {detected}").fetchall()]
    assert [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {view}").fetchall()] == [_clean(c) for c in raw]


@pytest.mark.parametrize("header", [True, False])
def test_gbk_csv_read_without_pyarrow_as_pyarrow_reads_it(tmp_path, header):
    """A GBK file whose columns are all read as text goes through a UTF-8 copy into DuckDB (no
    pyarrow import): the values, nulls and names are those of the pyarrow reader it replaces."""
    import duckdb
    import pyarrow.csv as pcsv

    from creditmodel.data.mapping import _ARROW_NULLS, Source, _decoded_csv, _read_csv
    from creditmodel.exceptions import DataContractError

    assert list(_ARROW_NULLS) == list(pcsv.ConvertOptions().null_values)
    body = ('客户号,金额,备注\n'
            'C01,"1,200元",NA\n\n'
            'C02,12.5万,"说""明"""\n'
            'C03,,NULL\n'
            'C04,"",n/a\n'
            'C05, 7 ,"甲,乙"\n')
    path = tmp_path / "ext.csv"
    names = None
    if not header:
        body, names = body.split("\n", 1)[1], ["客户号", "金额", "备注"]
    path.write_bytes(("# 导出\n" + body).encode("gbk"))
    source = Source(path=str(path), encoding="gbk", skip_rows=1, header=header, names=names)
    needed = {"客户号", "金额", "备注"}
    con = duckdb.connect()
    view = _decoded_csv(con, path, source, "loans", needed)
    got = con.execute(f"SELECT * FROM {view}").fetchall()
    expected = _read_csv(path, source, "loans", needed, needed)
    assert got == [tuple(row.values()) for row in expected.to_pylist()]
    assert [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {view}").fetchall()] == expected.column_names
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"a,b\n1,\xff\xfe\n")
    for read in (lambda: _decoded_csv(con, bad, Source(path=str(bad), encoding="gbk"), "loans", {"a", "b"}),
                 lambda: _read_csv(bad, Source(path=str(bad), encoding="gbk"), "loans", {"a", "b"}, {"a", "b"})):
        with pytest.raises(DataContractError) as failed:
            read()
        assert str(failed.value).startswith("loans: cannot decode bad.csv as gbk (illegal multibyte sequence at byte 6)")
    for read in (lambda: _decoded_csv(con, path, source, "loans", {"c"}),
                 lambda: _read_csv(path, source, "loans", {"c"}, {"c"})):
        with pytest.raises(DataContractError, match=r"^loans: source column 'c' not found in ext.csv; it has: '客户号'"):
            read()
