"""The errors of reading the canonical tables (data/io.py) and of mapping a bank's extracts (data/mapping.py)
are texts of the message catalogue: raised by the real code, each says the same thing in English (as before)
and in Simplified Chinese, on one line, with the data (paths, tables, columns, values) left as they are."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from creditmodel.data import io, mapping
from creditmodel.exceptions import ConfigError, DataContractError
from creditmodel.texts import has_text


def _said(exc: pytest.ExceptionInfo, en: str, zh: str) -> None:
    assert str(exc.value) == en
    assert exc.value.in_lang("zh") == zh
    assert "\n" not in zh and re.search(r"[\u4e00-\u9fff]", zh)


# --- data/io.py -------------------------------------------------------------------------------


def test_missing_source(tmp_path):
    with pytest.raises(DataContractError) as exc:
        io.read_tables(tmp_path / "nope")
    _said(exc, f"{tmp_path / 'nope'}: data source not found", f"{tmp_path / 'nope'}：找不到数据源")


def test_a_table_in_three_forms_lists_them_in_each_language(tmp_path):
    (tmp_path / "loans.csv").write_text("a\n1\n")
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "loans.parquet")
    (tmp_path / "loans").mkdir()
    with pytest.raises(DataContractError) as exc:
        io.read_tables(tmp_path)
    _said(exc, f"{tmp_path}: table 'loans' is present as loans.parquet and loans.csv and loans/; keep one",
          f"{tmp_path}：表 'loans' 同时以 loans.parquet、loans.csv、loans/ 形式存在；请只保留一种")


def test_wrong_delimiter_names_tab_in_each_language(tmp_path):
    (tmp_path / "loans.csv").write_text("a\tb\n1\t2\n")
    with pytest.raises(DataContractError) as exc:
        io.read_tables(tmp_path)
    path = tmp_path / "loans.csv"
    _said(exc, f"{path}: the header has a single column 'a\\tb'; the delimiter looks wrong (read with ',', the "
               f"header contains tab); pass --delimiter '\\t'",
          f"{path}：表头只有一列 'a\\tb'，分隔符似乎不对（读取所用的分隔符：','；表头中含有：制表符）；"
          f"请传入 --delimiter '\\t'")


@pytest.mark.parametrize("rows, en, zh", [
    ("1,2023-01-01\n2,xx\n", "1 row, e.g. rows 1", "共 1 行，例如第 1 行"),
    ("1,xx\n2,yy\n", "2 rows, e.g. rows 0, 1", "共 2 行，例如第 0, 1 行"),
])
def test_bad_csv_date_one_row_or_many(tmp_path, rows, en, zh):
    (tmp_path / "loans.csv").write_text("loan_id,application_date\n" + rows)
    with pytest.raises(DataContractError) as exc:
        io.read_tables(tmp_path)
    _said(exc, f"loans.application_date: value 'xx' is not a valid date in loans.csv; {en} (expected e.g. 2023-01-31)",
          f"loans.application_date：loans.csv 中的取值 'xx' 不是有效日期；{zh}（应如 2023-01-31）")


def test_no_extraction_date_in_a_duckdb_file(tmp_path):
    path = tmp_path / "bank.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(ConfigError) as exc:
        io.resolve_extraction_date(None, path)
    _said(exc, f"{path}: no extraction date; set extraction_date = YYYY-MM-DD in the run configuration or declare it "
               f'in a table _dataset with a column extraction_date in {path} ({{"extraction_date": "YYYY-MM-DD"}})',
          f"{path}：没有数据提取日；请在运行配置中设置 extraction_date = YYYY-MM-DD，或在以下位置声明：{path} 中含 "
          f'extraction_date 列的表 _dataset（{{"extraction_date": "YYYY-MM-DD"}}）')


def test_declared_date_in_a_duckdb_table(tmp_path):
    path = tmp_path / "bank.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE _dataset AS SELECT 'soon' AS extraction_date")
    with pytest.raises(DataContractError) as exc:
        io.declared_extraction_date(path)
    _said(exc, f"{path}: table _dataset: extraction_date 'soon' is not a date; expected \"YYYY-MM-DD\"",
          f"{path}：表 _dataset：extraction_date 'soon' 不是日期；应为 \"YYYY-MM-DD\"")


def test_writing_what_is_no_frame(tmp_path):
    with pytest.raises(DataContractError) as exc:
        io.write_tables({"loans": [1, 2]}, tmp_path / "out")
    _said(exc, "cannot write table 'loans': not a pandas DataFrame (got list)",
          "无法写出表 'loans'：不是 pandas DataFrame（实际为 list）")


# --- data/mapping.py: the mapping file --------------------------------------------------------

BASE = """extraction_date = 2024-06-30
[tables.loans]
source = { path = "loans.csv" }
[tables.loans.columns]
loan_id = "id"
amount = "amt"
"""


def _mapping(tmp_path: Path, text: str, csv: str = "id,amt,code\n1,100,A\n2,200,B\n") -> Path:
    (tmp_path / "loans.csv").write_text(csv, encoding="utf-8")
    path = tmp_path / "mapping.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("edit, en, zh", [
    (('amount = "amt"', 'amount = { column = "amt", value = 1 }'),
     "tables.loans.columns.amount: give exactly one of column, value, expr or row_number = true (got column, value)",
     "tables.loans.columns.amount：column、value、expr 和 row_number = true 应恰好给出一项（实际给出了 column, value）"),
    (('amount = "amt"', 'amount = { column = "amt", cast = "integer" }'),   # pydantic's own, in Chinese
     "tables.loans.columns.amount.cast: Input should be 'int', 'float', 'str', 'bool', 'date' or 'timestamp' "
     "(got 'integer')",
     "tables.loans.columns.amount.cast：取值应为 'int'、'float'、'str'、'bool'、'date' 或 'timestamp'"
     "（实际为 'integer'）"),
    (('2024-06-30', '"soon"'),   # pydantic's detail after the comma stays as pydantic writes it
     "extraction_date: Input should be a valid date or datetime, input is too short (got 'soon')",
     "extraction_date：应为有效的日期或日期时间（input is too short）（实际为 'soon'）"),
    (('amount = "amt"', 'amount = { column = "amt", kast = "int", bla = 1 }'),
     "tables.loans.columns.amount.kast: Extra inputs are not permitted (got 'int') (and 1 more problem)",
     "tables.loans.columns.amount.kast：不允许的字段（实际为 'int'）（另有 1 处问题）"),
    (("loans.csv", "loans.xyz"),
     "tables.loans.source: cannot tell the format of 'loans.xyz' from its suffix; set format = \"csv\", \"excel\" "
     "or \"parquet\"",
     "tables.loans.source：无法根据后缀判断 'loans.xyz' 的格式；请设置 format = \"csv\"、\"excel\" 或 \"parquet\""),
])
def test_mapping_file_problems(tmp_path, edit, en, zh):
    path = _mapping(tmp_path, BASE.replace(*edit))
    with pytest.raises(ConfigError) as exc:
        mapping.load_mapping(path)
    _said(exc, f"{path}: {en}", f"{path}：{zh}")


# --- data/mapping.py: the source data ---------------------------------------------------------


def test_values_not_in_the_value_map(tmp_path):
    csv = "id,amt,code\n" + "".join(f"{i},1,C{i % 8}\n" for i in range(20))
    path = _mapping(tmp_path, BASE + 'product = { column = "code", map = { micro = ["A"] } }\n', csv)
    with pytest.raises(DataContractError) as exc:
        mapping.map_tables(*mapping.load_mapping(path))
    _said(exc, "loans.product (source column 'code' in loans.csv): 8 source values not in map: 'C0' (3 rows), "
               "'C1' (3 rows), 'C2' (3 rows), 'C3' (3 rows), 'C4' (2 rows) and 3 more; add them to map or set "
               'other = "..."',
          "loans.product（源列 'code'，来源：loans.csv）：有 8 个源值不在 map 中：'C0'（3 行）、'C1'（3 行）、"
          "'C2'（3 行）、'C3'（3 行）、'C4'（2 行），另有 3 个；请将其加入 map，或设置 other = \"...\"")


def test_money_strings_in_a_number_column(tmp_path):
    path = _mapping(tmp_path, BASE, 'id,amt\n1,100\n2,"1,200"\n')
    with pytest.raises(DataContractError) as exc:
        mapping.map_tables(*mapping.load_mapping(path))
    _said(exc, "loans.amount (source column 'amt' in loans.csv): 1 value is not numbers (money strings such as "
               "\"1,200\" need money = true), e.g. '1,200'",
          "loans.amount（源列 'amt'，来源：loans.csv）：有 1 个取值不是数字（\"1,200\" 这样的金额字符串须设置 "
          "money = true），例如 '1,200'")


def test_missing_source_columns(tmp_path):
    path = _mapping(tmp_path, BASE.replace('"amt"', '"amount"').replace('"id"', '"ident"'))
    with pytest.raises(DataContractError) as exc:
        mapping.map_tables(*mapping.load_mapping(path))
    _said(exc, "loans: source column 'amount' not found in loans.csv (nor 'ident'); it has: 'id', 'amt', 'code'",
          "loans：找不到源列 'amount'（也没有 'ident'；来源：loans.csv）；现有的列：'id', 'amt', 'code'")


def test_convert_values(tmp_path):
    with pytest.raises(DataContractError) as exc:
        mapping.convert_values(mapping.ColumnMapping(column="x", cast="int"), ["1", "b"], "int")
    _said(exc, "loans.value (source column 'x' in the values given): 1 value is not whole numbers, e.g. 'b'",
          "loans.value（源列 'x'，来源：所给取值）：有 1 个取值不是整数，例如 'b'")


def test_every_check_of_the_mapping_sql_is_said_in_chinese():
    """What a failed check's values should have been (mapping_sql's ``check=``) has a text of the catalogue."""
    source = (Path(mapping.__file__).parent / "mapping_sql.py").read_text(encoding="utf-8")
    checks = re.findall(r"""check=(['"])(.*?)\1""", source)
    assert len(checks) >= 8
    spec = mapping.ColumnMapping(column="x", date="%d/%m/%y")
    for _, check in checks:
        if check == "in map":   # a value map's failures have their own text
            continue
        said = mapping._expected(check, spec)
        assert not isinstance(said, str) and has_text(said.id, "zh"), check
    assert mapping._expected(f"dates in the format {spec.date!r}", spec).id == "error.mapping.expect.date_format"
