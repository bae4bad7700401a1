"""Labels as banks define them: DPD with any window, a default flag, a default date with a window."""

import pandas as pd
import pytest

from creditmodel.config import build_config
from creditmodel.exceptions import ConfigError, DataContractError
from creditmodel.export.model_card import build_model_card
from creditmodel.features.labels import default_labels, describe_label, make_labels

D = pd.Timestamp


def _loans(**extra):
    base = {"loan_id": [1, 2, 3, 4, 5],
            "application_date": [D("2000-01-15"), D("2000-01-15"), D("2000-01-15"), D("2019-03-01"), D("2024-01-01")]}
    return pd.DataFrame({**base, **extra})


def test_dpd_window_beyond_sixty_months():
    loans = _loans()
    rep = pd.DataFrame({"loan_id": [1, 2, 3, 4], "days_past_due": [90, 90, 30, 120],
                        "date": [D("2024-01-15"), D("2025-01-16"), D("2010-01-01"), D("2020-01-01")]})
    y = default_labels(loans, rep, D("2025-06-30"), window_months=300)
    # 300 months after 2000-01-15 is 2025-01-15: loan 1 at 2024-01-15 is in, loan 2 a day after the end is out;
    # loans 4 and 5 have windows ending 2044 and 2049: unlabelled although loan 4 already reached 120 DPD
    assert y.loc[1] == 1 and y.loc[2] == 0 and y.loc[3] == 0
    assert pd.isna(y.loc[4]) and pd.isna(y.loc[5])
    assert y.name == "default_300m"
    assert build_config({"label": {"window_months": 300}}).label.window_months == 300


def test_default_date_with_a_window():
    loans = _loans(default_date=[D("2001-01-15"), D("2001-01-16"), None, D("2019-06-01"), D("2024-05-01")])
    y = make_labels({"loans": loans}, D("2025-06-30"), kind="default_date", column="loans.default_date",
                    window_months=12)
    # window (2000-01-15, 2001-01-15]: loan 1 defaults on the last day (in), loan 2 a day later (good),
    # loan 3 never; loan 4 (window to 2020-03-01) defaults inside; loan 5's window ends 2025-01-01 <= extraction
    assert y.to_dict() == {1: 1, 2: 0, 3: 0, 4: 1, 5: 1}
    y_late = make_labels({"loans": loans}, D("2024-12-31"), kind="default_date", column="default_date",
                         window_months=12)
    assert pd.isna(y_late.loc[5]) and y_late.loc[4] == 1


def test_flag_as_recorded():
    loans = _loans(defaulted=[1, 0, None, True, 0])
    y = make_labels({"loans": loans}, D("2025-06-30"), kind="flag", column="loans.defaulted")
    assert y.loc[1] == 1 and y.loc[2] == 0 and pd.isna(y.loc[3]) and y.loc[4] == 1 and y.loc[5] == 0


@pytest.mark.parametrize("kind, column, values, message", [
    ("flag", "loans.defaulted", [0, 1, 2, 0, 0], "loans.defaulted: value 2 is not 0 or 1 (1 rows)"),
    ("flag", "loans.charged_off", [0, 1, 0, 0, 0], "label column loans.charged_off: no such column"),
    ("default_date", "loans.defaulted", ["2001-01-01", "soon", None, None, None], "value 'soon' is not a date"),
    ("default_date", "loans.defaulted", [None, D("2000-01-10"), None, None, None],
     "1 loans default on or before their application date (e.g. loan_id 2)"),
])
def test_bad_label_columns_are_one_line(kind, column, values, message):
    with pytest.raises(DataContractError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_labels({"loans": _loans(defaulted=values)}, D("2025-06-30"), kind=kind, column=column)


@pytest.mark.parametrize("label, message", [
    ({"kind": "flag"}, "needs column"),
    ({"kind": "dpd", "column": "loans.x"}, "only used by kind"),
    ({"kind": "default_date", "column": "repayments.date"}, "must name a column of the loans table"),
    ({"kind": "rating"}, "label.kind"),
    ({"window_months": 0}, "label.window_months"),
])
def test_label_config_errors(label, message):
    with pytest.raises(ConfigError, match=message):
        build_config({"label": label})


def test_model_card_says_which_definition_in_both_languages():
    frame = pd.DataFrame({"split": ["train"] * 2, "decision_date": [D("2020-01-01")] * 2, "default": [0, 1]})
    metrics = pd.DataFrame([{"model": "lightgbm", "split": "train", "auc": 0.7, "gini": 0.4, "ks": 0.3,
                             "brier": 0.1, "mean_pd": 0.1, "default_rate": 0.1}])
    cards = {}
    for label in ({"kind": "dpd", "window_months": 24, "dpd_threshold": 60},
                  {"kind": "default_date", "column": "loans.default_date", "window_months": 36},
                  {"kind": "flag", "column": "loans.defaulted"}):
        config = build_config({"label": label}).model_dump(mode="json")
        cards[label["kind"]] = build_model_card(frame=frame, metrics=metrics, preliminary_findings=[],
                                                features=["x"], config=config,
                                                extraction_date="2025-06-30")
    assert cards["dpd"]["target"].startswith("default = 60+ days past due on a repayment record within 24 months")
    assert "逾期达到60天" in cards["dpd"]["target_zh"] and "24个月" in cards["dpd"]["target_zh"]
    assert "default date (loans.default_date) falls within 36 months" in cards["default_date"]["target"]
    assert "违约日期（loans.default_date）" in cards["default_date"]["target_zh"]
    assert "36个月" in cards["default_date"]["target_zh"]
    assert "default flag loans.defaulted = 1, as recorded" in cards["flag"]["target"]
    assert "违约标志 loans.defaulted = 1" in cards["flag"]["target_zh"]
    assert cards["flag"]["label"] == {"kind": "flag", "window_months": 12, "dpd_threshold": 90,
                                      "column": "loans.defaulted"}
    assert describe_label("flag", column="defaulted")["en"] == cards["flag"]["target"]
