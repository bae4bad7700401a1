"""The declarations themselves: complete, consistent with their SQL, portable, documented, and pointing
the right way on the synthetic world."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from creditmodel.data.synthetic import generate_world
from creditmodel.features.build import _BLOCKS, SOURCES, _referenced, build_features, compile_query
from creditmodel.features.catalogue import AGGREGATIONS, ATTRIBUTE_SOURCES, CATALOGUE, DIRECTIONS
from creditmodel.features.docs import catalogue_markdown
from creditmodel.features.labels import default_labels

ROOT = Path(__file__).resolve().parents[2]
FORMATS = {"float", "int", "pct", "cny", "days", "months", "years", "ratio", "flag", "cat"}


def test_every_feature_is_documented():
    for f in CATALOGUE:
        assert f.description.strip() and "\n" not in f.description, f.name
        assert f.reason.strip() and "\n" not in f.reason, f.name
        assert f.label.strip(), f.name
        assert f.direction in DIRECTIONS and f.direction in {-1, 0, 1}, f.name
        assert f.aggregation in AGGREGATIONS, f.name
        assert f.fmt in FORMATS and f.source in SOURCES, f.name
        assert f.window_days is None or f.window_days > 0, f.name
        if f.is_categorical:
            assert f.direction == 0 and f.fmt == "cat", f.name
        if f.aggregation == "count" and f.source not in ("derived", "repayment_history"):
            assert f.fill is not None, f"{f.name}: a count over an empty window is a number, not unknown"


def test_the_catalogue_covers_every_source_with_100_plus_features():
    counts = pd.Series([f.source for f in CATALOGUE]).value_counts()
    assert len(CATALOGUE) >= 100
    # every source but the bank's own attributes, which come from its data dictionary
    assert set(counts.index) == set(SOURCES) - set(ATTRIBUTE_SOURCES.values())
    # the transaction windows of the issue
    windows = {f.window_days for f in CATALOGUE if f.source == "transactions"}
    assert {30, 90, 180, 365} <= windows


def test_windows_in_the_sql_match_the_declarations():
    """A windowed expression carries its own window, so that pruning rows never changes a value."""
    for f in CATALOGUE:
        block = _BLOCKS.get(f.source)
        if block is None or f.window_days is None:
            continue
        if block.window_days is None or f.window_days < block.window_days:
            assert f"INTERVAL {f.window_days} DAY" in f.sql, f.name
        if block.window_days is None:
            found = {int(n) for n in re.findall(r"INTERVAL (\d+) DAY", f.sql)}
            assert max(found) == f.window_days, f.name


def test_derived_features_name_only_catalogue_features():
    names = {f.name for f in CATALOGUE}
    for f in CATALOGUE:
        if f.source != "derived":
            continue
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", f.sql)) - {"nullif", "coalesce", "greatest", "least"}
        assert words <= names, (f.name, words - names)
        assert all(n not in {g.name for g in CATALOGUE if g.source == "derived"} for n in words), f.name
        assert _referenced(f, CATALOGUE), f.name


# Functions and keywords that DuckDB and Spark SQL (via sqlglot) both understand with the same meaning.
PORTABLE = {
    "count", "sum", "avg", "min", "max", "stddev_pop", "stddev_samp", "max_by", "min_by", "date_diff", "coalesce",
    "nullif", "greatest", "least", "ln", "sqrt", "pow", "abs", "floor", "cast", "year", "lag", "row_number",
    # keywords followed by a parenthesis
    "select", "from", "join", "on", "and", "or", "not", "as", "over", "filter", "where", "in", "then", "else", "when",
    "is", "null", "end", "case", "distinct", "by", "all", "union",
}


def test_the_compiled_sql_is_portable():
    sql = compile_query(CATALOGUE)
    for banned in (r"\barg_(max|min)\b", r"\blist_\w*", r"\bstruct_\w*", r"regexp", r"::", r"GROUP BY ALL",
                   r"\bQUALIFY\b", r"\bepoch\b", r"\bstrftime\b", r"\bdate_trunc\b", r"\bdatediff\b", r"\bEXCLUDE\b"):
        assert not re.search(banned, sql, flags=re.IGNORECASE), banned
    called = {name.lower() for name in re.findall(r"([A-Za-z_]+)\s*\(", sql)}
    assert called <= PORTABLE, sorted(called - PORTABLE)
    assert set(re.findall(r"date_diff\('(\w+)'", sql)) <= {"day", "month"}
    assert set(re.findall(r"INTERVAL \d+ (\w+)", sql)) <= {"DAY", "MONTH"}


def test_the_catalogue_page_is_up_to_date():
    page = (ROOT / "docs" / "feature_catalogue.md").read_text(encoding="utf-8")
    assert page == catalogue_markdown(), "regenerate it: python -m creditmodel.features.docs"
    for f in CATALOGUE:
        assert f"| `{f.name}` |" in page


@pytest.fixture(scope="module")
def labelled_world():
    """3,000 borrowers: features of every loan whose 12-month performance window is complete, and the label."""
    world = generate_world(3000, seed=0)
    frame = build_features(world.tables)
    label = frame["loan_id"].map(default_labels(world.tables["loans"], world.tables["repayments"],
                                                world.extraction_date))
    keep = label.notna().to_numpy()
    return frame[keep].reset_index(drop=True), label[keep].astype(int).reset_index(drop=True)


def test_every_feature_carries_information(labelled_world):
    frame, _ = labelled_world
    for f in CATALOGUE:
        assert frame[f.name].nunique(dropna=True) > 1, f.name


def test_directions_are_not_contradicted_by_the_synthetic_world(labelled_world):
    """Where a feature has a declared direction and enough data (500 loans with a value, 30 defaults among
    them), its Spearman correlation with default must not point clearly the other way."""
    frame, label = labelled_world
    wrong, checked = {}, 0
    for f in CATALOGUE:
        if f.direction == 0:
            continue
        x = frame[f.name]
        has = x.notna().to_numpy()
        if has.sum() < 500 or label[has].sum() < 30 or x[has].nunique() < 2:
            continue
        checked += 1
        rho = spearmanr(x[has], label[has]).statistic
        if rho * f.direction < -0.05:
            wrong[f.name] = round(float(rho), 3)
    assert checked >= 80
    assert not wrong, f"correlation with default against the declared direction: {wrong}"


def test_the_strongest_signals_point_the_declared_way(labelled_world):
    frame, label = labelled_world
    for name, direction in (("txn_cash_share_12m", 1), ("txn_pos_share_12m", -1), ("fs_leverage", 1),
                            ("fs_profit_margin", -1), ("txn_inflow_count_12m", -1), ("env_failed_share_24m", 1)):
        x = frame[name]
        has = x.notna().to_numpy()
        assert spearmanr(x[has], label[has]).statistic * direction > 0.05, name


def test_no_feature_is_infinite(labelled_world):
    frame, _ = labelled_world
    values = frame[[f.name for f in CATALOGUE if not f.is_categorical]].to_numpy(dtype=float)
    assert not np.isinf(values).any()


def test_reason_codes_read_the_catalogue_reason_with_the_value():
    from creditmodel.validation.explain import reason_text

    assert reason_text("txn_inflow_3m", 12_000.4) == "Low receipts over the last 3 months: CNY 12,000"
    cash = "High share of receipts taken in cash over the last 12 months: 42%"
    assert reason_text("txn_cash_share_12m", 0.42) == cash
    assert reason_text("fs_leverage", float("nan")) == "High leverage: not available"


def test_every_feature_has_a_chinese_label_and_reason():
    from creditmodel.features.catalogue_zh import ZH

    cjk = re.compile(r"[\u4e00-\u9fff]")
    missing = [f.name for f in CATALOGUE if not (cjk.search(f.label_zh) and cjk.search(f.reason_zh))]
    assert not missing, f"features without label_zh/reason_zh: {missing}"
    assert set(ZH) <= {f.name for f in CATALOGUE}, "Chinese texts of features that do not exist"
    assert all("\n" not in f.label_zh + f.reason_zh for f in CATALOGUE)


def test_the_schema_gives_the_reason_in_either_language():
    from creditmodel.features.matrix import FeatureSchema

    schema = FeatureSchema(("fs_leverage",), {}, {}, frozenset(), {}, {})
    assert schema.reason("fs_leverage") == "High leverage"
    assert schema.reason("fs_leverage", "zh") == "负债率高"


def test_a_category_reads_as_the_label_the_schema_carries_else_the_shipped_one():
    from creditmodel.data.dictionary import default_dictionary
    from creditmodel.features.matrix import FeatureSchema
    from creditmodel.features.reasons import format_value

    shipped = default_dictionary().labels["industry"]["furniture"]["zh"]
    assert format_value("industry", "furniture", "zh") == shipped  # no labels given: the shipped dictionary's
    assert format_value("industry", "furniture", "zh", labels={"furniture": {"zh": "木器"}}) == "木器"
    assert format_value("industry", "furniture", "zh", labels={}) == "furniture"  # the bank labelled it not
    assert format_value("industry", "furniture", "en", labels={"furniture": {"zh": "木器"}}) == "furniture"
    # a schema keeps the labels of its categorical features named as a vocabulary, and reads them back
    bank = {"industry": {"furniture": {"en": "Furniture", "zh": "木器"}, "other": {"zh": "其他"}},
            "channel": {"cash": {"zh": "现金"}}}
    schema = FeatureSchema.for_columns(["industry", "fs_leverage"], labels=bank)
    assert schema.labels == {"industry": {"furniture": {"en": "Furniture", "zh": "木器"}}}  # its categories only
    assert FeatureSchema.from_dict(schema.to_dict()).labels == schema.labels
    assert "labels" not in FeatureSchema.for_columns(["industry"]).to_dict()["features"][0]


@pytest.mark.parametrize(("name", "value", "en", "zh"), [
    ("loan_amount", 1234567.5, "The amount applied for: CNY 1,234,568", "申请金额：1,234,568 元"),
    ("term_months", 36.0, "The loan term: 36 months", "贷款期限：36 个月"),
    ("firm_age_years", 3.25, "Young business: 3.2 years", "经营年限短：3.2 年"),
    ("loan_to_registered_capital", 0.125, "Loan is large relative to the registered capital: 0.12",
     "贷款金额相对注册资本偏大：0.12"),
    ("reg_legal_rep_changes_12m", 1234.0, "Legal-representative changes in the last 12 months: 1,234",
     "近12个月法定代表人有变更：1,234"),
    ("reg_days_since_legal_rep_change", 45.0, "Legal representative changed recently: 45 days",
     "近期变更过法定代表人：45 天"),
    ("reg_abnormal_listed_now", 1.0, "Listed as operating abnormally: yes", "被列入经营异常名录：是"),
    ("reg_abnormal_listed_now", 0.0, "Listed as operating abnormally: no", "被列入经营异常名录：否"),
    ("env_failed_share_24m", 0.355, "Often fails environmental inspections: 36%", "环保检查经常不合格：36%"),
    ("fs_leverage", None, "High leverage: not available", "负债率高：无数据"),
])
def test_a_reason_writer_set_up_once_writes_what_one_reason_text_writes(name, value, en, zh):
    """Each value format, as an officer reads it (hand-written): a batch's writer, set up once per feature
    and language, and the one-value function give the same text."""
    from creditmodel.features.reasons import reason_formatter, reason_text

    for lang, said in (("en", en), ("zh", zh)):
        assert reason_text(name, value, lang) == said
        write = reason_formatter(name, lang)
        assert [write(value), write(value)] == [said, said]


def test_a_reason_template_that_shapes_the_value_is_written_whole_each_time(monkeypatch):
    """A catalogue whose reason template formats the value itself (here padded) is not cut around the
    value: the writer fills the template each time, as the text function does."""
    from creditmodel import texts
    from creditmodel.features.reasons import reason_formatter, reason_text

    shaped = {**texts.catalogue("en"), "reason.with_value": "{reason} -> [{value:>12}]"}
    monkeypatch.setattr(texts, "catalogue", lambda lang: shaped)
    write = reason_formatter("fs_leverage", "en", currency="USD")
    assert write(0.5) == reason_text("fs_leverage", 0.5, "en") == "High leverage -> [         50%]"
    assert write(None) == "High leverage -> [not available]"
