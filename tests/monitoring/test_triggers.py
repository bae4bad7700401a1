"""Each early-warning trigger fires exactly for its planted borrower and date, never on later data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from creditmodel.exceptions import ConfigError
from creditmodel.monitoring import live_book, parse_triggers, watch_list
from creditmodel.monitoring.triggers import trigger_events

AS_OF = pd.Timestamp("2023-06-30")


@pytest.fixture(scope="module")
def planted(small_world):
    """The small world with every event source emptied, steady monthly inflows for every borrower,
    and one planted event per trigger (plus the same events dated the day after the as-of date)."""
    t = {k: v.copy() for k, v in small_world.tables.items()}
    book = live_book(t, AS_OF)
    ents = book.drop_duplicates("enterprise_id").sort_values("enterprise_id")["enterprise_id"].to_numpy()
    assert ents.size >= 12
    who = dict(zip(["dishonest", "court", "abnormal", "env", "drop3", "late", "after"], ents[:7]))
    for name in ("court_cases", "registration_events", "environment_checks"):
        t[name] = t[name].iloc[0:0]
    t["repayments"] = t["repayments"].assign(days_past_due=0)
    months = pd.date_range(AS_OF - pd.DateOffset(months=12), AS_OF, freq="MS") + pd.Timedelta(days=14)
    tx = pd.DataFrame([(e, m, 1000.0) for e in ents for m in months], columns=["enterprise_id", "ts", "amount"])
    tx.loc[(tx.enterprise_id == who["drop3"]) & (tx.ts > AS_OF - pd.DateOffset(months=1)), "amount"] = 100.0
    after = AS_OF + pd.Timedelta(days=1)
    tx = pd.concat([tx, pd.DataFrame({"enterprise_id": [who["after"]], "ts": [after], "amount": [1e9]})])
    t["transactions"] = tx.assign(direction="in", channel="transfer", counterparty=1)
    day = AS_OF - pd.Timedelta(days=10)
    t["court_cases"] = pd.DataFrame({
        "case_id": [1, 2, 3, 4], "enterprise_id": [who["dishonest"], who["court"], who["after"], who["court"]],
        "filed_date": [day, day, after, AS_OF - pd.Timedelta(days=200)],  # the last one: outside the window
        "closed_date": pd.NaT, "amount": [5e4, 2e4, 1e5, 1e4], "dishonest_debtor": [True, False, True, False]})
    t["registration_events"] = pd.DataFrame({
        "enterprise_id": [who["abnormal"], who["after"]], "event_date": [day, after],
        "kind": ["abnormal_listing", "abnormal_listing"], "amount": np.nan})
    t["environment_checks"] = pd.DataFrame({
        "enterprise_id": [who["env"], who["after"], who["court"]], "check_date": [day, after, day],
        "passed": [False, False, True]})
    late_loan = int(book.loc[book.enterprise_id == who["late"], "loan_id"].iloc[0])
    rep = t["repayments"]
    last = rep[(rep.loan_id == late_loan) & (rep.date <= AS_OF)].date.max()
    rep.loc[(rep.loan_id == late_loan) & (rep.date == last), "days_past_due"] = 12
    after_loan = int(book.loc[book.enterprise_id == who["after"], "loan_id"].iloc[0])
    rep.loc[(rep.loan_id == after_loan) & (rep.date > AS_OF), "days_past_due"] = 45
    return t, who, late_loan, last


def test_each_trigger_fires_exactly_for_its_planted_borrower_and_date(planted):
    tables, who, late_loan, late_date = planted
    book = live_book(tables, AS_OF)
    wl = watch_list(tables, book, AS_OF)
    fired = {name: set(g["enterprise_id"]) for name, g in wl.groupby("trigger")}
    assert fired == {
        "dishonest_debtor": {who["dishonest"]},
        "court_case": {who["court"], who["dishonest"]},  # a dishonest listing is a new case too
        "abnormal_listing": {who["abnormal"]},
        "environment_failed": {who["env"]},
        "inflow_drop_3m": {who["drop3"]},
        "inflow_drop_6m": {who["drop3"]},
        "late_instalment": {who["late"]},
    }
    assert who["after"] not in set(wl["enterprise_id"])  # nothing dated after the as-of date fires
    late = wl[wl.trigger == "late_instalment"]
    assert list(late["loan_id"]) == [late_loan] and list(late["event_date"]) == [late_date]
    assert (wl.loc[wl.trigger == "court_case", "event_date"] == AS_OF - pd.Timedelta(days=10)).all()
    drop = wl[wl.trigger == "inflow_drop_3m"]["detail"].iloc[0]
    assert drop == "-90%"  # 100 against 1,000 a month
    # every open loan of a flagged borrower is listed, with the officer's text in both languages
    n_loans = book[book.enterprise_id == who["abnormal"]].shape[0]
    assert (wl.trigger == "abnormal_listing").sum() == n_loans
    assert wl["reason_zh"].str.len().gt(0).all() and wl["reason_en"].str.len().gt(0).all()


def test_watch_list_is_sorted_per_officer_by_severity_then_exposure(planted):
    tables, *_ = planted
    wl = watch_list(tables, live_book(tables, AS_OF), AS_OF)
    for _, g in wl.groupby("officer_id"):
        keys = list(zip(-g["severity"], -g["balance"]))
        assert keys == sorted(keys)
    assert list(wl["officer_id"]) == sorted(wl["officer_id"])


def test_the_day_after_the_later_events_fire(planted):
    tables, who, *_ = planted
    later = AS_OF + pd.Timedelta(days=1)
    wl = watch_list(tables, live_book(tables, later), later)
    assert who["after"] in set(wl.loc[wl.trigger == "dishonest_debtor", "enterprise_id"])
    assert who["after"] in set(wl.loc[wl.trigger == "abnormal_listing", "enterprise_id"])


@pytest.mark.parametrize("spec, match", [
    ({"x": {"kind": "comet", "severity": 1, "en": "a", "zh": "b"}}, r"triggers.x\] kind: 'comet'"),
    ({"x": {"kind": "inflow_drop", "drop": 1.5, "severity": 1, "en": "a", "zh": "b"}}, r"drop: 1.5; expected a fraction"),
    ({"x": {"kind": "court_case", "severity": 5, "en": "a", "zh": "b"}}, r"severity: 5"),
    ({"x": {"kind": "court_case", "severity": 1, "en": "a"}}, r"zh: expected the officer's reason text"),
    ({"x": {"kind": "court_case", "severity": 1, "en": "a", "zh": "b", "months": 3}}, r"months: unknown key"),
])
def test_bad_trigger_config_is_one_line_naming_the_key(spec, match):
    with pytest.raises(ConfigError, match=match) as err:
        parse_triggers(spec)
    assert "\n" not in str(err.value)


def test_events_computed_before_the_rating_give_the_same_watch_list(planted):
    """A monitoring run computes every trigger's events but the downgrades' while it rates the book
    (``trigger_events``) and hands them to ``watch_list``: the list is the one computed in one go."""
    tables = planted[0]
    book = live_book(tables, AS_OF)
    book = book.assign(notches=np.where(book["loan_id"] % 7 == 0, 3, 0), grade_origination="B", grade_now="E")
    triggers = parse_triggers()
    before = trigger_events(tables, book, AS_OF, [t for t in triggers if t.kind != "downgrade"])
    assert set(before) == {t.name for t in triggers if t.kind != "downgrade"}
    whole = watch_list(tables, book, AS_OF, triggers)
    assert (whole["trigger"] == "downgrade_2").any()
    pd.testing.assert_frame_equal(watch_list(tables, book, AS_OF, triggers, events=before), whole, check_exact=True)
