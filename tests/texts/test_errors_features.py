"""The boundary errors of the features (as-of lists, stores, SQL translations, catalogue, labels) read in
Simplified Chinese as well as English: raised by the real code, each says the same in one line of each."""

from dataclasses import replace
from datetime import date

import pandas as pd
import pytest

from creditmodel.data.dictionary import default_dictionary, parse_dictionary
from creditmodel.exceptions import ConfigError, DataContractError, RequestError, StoreError
from creditmodel.features.asof import AsOfFeatures, read_enterprises
from creditmodel.features.catalogue import CATALOGUE, attribute_features, register
from creditmodel.features.labels import flag_labels, make_labels
from creditmodel.features.matrix import FeatureSchema
from creditmodel.features.online import build_store, parse_store
from creditmodel.features.online_pg import parse_pg_store
from creditmodel.features.postgres import PostgresTranslationError, to_postgres_sql
from creditmodel.features.spark import SparkTranslationError, spark_query


def _said(exc: BaseException, en: str, zh: str) -> None:
    assert str(exc) == en
    assert exc.in_lang("zh") == zh  # type: ignore[attr-defined]
    assert "\n" not in zh


def _listing() -> AsOfFeatures:
    """The list checks of AsOfFeatures, which read only the bank's own loan columns (none here)."""
    features = object.__new__(AsOfFeatures)
    features._attrs = []
    return features


def test_as_of_list_errors(tmp_path):
    with pytest.raises(ConfigError) as err:
        read_enterprises(tmp_path / "absent.csv")
    _said(err.value, f"--enterprises {tmp_path / 'absent.csv'}: no such file",
          f"--enterprises {tmp_path / 'absent.csv'}：文件不存在")

    listed = pd.DataFrame({"enterprise_id": [3, 5, 3]})
    with pytest.raises(ConfigError) as err:
        _listing().check_listed(listed)
    _said(err.value, "--enterprises: enterprise_id 3 is listed twice", "--enterprises：enterprise_id 3 重复列出")

    terms = pd.DataFrame({"enterprise_id": [1], "amount": [1000.0], "term_months": [1.5], "product": ["x"],
                          "guarantee_type": ["credit"]})
    with pytest.raises(ConfigError) as err:
        _listing().check_listed(terms, where="rerate.csv")
    _said(err.value, "rerate.csv: term_months 1.5 is not a positive integer", "rerate.csv：term_months 1.5 不是正整数")

    features = _listing()
    features.first_date = date(2020, 1, 1)
    with pytest.raises(ConfigError) as err:
        features.check_date("2020-01-01")
    _said(err.value, "--as-of 2020-01-01: not after the store's first data (2020-01-01); no history to score from",
          "--as-of 2020-01-01：评估基准日不晚于数据库最早数据的日期（2020-01-01）；没有可用于评分的历史")


def test_store_errors(tmp_path):
    with pytest.raises(StoreError) as err:
        parse_store(tmp_path / "absent.duckdb")
    where = repr(str(tmp_path / "absent.duckdb"))
    _said(err.value, f"store {where}: no such DuckDB file (build one with `creditmodel store build`)",
          f"数据库 {where}：没有该 DuckDB 文件（可用 `creditmodel store build` 构建）")

    with pytest.raises(DataContractError) as err:
        build_store({}, tmp_path / "empty.duckdb")
    _said(err.value, "store: the loans and enterprises tables are needed (found none)",
          "数据库：需要 loans 和 enterprises 表（一张表也没有）")

    with pytest.raises(StoreError) as err:
        parse_pg_store("postgresql://risk:secret@db.bank:5432/features?schema=Risk-Store")
    _said(err.value, "store postgresql://risk@db.bank:5432/features?schema=Risk-Store: schema 'Risk-Store' is not a "
                     "plain lower-case SQL name (letters, digits, _)",
          "数据库 postgresql://risk@db.bank:5432/features?schema=Risk-Store：模式名 'Risk-Store' 不是普通的小写 SQL "
          "名称（字母、数字、_）")
    assert "secret" not in err.value.in_lang("zh")


def test_translation_errors_say_their_reasons_in_the_same_language():
    with pytest.raises(PostgresTranslationError) as err:
        to_postgres_sql("SELECT date_diff('decade', a, b) FROM t")
    _said(err.value, "DATE_DIFF('DECADE', a, b): date_diff unit 'DECADE' has no PostgreSQL translation; expected one "
                     "of day, week, month, quarter, year, hour, minute, second",
          "DATE_DIFF('DECADE', a, b)：date_diff 的单位 'DECADE' 无法转换为 PostgreSQL；应为以下之一：day, week, month, "
          "quarter, year, hour, minute, second")

    base = next(f for f in CATALOGUE if f.name == "loan_amount")
    decade = replace(base, name="decades", sql="date_diff('decade', a.decision_date, a.decision_date)")
    top = replace(base, name="top_amounts", sql="arg_max(a.amount, a.decision_date, 3)")
    with pytest.raises(SparkTranslationError) as err:
        spark_query([base, decade, top])
    _said(err.value,
          "features without a Spark translation: decades (DATE_DIFF('DECADE', a.decision_date, a.decision_date): "
          "date_diff unit 'DECADE' has no Spark translation; expected one of day, week, month, quarter, year, hour, "
          "minute, second); top_amounts (ARG_MAX(a.amount, a.decision_date, 3): the 3-argument (top-n list) form has "
          "no Spark translation)",
          "无法转换为 Spark 的特征：decades（DATE_DIFF('DECADE', a.decision_date, a.decision_date)：date_diff 的单位 "
          "'DECADE' 无法转换为 Spark；应为以下之一：day, week, month, quarter, year, hour, minute, second）；"
          "top_amounts（ARG_MAX(a.amount, a.decision_date, 3)：三参数形式（取前 n 个的列表）无法转换为 Spark）")


def test_catalogue_matrix_and_label_errors():
    d = parse_dictionary({"attributes": [{"table": "loans", "name": "loan_amount", "kind": "numeric"}]},
                         defaults=default_dictionary())
    with pytest.raises(ConfigError) as err:
        register(attribute_features(d.attributes))
    _said(err.value, "attribute 'loan_amount' has the name of a catalogue feature; rename the column",
          "属性 'loan_amount' 与特征目录中的特征同名；请将该列改名")

    schema = FeatureSchema.for_columns(["loan_amount", "term_months"])
    with pytest.raises(RequestError) as err:
        schema.check_columns(["loan_amount"], where="applications.parquet")
    _said(err.value, "applications.parquet: feature 'term_months' is missing (expected all of the 2 features; "
                     "1 missing)",
          "applications.parquet：缺少特征 'term_months'（应提供全部 2 个特征，缺少 1 个）")

    loans = pd.DataFrame({"loan_id": [1, 2, 3], "defaulted": [0, 2, 1]})
    with pytest.raises(DataContractError) as err:
        flag_labels(loans, "loans.defaulted")
    _said(err.value, "label column loans.defaulted: value 2 is not 0 or 1 (1 rows)",
          "标签列 loans.defaulted：取值 2 不是 0 或 1（共 1 行）")
    assert err.value.failures_in("zh") == ("标签列 loans.defaulted：取值 2 不是 0 或 1（共 1 行）",)

    with pytest.raises(DataContractError) as err:
        make_labels({"loans": loans}, pd.Timestamp("2024-12-31"))
    _said(err.value, "table repayments is missing: label kind 'dpd' derives defaults from it (or set [label] kind = "
                     "'flag' / 'default_date' with a loans column)",
          "缺少 repayments 表：标签类型 'dpd' 依据该表判定违约（或设置 [label] kind = 'flag' / 'default_date' 并指定 "
          "loans 表的一列）")
