"""Features of many borrowers as of one date, in bulk: the input of monitoring and re-rating.

``AsOfFeatures`` runs the catalogue's own SQL (the bundle's, as ``OnlineFeatures`` does for one
application) once for a whole list of borrowers sharing one decision date, the as-of date: the store's
tables are restricted, before the query sees them, to those borrowers (and the members of their
joint-guarantee groups) and to rows dated strictly before the date. One query for all borrowers,
never one per borrower; a row dated on or after the as-of date never reaches a feature.

Who is scored (``borrowers``). By default every enterprise with a loan *active* on the date: applied
for before it, not written off before it (when the store holds ``loan_accounts``) and with principal
outstanding at its latest balance before it (when the store holds ``balances``, as the monitoring's
live book counts open loans; before its first instalment a loan is all outstanding), or, in a store
without ``balances``, still within its contractual term (application date + term months after the
date). Rows dated on or after the date are not read here either. Each is scored for the terms of its
latest active loan (amount, term, product, guarantee, joint-guarantee group and the bank's own loan
columns): the exposure being re-rated. A list of enterprises (``enterprise_id``, optionally the terms
to score: ``amount``, ``term_months``, ``product``, ``guarantee_type``, ``group_id`` and the bank's own
loan columns) scores those borrowers instead, each for the terms given, else for those of its latest
loan applied for before the date; an enterprise the store does not know is scored, for terms given,
as new to the bank (thin file).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from creditmodel.exceptions import ConfigError
from creditmodel.features.catalogue import Feature
from creditmodel.features.online import OnlineFeatures

TERMS = ("amount", "term_months", "product", "guarantee_type")  # what an application must say
KEY = "loan_id"  # the query's row key: here the borrower's position in the list, not a loan


class AsOfFeatures(OnlineFeatures):
    """Many borrowers' features as of one date from a DuckDB store, with the catalogue's own SQL.

    The store is opened and checked against the catalogue as ``OnlineFeatures`` does (one StoreError
    naming the table or column that does not fit)."""

    def __init__(self, features: Sequence[Feature], store: str | Path, *, memory_limit: str | None = None) -> None:
        super().__init__(features, store, memory_limit=memory_limit, engine="duckdb")  # one query for all borrowers
        self._present = set(self._types)
        self._bulk = self._bulk_query()

    def __enter__(self) -> AsOfFeatures:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check_date(self, as_of: date | str, *, today: date | None = None) -> date:
        """The as-of date, refused (ConfigError, one line) in the future or not after the store's first data."""
        try:
            d = pd.Timestamp(as_of).date()
        except (ValueError, TypeError):
            raise ConfigError.of("error.asof.not_a_date", as_of=as_of) from None
        today = today or date.today()
        if d > today:
            raise ConfigError.of("error.asof.future", d=d, today=today)
        if d <= self.first_date:
            raise ConfigError.of("error.asof.before_data", d=d, first=self.first_date)
        return d

    # --- who is scored, for which terms -------------------------------------------------------------

    def _loan_columns(self) -> str:
        return ", ".join(f"l.{c}" for c in ("loan_id", "enterprise_id", *TERMS, "group_id", *self._attrs)
                         if c in self._types["loans"])

    def active_loans(self, as_of: date) -> pd.DataFrame:
        """Each enterprise's latest loan active on `as_of` (see the module's doc), one row per enterprise."""
        joins, conds = [], ["l.application_date < $d"]
        if "loan_accounts" in self._present:
            conds.append("NOT EXISTS (SELECT 1 FROM store.loan_accounts w WHERE w.loan_id = l.loan_id "
                         "AND w.written_off_date < $d)")
        if "balances" in self._present:  # as the monitoring's live book: principal left, whatever the term says
            joins.append("LEFT JOIN (SELECT loan_id, arg_max(balance, date) AS balance FROM store.balances "
                         "WHERE date < $d GROUP BY loan_id) b ON b.loan_id = l.loan_id")
            conds.append("coalesce(b.balance, l.amount) > 0")  # before its first instalment: all outstanding
        else:
            conds.append("l.application_date + to_months(CAST(l.term_months AS INTEGER)) > $d")
        return self._latest(f"{' '.join(joins)} WHERE {' AND '.join(conds)}", as_of)

    def _latest(self, where: str, as_of: date, listed: pd.DataFrame | None = None) -> pd.DataFrame:
        sql = (f"SELECT {self._loan_columns()} FROM store.loans l {where} QUALIFY row_number() OVER "
               f"(PARTITION BY l.enterprise_id ORDER BY l.application_date DESC, l.loan_id DESC) = 1 "
               f"ORDER BY l.enterprise_id")
        with self._lock:
            cur = self._con.cursor()
        try:
            if listed is not None:
                cur.register("listed", listed[["enterprise_id"]])
            return cur.execute(sql, {"d": as_of}).df()
        finally:
            cur.close()

    def borrowers(self, as_of: date, listed: pd.DataFrame | None = None) -> pd.DataFrame:
        """One row per borrower to score: enterprise_id, the terms, and the loan they come from (null:
        the list gave them). `listed`: the enterprises (see ``check_listed``); None: the active book."""
        if listed is None:
            active = self.active_loans(as_of)
            if active.empty:
                raise ConfigError.of("error.asof.none_active", as_of=as_of)
            return active
        if all(c in listed.columns for c in TERMS):
            out = listed.copy()
            out.insert(0, "loan_id", pd.array([pd.NA] * len(out), dtype="Int64"))
            return out
        latest = self._latest("WHERE l.application_date < $d AND l.enterprise_id IN (SELECT enterprise_id FROM "
                              "listed)", as_of, listed).set_index("enterprise_id")
        absent = listed.loc[~listed["enterprise_id"].isin(latest.index), "enterprise_id"].tolist()
        if absent:
            raise ConfigError.of("error.asof.no_terms", enterprise=absent[0], as_of=as_of, n=len(absent),
                                  terms=", ".join(TERMS))
        return latest.loc[listed["enterprise_id"].to_numpy()].reset_index()[
            ["loan_id", "enterprise_id", *[c for c in latest.columns if c != "loan_id"]]]

    def check_listed(self, listed: pd.DataFrame, where: str = "--enterprises") -> pd.DataFrame:
        """A list of enterprises, checked: its columns (enterprise_id; the terms, all or none; group_id and
        the bank's own loan columns), integer and unique ids, and no missing terms. One ConfigError line."""
        allowed = ["enterprise_id", *TERMS, "group_id", *self._attrs]
        unknown = [c for c in listed.columns if c not in allowed]
        if unknown:
            raise ConfigError.of("error.asof.unknown_column", where=where, column=unknown[0], allowed=allowed)
        if "enterprise_id" not in listed.columns:
            raise ConfigError.of("error.asof.no_id_column", where=where)
        if listed.empty:
            raise ConfigError.of("error.asof.empty", where=where)
        given = [c for c in TERMS if c in listed.columns]
        if given and len(given) < len(TERMS):
            lacking = [c for c in TERMS if c not in given]
            raise ConfigError.of("error.asof.terms_partial", where=where, column=lacking[0], terms=", ".join(TERMS))
        ids = pd.to_numeric(listed["enterprise_id"], errors="coerce")
        bad = listed["enterprise_id"][ids.isna() | (ids != np.floor(ids)) | (ids < 0)]
        if len(bad):
            raise ConfigError.of("error.asof.bad_id", where=where, value=_plain(bad.iloc[0]))
        out = listed.assign(enterprise_id=ids.astype(np.int64))
        dup = out["enterprise_id"][out["enterprise_id"].duplicated()]
        if len(dup):
            raise ConfigError.of("error.asof.duplicate_id", where=where, value=int(dup.iloc[0]))
        for c in given:
            if out[c].isna().any():
                row = out.loc[out[c].isna()].iloc[0]
                raise ConfigError.of("error.asof.empty_term", where=where, enterprise=int(row["enterprise_id"]),
                                     column=c)
        for c in ("amount", "term_months"):
            if c in out.columns:
                value = pd.to_numeric(out[c], errors="coerce")
                wrong = out[c][value.isna() | (value <= 0) | ((value != np.floor(value)) if c == "term_months"
                                                              else False)]
                if len(wrong):
                    if c == "term_months":
                        raise ConfigError.of("error.asof.not_positive_integer", where=where, column=c,
                                             value=_plain(wrong.iloc[0]))
                    raise ConfigError.of("error.asof.not_positive_number", where=where, column=c,
                                         value=_plain(wrong.iloc[0]))
                out[c] = value
        return out.reset_index(drop=True)

    # --- the features, in bulk ------------------------------------------------------------------------

    def _bulk_query(self) -> str:
        """The catalogue's query over CTEs holding only the listed borrowers' (and their groups') rows before d.

        The tables' CTEs are inlined (NOT MATERIALIZED): for many borrowers they hold most of the store, and
        DuckDB would otherwise copy those read more than once (``transactions``, by four blocks) into memory
        before the query runs, spilling past the memory limit; inlined, each block scans the store's sorted
        table with the date and borrower filters pushed into the scan, as the offline build scans parquet."""
        group = any(f.source == "guarantee_group" for f in self.catalogue)
        members = ("(SELECT enterprise_id FROM apps UNION SELECT enterprise_id FROM store.loans WHERE group_id IN "
                   "(SELECT group_id FROM apps WHERE group_id IS NOT NULL) AND application_date < $d)") if group \
            else "(SELECT enterprise_id FROM apps)"
        values = {c: c for c in ("enterprise_id", "amount", "term_months", "product", "guarantee_type", "group_id",
                                 *self._attrs)}
        return self._restricted({**values, "loan_id": KEY}, members, "enterprise_id IN (SELECT enterprise_id FROM apps)",
                                " FROM batch_apps", inline=True)

    def compute_many(self, borrowers: pd.DataFrame, as_of: date) -> pd.DataFrame:
        """Features of every row of `borrowers` (enterprise_id and the terms) as of `as_of`, in one query:
        keys (the rows' positions as loan_id, enterprise_id, decision_date), then the catalogue's features,
        in the order of `borrowers`."""
        apps = pd.DataFrame({KEY: np.arange(len(borrowers), dtype=np.int64),
                             "enterprise_id": borrowers["enterprise_id"].to_numpy(dtype=np.int64)})
        for c in (*TERMS, "group_id", *self._attrs):
            apps[c] = borrowers[c].to_numpy() if c in borrowers.columns else None
        with self._lock:
            cur = self._con.cursor()
        try:
            cur.register("batch_apps", apps)
            frame = cur.execute(self._bulk, {"d": as_of}).df()
        finally:
            cur.close()
        frame = frame.sort_values(KEY, kind="stable").reset_index(drop=True)
        frame["decision_date"] = pd.to_datetime(frame["decision_date"]).astype("datetime64[ns]")
        for f in self.catalogue:
            if f.is_categorical:
                frame[f.name] = frame[f.name].astype(object).where(frame[f.name].notna(), None)
        return frame

    def known_many(self, enterprise_ids: Any) -> np.ndarray:
        """Whether the store holds each enterprise (an unknown one is new to the bank)."""
        ids = pd.DataFrame({"enterprise_id": np.asarray(enterprise_ids, dtype=np.int64)})
        with self._lock:
            cur = self._con.cursor()
        try:
            cur.register("ids", ids)
            found = {r[0] for r in cur.execute("SELECT DISTINCT e.enterprise_id FROM store.enterprises e "
                                               "JOIN ids USING (enterprise_id)").fetchall()}
        finally:
            cur.close()
        return ids["enterprise_id"].isin(found).to_numpy()


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds, for messages."""
    return value.item() if isinstance(value, np.generic) else value


def read_enterprises(path: str | Path) -> pd.DataFrame:
    """The --enterprises file (.csv or .parquet) as a table; ConfigError in one line if it cannot be read."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError.of("error.asof.no_file", path=path)
    try:
        if p.suffix == ".parquet":
            return pd.read_parquet(p)
        if p.suffix == ".csv":
            return pd.read_csv(p)
    except Exception as exc:  # noqa: BLE001 - any reader failure is one line naming the file
        raise ConfigError.of("error.asof.unreadable", path=path, kind=p.suffix[1:], error=type(exc).__name__,
                             detail=str(exc).splitlines()[0] if str(exc) else "") from None
    raise ConfigError.of("error.asof.file_kind", path=path)
