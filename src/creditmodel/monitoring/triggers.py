"""Early-warning triggers evaluated as of a date, and the watch list they make.

Triggers are declarative (``[monitoring.triggers.<name>]`` in the run configuration, else
``DEFAULT_TRIGGERS``): a kind, its parameters, a severity and the text a loan officer reads in
English and Simplified Chinese. A trigger fires for an open loan when its event lies in the
look-back window ``(as_of - lookback_days, as_of]``; nothing dated after ``as_of`` is read.

Kinds: ``court_case`` (a new filing; ``dishonest_only`` for a dishonest-debtor listing),
``abnormal_listing`` (listed as operating abnormally), ``environment_failed`` (a failed
environmental check), ``inflow_drop`` (inflows of the last month down more than ``drop`` against the
monthly mean of the prior ``months`` months), ``late_instalment`` (an instalment ``min_dpd`` or more
days past due), ``downgrade`` (re-rated ``notches`` or more grades worse than at origination).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from creditmodel.data.parquet_table import ParquetTable, is_parquet_table
from creditmodel.exceptions import ConfigError
from creditmodel.texts import Phrase

__all__ = ["DEFAULT_TRIGGERS", "KINDS", "Trigger", "parse_triggers", "trigger_events", "watch_list"]

KINDS = ("court_case", "abnormal_listing", "environment_failed", "inflow_drop", "late_instalment", "downgrade")
_PARAMS: dict[str, dict[str, Any]] = {
    "court_case": {"lookback_days": 90, "dishonest_only": False},
    "abnormal_listing": {"lookback_days": 90},
    "environment_failed": {"lookback_days": 90},
    "inflow_drop": {"drop": 0.5, "months": 3},
    "late_instalment": {"lookback_days": 31, "min_dpd": 1},
    "downgrade": {"notches": 2},
}


@dataclass(frozen=True)
class Trigger:
    """One early-warning rule: what fires it, how severe it is, what the officer reads."""

    name: str
    kind: str
    severity: int  # 1 (watch) .. 3 (act now)
    en: str
    zh: str
    params: tuple[tuple[str, Any], ...] = ()

    def param(self, key: str) -> Any:
        return dict(self.params).get(key, _PARAMS[self.kind].get(key))


DEFAULT_TRIGGERS: dict[str, dict[str, Any]] = {
    "dishonest_debtor": {"kind": "court_case", "dishonest_only": True, "lookback_days": 90, "severity": 3,
                         "en": "Newly listed as a dishonest debtor (court enforcement)",
                         "zh": "新增失信被执行人记录"},
    "court_case": {"kind": "court_case", "lookback_days": 90, "severity": 2,
                   "en": "New court case filed against the borrower", "zh": "新增涉诉案件"},
    "abnormal_listing": {"kind": "abnormal_listing", "lookback_days": 90, "severity": 2,
                         "en": "Listed as operating abnormally", "zh": "被列入经营异常名录"},
    "environment_failed": {"kind": "environment_failed", "lookback_days": 90, "severity": 2,
                           "en": "Failed an environmental check", "zh": "环保检查未通过"},
    # seasonal trades swing by a third within a year: the defaults look for larger falls
    "inflow_drop_3m": {"kind": "inflow_drop", "drop": 0.6, "months": 3, "severity": 2,
                       "en": "Account inflows fell by more than 60% against the prior 3 months",
                       "zh": "账户流入较前3个月月均下降超过60%"},
    "inflow_drop_6m": {"kind": "inflow_drop", "drop": 0.5, "months": 6, "severity": 1,
                       "en": "Account inflows fell by more than half against the prior 6 months",
                       "zh": "账户流入较前6个月月均下降超过一半"},
    "late_instalment": {"kind": "late_instalment", "lookback_days": 31, "min_dpd": 1, "severity": 2,
                        "en": "An instalment was paid late or missed", "zh": "贷款本息逾期或未按期偿还"},
    "downgrade_2": {"kind": "downgrade", "notches": 2, "severity": 3,
                    "en": "Credit grade fell two or more notches since the loan was granted",
                    "zh": "信用等级较放款时下调两级及以上"},
}


def parse_triggers(raw: Mapping[str, Any] | None = None) -> list[Trigger]:
    """Triggers from ``[monitoring.triggers]`` (name -> table); each defect names its key."""
    raw = DEFAULT_TRIGGERS if raw is None else raw
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError.of("error.triggers.not_tables", raw=raw)
    out = []
    for name, spec in raw.items():
        if not isinstance(spec, Mapping):
            raise ConfigError.of("error.triggers.not_table", name=name, spec=spec)
        kind = spec.get("kind")
        if kind not in KINDS:
            raise ConfigError.of("error.triggers.kind", name=name, kind=kind, kinds=", ".join(KINDS))
        allowed = {"kind", "severity", "en", "zh", *_PARAMS[kind]}
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise ConfigError.of("error.triggers.unknown_key", name=name, key=unknown[0], kind=kind,
                                 allowed=", ".join(sorted(allowed)))
        severity = spec.get("severity")
        if isinstance(severity, bool) or severity not in (1, 2, 3):
            raise ConfigError.of("error.triggers.severity", name=name, severity=severity)
        for lang in ("en", "zh"):
            if not isinstance(spec.get(lang), str) or not spec[lang].strip():
                raise ConfigError.of("error.triggers.reason", name=name, lang=lang)
        params = []
        for key, default in _PARAMS[kind].items():
            value = spec.get(key, default)
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif key == "drop":
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1
            else:
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
            if not ok:
                expected = ("bool" if isinstance(default, bool) else "fraction" if key == "drop" else "count")
                raise ConfigError.of("error.triggers.param", name=name, key=key, value=value,
                                     expected=Phrase(f"error.triggers.expect.{expected}"))
            params.append((key, value))
        out.append(Trigger(name, kind, int(severity), spec["en"], spec["zh"], tuple(params)))
    return out


def _window(df: pd.DataFrame, date: str, as_of: pd.Timestamp, days: int) -> pd.DataFrame:
    d = df[date]
    return df[(d <= as_of) & (d > as_of - pd.Timedelta(days=days))]


def _events(t: Trigger, tables: Mapping[str, pd.DataFrame], book: pd.DataFrame,
            as_of: pd.Timestamp) -> pd.DataFrame:
    """(enterprise_id or loan_id, event_date, detail) of the events that fire ``t``."""
    empty = pd.DataFrame({"enterprise_id": pd.Series(dtype="int64"), "event_date": pd.Series(dtype="M8[ns]"),
                          "detail": pd.Series(dtype=object)})
    if t.kind == "court_case":
        cases = tables.get("court_cases")
        if cases is None:
            return empty
        hit = _window(cases, "filed_date", as_of, t.param("lookback_days"))
        if t.param("dishonest_only"):
            hit = hit[hit["dishonest_debtor"]]
        return pd.DataFrame({"enterprise_id": hit["enterprise_id"], "event_date": hit["filed_date"],
                             "detail": hit["amount"].map(lambda a: f"{a:,.0f}")})
    if t.kind == "abnormal_listing":
        ev = tables.get("registration_events")
        if ev is None:
            return empty
        hit = _window(ev[ev["kind"] == "abnormal_listing"], "event_date", as_of, t.param("lookback_days"))
        return pd.DataFrame({"enterprise_id": hit["enterprise_id"], "event_date": hit["event_date"], "detail": ""})
    if t.kind == "environment_failed":
        ev = tables.get("environment_checks")
        if ev is None:
            return empty
        hit = _window(ev[~ev["passed"].astype(bool)], "check_date", as_of, t.param("lookback_days"))
        return pd.DataFrame({"enterprise_id": hit["enterprise_id"], "event_date": hit["check_date"], "detail": ""})
    if t.kind == "inflow_drop":
        tx = tables.get("transactions")
        if tx is None:
            return empty
        months = t.param("months")
        start = as_of - pd.DateOffset(months=months + 1)
        tx = tx[(tx["direction"] == "in") & (tx["ts"] <= as_of + pd.Timedelta(days=1) - pd.Timedelta(1))
                & (tx["ts"] > start) & tx["enterprise_id"].isin(book["enterprise_id"])]
        last_start = as_of - pd.DateOffset(months=1)
        recent = tx[tx["ts"] > last_start].groupby("enterprise_id")["amount"].sum()
        prior = tx[tx["ts"] <= last_start].groupby("enterprise_id")["amount"].sum() / months
        ents = prior[prior > 0].index
        recent = recent.reindex(ents, fill_value=0.0)
        change = recent / prior[ents] - 1.0
        hit = change[change < -t.param("drop")]
        return pd.DataFrame({"enterprise_id": hit.index.to_numpy(), "event_date": as_of,
                             "detail": [f"{c:+.0%}" for c in hit.to_numpy()]})
    if t.kind == "late_instalment":
        rep = tables["repayments"]
        hit = _window(rep[rep["days_past_due"] >= t.param("min_dpd")], "date", as_of, t.param("lookback_days"))
        hit = hit.sort_values("date").groupby("loan_id").tail(1)
        return pd.DataFrame({"loan_id": hit["loan_id"], "event_date": hit["date"],
                             "detail": hit["days_past_due"].map(lambda d: f"{d} DPD")})
    # downgrade: needs the re-rating (columns notches and grade_origination/grade_now on the book)
    if "notches" not in book:
        return empty
    hit = book[book["notches"] >= t.param("notches")]
    return pd.DataFrame({"loan_id": hit["loan_id"], "event_date": as_of,
                         "detail": hit["grade_origination"].astype(str) + "→" + hit["grade_now"].astype(str)})


def _inflows_once(tables: Mapping[str, pd.DataFrame], book: pd.DataFrame, as_of: pd.Timestamp,
                  triggers: list[Trigger]) -> Mapping[str, pd.DataFrame]:
    """The tables with transactions cut once to the book's inflows in the widest window of the inflow
    triggers, so that several of them do not each scan every transaction (each still applies its own cut)."""
    months = [t.param("months") for t in triggers if t.kind == "inflow_drop"]
    tx = tables.get("transactions")
    if not months or tx is None or (len(months) < 2 and not is_parquet_table(tx)):
        return tables
    start = as_of - pd.DateOffset(months=max(months) + 1)
    if is_parquet_table(tx):  # left in its files (too large for memory): only this cut is read
        return {**tables, "transactions": _read_inflows(tx, book, start, as_of)}
    tx = tx[(tx["direction"] == "in") & (tx["ts"] <= as_of + pd.Timedelta(days=1) - pd.Timedelta(1))
            & (tx["ts"] > start) & tx["enterprise_id"].isin(book["enterprise_id"])]
    return {**tables, "transactions": tx}


def _read_inflows(tx: ParquetTable, book: pd.DataFrame, start: pd.Timestamp, as_of: pd.Timestamp) -> pd.DataFrame:
    """The book's inflows dated after ``start`` up to the end of ``as_of``, read from parquet by DuckDB:
    the rows the inflow triggers read, as the frame they read them from."""
    import duckdb

    ents = pd.DataFrame({"enterprise_id": pd.unique(book["enterprise_id"].to_numpy())})
    with duckdb.connect() as con:
        con.execute("SET enable_progress_bar = false")
        # one thread: a monitoring run reads this while its catalogue query holds the other core
        con.execute("SET threads TO 1")
        con.register("book_ents", ents)
        got = con.execute(
            f"SELECT enterprise_id, CAST(ts AS TIMESTAMP) AS ts, amount FROM {tx.source()} "
            "WHERE direction = 'in' AND ts > ? AND ts < ? "
            "AND enterprise_id IN (SELECT enterprise_id FROM book_ents) ORDER BY enterprise_id, ts",
            [start.to_pydatetime(), (as_of + pd.Timedelta(days=1)).to_pydatetime()]).df()
    got["ts"] = got["ts"].astype("datetime64[ns]")
    got["direction"] = pd.Categorical.from_codes(np.zeros(len(got), dtype=np.int8), ["in"])
    return got


def trigger_events(tables: Mapping[str, pd.DataFrame], book: pd.DataFrame, as_of: object,
                   triggers: list[Trigger]) -> dict[str, pd.DataFrame]:
    """The events that fire each of ``triggers`` as of the date, by trigger name: (enterprise_id or
    loan_id, event_date, detail). Every kind but ``downgrade`` reads only the tables and the book's
    loans, so a run computes them while it re-rates the book."""
    as_of = pd.Timestamp(as_of).normalize()
    tables = _inflows_once(tables, book, as_of, triggers)
    return {t.name: _events(t, tables, book, as_of) for t in triggers}


def watch_list(tables: Mapping[str, pd.DataFrame], book: pd.DataFrame, as_of: object,
               triggers: list[Trigger] | None = None, events: Mapping[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """One row per open loan and fired trigger, sorted by officer, then severity and exposure (balance)
    descending. Borrower events put every open loan of the borrower on the list.

    ``events``: the events of some of the triggers, computed before (:func:`trigger_events`) on the
    same tables and loans; the others are computed here."""
    as_of = pd.Timestamp(as_of).normalize()
    triggers = parse_triggers() if triggers is None else triggers
    cols = ["officer_id", "team", "loan_id", "enterprise_id", "balance", "trigger", "severity",
            "event_date", "detail", "reason_en", "reason_zh"]
    frames = []
    base = book[["loan_id", "enterprise_id", "officer_id", "team", "balance"]]
    given = dict(events or {})
    found = {**given, **trigger_events(tables, book, as_of, [t for t in triggers if t.name not in given])}
    for t in triggers:
        ev = found[t.name]
        if ev.empty:
            continue
        key = "loan_id" if "loan_id" in ev else "enterprise_id"
        ev = ev.sort_values("event_date").groupby(key, sort=False).tail(1)  # the latest event per key
        hit = base.merge(ev, on=key, how="inner")
        frames.append(hit.assign(trigger=t.name, severity=t.severity, reason_en=t.en, reason_zh=t.zh))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    out = pd.concat(frames, ignore_index=True)[cols]
    out["event_date"] = pd.to_datetime(out["event_date"])
    return out.sort_values(["officer_id", "severity", "balance", "loan_id", "trigger"],
                           ascending=[True, False, False, True, True], kind="mergesort").reset_index(drop=True)
