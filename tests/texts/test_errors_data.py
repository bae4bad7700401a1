"""The errors of the data layer and of pricing are texts of the message catalogue: the English as before, the
Chinese one line and Chinese throughout (data such as paths, columns, keys and values kept as they are); a
contract failure says every failed rule in each language."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from creditmodel.config import PricingConfig
from creditmodel.data.contracts import validate_tables
from creditmodel.data.dictionary import default_dictionary, load_dictionary, parse_dictionary
from creditmodel.data.parquet_table import ParquetTable
from creditmodel.data.policy import policy_flags
from creditmodel.data.synthetic import generate_world
from creditmodel.exceptions import ConfigError, CreditModelError, DataContractError, RequestError
from creditmodel.pricing.engine import price
from creditmodel.pricing.grid import rate_grid
from creditmodel.pricing.guarantees import check_guarantees

ENGLISH_WORD = re.compile(r"\b(expected|missing|is not|not in|cannot|rows?|value|values|failures?|policy|the)\b")


def _said(exc: CreditModelError, en: str, zh: str) -> None:
    assert str(exc) == en
    chinese = exc.in_lang("zh")
    assert chinese == zh
    assert "\n" not in chinese


@pytest.fixture(scope="module")
def world_tables() -> dict[str, pd.DataFrame]:
    w = generate_world(50, seed=1)
    return {name: w.tables[name].copy() for name in ("enterprises", "loans")}


def test_a_contract_failure_says_every_failure_in_both_languages(world_tables):
    tables = {name: df.copy() for name, df in world_tables.items()}  # repayments left out: a required table
    loans, enterprises = tables["loans"], tables["enterprises"]
    loans.loc[[0, 3], "guarantee_type"] = "gold"
    loans.loc[5, "amount"] = -1.0
    enterprises["registered_capital"] = enterprises["registered_capital"].astype(object)
    enterprises.loc[2, "registered_capital"] = "abc"
    with pytest.raises(DataContractError) as caught:
        validate_tables(tables, extraction_date="2025-06-30")
    exc = caught.value
    _said(exc,
          "enterprises.registered_capital: value 'abc' cannot be read as a number; 1 row, e.g. enterprise_id 3 "
          "(+3 more failures)",
          "enterprises.registered_capital：取值 'abc' 无法读作数字；共 1 行，例如 enterprise_id 3（另有 3 处不符合）")
    assert exc.failures == (
        "enterprises.registered_capital: value 'abc' cannot be read as a number; 1 row, e.g. enterprise_id 3",
        "loans.guarantee_type: value 'gold' not in allowed categories (unsecured, third_party, collateral, "
        "joint_group); to allow it, add it to vocabularies.guarantee_type of the data dictionary; 2 rows, "
        "e.g. loan_id 1, 4",
        "loans.amount: value -1 below minimum 1; 1 row, e.g. loan_id 6",
        "repayments: required table missing (tables given: enterprises, loans)",
    )
    assert exc.failures_in("en") == exc.failures
    assert exc.failures_in("zh") == (
        "enterprises.registered_capital：取值 'abc' 无法读作数字；共 1 行，例如 enterprise_id 3",
        "loans.guarantee_type：取值 'gold' 不在允许的类别（unsecured, third_party, collateral, joint_group）之内；"
        "如需允许，请将其加入数据字典的 vocabularies.guarantee_type；共 2 行，例如 loan_id 1, 4",
        "loans.amount：取值 -1 低于下限 1；共 1 行，例如 loan_id 6",
        "repayments：缺少必需的表（已提供的表：enterprises, loans）",
    )
    for line in exc.failures_in("zh"):
        assert "\n" not in line and not ENGLISH_WORD.search(line), line


def test_a_single_contract_failure_is_the_message_itself(world_tables):
    tables = {"enterprises": world_tables["enterprises"], "loans": world_tables["loans"],
              "repayments": pd.DataFrame()}
    with pytest.raises(DataContractError) as caught:
        validate_tables(tables)
    _said(caught.value, "repayments: table is empty (0 rows)", "repayments：表为空（0 行）")
    assert caught.value.failures_in("zh") == ("repayments：表为空（0 行）",)


def test_data_dictionary_errors_name_the_file_and_the_key(tmp_path):
    bad = {"attributes": [{"table": "loans", "name": "land_area", "kind": "categorical", "categories": ["a"],
                           "direction": 1}]}
    with pytest.raises(ConfigError) as caught:
        parse_dictionary(bad, source=f"data dictionary {tmp_path / 'bank.toml'}", defaults=default_dictionary())
    _said(caught.value,
          f"data dictionary {tmp_path / 'bank.toml'}: attribute loans.land_area.direction: a categorical "
          f"attribute has no risk direction (use 0)",
          f"数据字典（{tmp_path / 'bank.toml'}）：属性 loans.land_area.direction：分类属性没有风险方向（请用 0）")
    with pytest.raises(ConfigError) as caught:
        parse_dictionary({"currency": ""})
    _said(caught.value, "data dictionary: currency: expected a currency code such as \"CNY\", got ''",
          "数据字典：currency：应为币种代码（例如 \"CNY\"），实际为 ''")
    with pytest.raises(ConfigError) as caught:
        load_dictionary(tmp_path / "none.toml")
    _said(caught.value, f"data dictionary {tmp_path / 'none.toml'} does not exist",
          f"数据字典 {tmp_path / 'none.toml'} 不存在")


def test_policy_synthetic_and_parquet_errors():
    with pytest.raises(DataContractError) as caught:
        policy_flags(pd.DataFrame({"loan_id": [1]}))
    _said(caught.value,
          "policy approval_authority: column loans.amount is missing; the rule of the default data dictionary "
          "cannot be applied",
          "政策规则 approval_authority：缺少列 loans.amount；默认数据字典中的这条规则无法应用")
    with pytest.raises(ConfigError) as caught:
        generate_world(60, start="2025-01-01", extraction_date="2025-01-15")
    _said(caught.value, "extraction_date='2025-01-15': expected at least one month after start 2025-01-01",
          "extraction_date='2025-01-15'：应为比 start（2025-01-01）至少晚一个月的日期")
    with pytest.raises(DataContractError) as caught:
        ParquetTable("loans", ())
    _said(caught.value, "table loans: no parquet file given", "表 loans：未给出 parquet 文件")


def test_pricing_errors():
    config = PricingConfig()
    with pytest.raises(RequestError) as caught:
        price(pd.DataFrame({"loan_id": [1], "pd": [0.1], "guarantee_type": ["unsecured"], "collateral_value": [5.0],
                            "collateral_type": ["gold"]}), config)
    _said(caught.value,
          "pricing input: collateral_type 'gold' has no haircut (loan_id 1); expected one of ['building', "
          "'deposit_pledge', 'equipment', 'forest_right', 'land_use_right']",
          "定价输入：抵押物类型 collateral_type 'gold' 没有折扣率（贷款编号 1）；应为以下之一：['building', "
          "'deposit_pledge', 'equipment', 'forest_right', 'land_use_right']")
    with pytest.raises(RequestError) as caught:
        check_guarantees(pd.DataFrame({"loan_id": [1, 2], "guarantor_id": [20, 10]}),
                         pd.DataFrame({"loan_id": [1, 2], "enterprise_id": [10, 20]}), lambda g: True)
    _said(caught.value,
          "guarantees: circular guarantees 10 -> 20 -> 10 (each guarantees the next); a circle protects nobody",
          "担保信息：循环担保 10 -> 20 -> 10（依次为后者担保）；循环担保不提供任何保障")
    with pytest.raises(RequestError) as caught:
        rate_grid(["A1"], [0.01], ["agri"], config, amounts=[])
    _said(caught.value, "price grid: amount 'list' is not an exposure; expected amounts > 0",
          "利率表：金额列表为空；金额应大于 0")
