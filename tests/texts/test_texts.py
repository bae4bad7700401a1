"""The message catalogue: one id in both languages with the same fields; unknown language or id -> ConfigError."""

import re

import pytest

from creditmodel.config import MasterScaleConfig
from creditmodel.exceptions import ConfigError
from creditmodel.pricing import OUTPUT_COLUMNS, POLICY_COLUMNS
from creditmodel.texts import LANGS, catalogue, column_heading, fields_of, grade_name, text

CJK = re.compile(r"[\u4e00-\u9fff]")
CHINESE_TEXT = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")  # ideographs or full-width punctuation


def test_both_languages_hold_the_same_ids_and_fields():
    en, zh = catalogue("en"), catalogue("zh")
    assert set(en) == set(zh)
    for key in en:
        assert fields_of(en[key]) == fields_of(zh[key]), key
        assert CHINESE_TEXT.search(zh[key]), f"{key}: the zh text has no Chinese"


def test_text_fills_fields_in_each_language():
    assert text("price.summary", "en", n=3, exposure=1234567.0, out="p.csv") == \
        "priced 3 loans (exposure CNY 1,234,567) -> p.csv"
    assert text("price.summary", "zh", n=3, exposure=1234567.0, out="p.csv") == "已定价 3 笔贷款（风险暴露 1,234,567 元）-> p.csv"


def test_amounts_read_in_the_data_dictionary_currency():
    """{unit}: 元 in Chinese for yuan, the currency's code otherwise; the shipped CNY when none is given."""
    assert text("price.summary", "en", n=3, exposure=1e6, out="p.csv", currency="USD") == \
        "priced 3 loans (exposure USD 1,000,000) -> p.csv"
    assert text("price.summary", "zh", n=3, exposure=1e6, out="p.csv", currency="USD") == \
        "已定价 3 笔贷款（风险暴露 1,000,000 USD）-> p.csv"
    assert column_heading("ead", "zh") == column_heading("ead", "zh", "CNY") == "违约风险暴露（元）"
    assert column_heading("ead", "zh", "USD") == "违约风险暴露（USD）"
    assert column_heading("eva", "en", "USD") == "EVA (USD per year)"
    for lang in LANGS:  # no text names the yuan outright but the value formats of the shipped currency
        for key, template in catalogue(lang).items():
            if key != "value.cny":
                assert "CNY" not in template and "元" not in template.replace("{unit}", ""), (lang, key)


def test_every_shipped_grade_and_price_column_has_a_name_in_both_languages():
    for lang in LANGS:
        for g in MasterScaleConfig().grades:
            assert grade_name(g, lang) != g and grade_name(g, lang).startswith(g)
        for c in (*OUTPUT_COLUMNS, *POLICY_COLUMNS, "rate_for_target_raroc"):
            assert column_heading(c, lang) != c or lang == "en" and c in ("pd", "lgd"), (lang, c)
    assert column_heading("rate", "zh") == "执行利率"
    assert grade_name("Z9", "zh") == "Z9"  # a bank's own grade keeps its code


@pytest.mark.parametrize("call", [lambda: text("price.summary", "fr"), lambda: text("no.such.id", "en")])
def test_unknown_language_or_id_is_one_line(call):
    with pytest.raises(ConfigError) as info:
        call()
    assert "\n" not in str(info.value)


def test_the_manifest_states_the_configured_label_not_a_fixed_window():
    from creditmodel.export.bundle import _output_texts
    from creditmodel.features.labels import describe_label

    target = describe_label("dpd", window_months=18, dpd_threshold=60)
    out = _output_texts({"target": target["en"], "target_zh": target["zh"]})
    assert "18 months" in out["output"] and "60+ days" in out["output"] and "12-month" not in out["output"]
    assert "18个月" in out["output_zh"] and "60天" in out["output_zh"]
    assert "model_card.json" in _output_texts(None)["output"]
