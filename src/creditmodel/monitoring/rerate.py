"""Re-rating the live book as of a date with a bundle's features: the training catalogue's SQL,
point in time, with the as-of date as every loan's decision date; grade migration since origination.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from creditmodel.data.dictionary import DataDictionary
from creditmodel.data.schema import TABLES
from creditmodel.exceptions import DataContractError
from creditmodel.features.build import available_features, build_features
from creditmodel.features.catalogue import catalogue

__all__ = ["N_REASONS", "OriginationFeatures", "as_of_tables", "migration_matrix", "migration_summary", "rerate",
           "rerate_with_features"]

N_REASONS = 3


def as_of_tables(tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Every table restricted to rows dated on or before ``as_of`` (its event date): nothing later is read.
    A table with nothing later is passed on as it is (no copy), so a second cut costs one comparison."""
    out = {}
    for name, df in tables.items():
        spec = TABLES.get(name)
        if df is None or spec is None or spec.event_date is None:
            out[name] = df
        else:
            keep = (df[spec.event_date] < as_of + pd.Timedelta(days=1)).to_numpy()
            out[name] = df if keep.all() else df[keep]
    return out


def _features(bundle: Any, tables: Mapping[str, pd.DataFrame], apps: pd.DataFrame,
              dictionary: DataDictionary | None) -> pd.DataFrame:
    names = list(bundle.schema.names)
    cat = catalogue(dictionary)
    known = {f.name for f in cat}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise DataContractError(f"bundle feature {unknown[0]!r}: not in the feature catalogue of these data; "
                                "expected the catalogue the bundle was trained on")
    kept, missing = available_features(dict(tables), cat)
    lacking = [n for n in names if n not in {f.name for f in kept}]
    if lacking:
        raise DataContractError(f"bundle feature {lacking[0]!r}: the data cannot provide it (missing sources: "
                                f"{', '.join(missing) or 'none'}); expected the tables the bundle was trained on")
    frame = build_features(dict(tables), apps, features=cat)
    return frame.set_index("loan_id").loc[apps["loan_id"].to_numpy(), names].reset_index()


class OriginationFeatures:
    """The bundle's features and PDs of loans at their own decision dates, each loan built and scored
    once: re-rating, the backtest and the stability of one monitoring date share them (a loan's
    features at its decision date read nothing later, so any cut at or after it gives the same).
    :meth:`build` also computes the open book's features as of the monitoring date in the same
    catalogue query, so the run has one query and one scoring of every row."""

    def __init__(self, bundle: Any, tables: Mapping[str, pd.DataFrame], dictionary: DataDictionary | None = None):
        self.bundle, self.tables, self.dictionary = bundle, tables, dictionary
        self.frame: pd.DataFrame | None = None  # features at origination, indexed by loan_id
        self.pds: pd.Series | None = None  # PD at origination, indexed by loan_id (loans scored so far)
        self.as_of: pd.Timestamp | None = None  # the date of `now`
        self.now: pd.DataFrame | None = None  # features as of `as_of`, indexed by loan_id
        self.pd_now: pd.Series | None = None

    def _missing(self, apps: pd.DataFrame) -> pd.DataFrame:
        have = self.frame.index if self.frame is not None else pd.Index([])
        return apps[~apps["loan_id"].isin(have)].drop_duplicates("loan_id")

    def build(self, apps: pd.DataFrame, as_of: pd.Timestamp | None = None, book: pd.DataFrame | None = None) -> None:
        """One catalogue query for ``apps`` (rows of the loans table) at their decision dates and ``book``
        (rows of the loans table) as of ``as_of``, and one scoring of all its rows. The query's row key
        is the row's position, so a loan may appear at both dates."""
        parts = [self._missing(apps)]
        if book is not None and as_of is not None:
            parts.append(book.drop_duplicates("loan_id").assign(application_date=pd.Timestamp(as_of).normalize()))
        both = pd.concat(parts, ignore_index=True)
        if both.empty:
            return
        keys = both["loan_id"].to_numpy()
        feats = _features(self.bundle, self.tables, both.assign(loan_id=np.arange(len(both))), self.dictionary)
        feats["loan_id"] = keys
        pds = pd.Series(np.asarray(self.bundle.predict_pd(feats), dtype=np.float64), index=keys)
        n = len(parts[0])
        self._add(feats.iloc[:n].set_index("loan_id"), pds.iloc[:n])
        if len(parts) > 1:
            self.as_of = pd.Timestamp(as_of).normalize()
            self.now, self.pd_now = feats.iloc[n:].set_index("loan_id"), pds.iloc[n:]

    def _add(self, frame: pd.DataFrame, pds: pd.Series | None) -> None:
        self.frame = frame if self.frame is None else pd.concat([self.frame, frame])
        if pds is not None:
            self.pds = pds if self.pds is None else pd.concat([self.pds, pds])

    def of(self, apps: pd.DataFrame) -> pd.DataFrame:
        """loan_id and the bundle's features of ``apps`` (rows of the loans table), in their order."""
        missing = self._missing(apps)
        if len(missing):
            self._add(_features(self.bundle, self.tables, missing, self.dictionary).set_index("loan_id"), None)
        assert self.frame is not None
        return self.frame.loc[apps["loan_id"].to_numpy()].reset_index()

    def pd_of(self, apps: pd.DataFrame) -> np.ndarray:
        """The PD at origination of each row of ``apps`` (rows of the loans table), in their order."""
        have = self.pds.index if self.pds is not None else pd.Index([])
        todo = apps[~apps["loan_id"].isin(have)].drop_duplicates("loan_id")
        if len(todo):
            X = self.of(todo)
            new = pd.Series(np.asarray(self.bundle.predict_pd(X), dtype=np.float64), index=X["loan_id"].to_numpy())
            self.pds = new if self.pds is None else pd.concat([self.pds, new])
        assert self.pds is not None
        return self.pds.loc[apps["loan_id"].to_numpy()].to_numpy()

    def now_of(self, apps: pd.DataFrame, as_of: pd.Timestamp) -> tuple[pd.DataFrame, np.ndarray] | None:
        """Features (loan_id first) and PDs of ``apps`` as of ``as_of`` when :meth:`build` made them, else None."""
        if self.now is None or self.pd_now is None or self.as_of != as_of or not apps["loan_id"].isin(self.now.index).all():
            return None
        ids = apps["loan_id"].to_numpy()
        return self.now.loc[ids].reset_index(), self.pd_now.loc[ids].to_numpy()


def rerate(bundle: Any, tables: Mapping[str, pd.DataFrame], book: pd.DataFrame, as_of: object,
           dictionary: DataDictionary | None = None) -> pd.DataFrame:
    """PD and grade of each open loan at origination and as of the date, the notches moved (positive =
    downgrade, on the bundle's master scale) and the reason codes of the rating as of the date."""
    return rerate_with_features(bundle, tables, book, as_of, dictionary)[0]


def rerate_with_features(bundle: Any, tables: Mapping[str, pd.DataFrame], book: pd.DataFrame, as_of: object,
                         dictionary: DataDictionary | None = None, origination: OriginationFeatures | None = None,
                         ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """:func:`rerate`, and the bundle's features of the open loans at origination and as of the date;
    ``origination`` shares the features at origination with the rest of a monitoring run."""
    from creditmodel.service.scoring import FastScorer, reasons_frame

    as_of = pd.Timestamp(as_of).normalize()
    loan_columns = list(tables["loans"].columns)  # with a bank's own attributes, as in training
    apps = book[[c for c in loan_columns if c in book.columns]].copy()
    built = origination.now_of(apps, as_of) if origination is not None else None
    if built is not None:  # the run's one query and scoring: both dates' features and PDs are there
        assert origination is not None
        now, pd_now = built
        then, pd_then = origination.of(apps), origination.pd_of(apps)
    else:
        known = as_of_tables(tables, as_of)
        then = origination.of(apps) if origination is not None else _features(bundle, known, apps, dictionary)
        now = _features(bundle, known, apps.assign(application_date=as_of), dictionary)
        pd_then = origination.pd_of(apps) if origination is not None else bundle.predict_pd(then)
        pd_now = bundle.predict_pd(now)
    grades = list(bundle.master_scale.grades)
    g_then, g_now = bundle.grade(pd_then), bundle.grade(pd_now)
    rank = {g: i for i, g in enumerate(grades)}
    out = pd.DataFrame({
        "loan_id": book["loan_id"].to_numpy(),
        "pd_origination": pd_then, "grade_origination": g_then,
        "pd_now": pd_now, "grade_now": g_now,
    })
    out["notches"] = (pd.Series(g_now).map(rank).to_numpy(np.int64) - pd.Series(g_then).map(rank).to_numpy(np.int64))
    # `now` was checked by bundle.predict_pd above: the reasons explain its rows without a second check
    scorer = FastScorer(bundle, num_threads=0, self_check=False)
    reasons = reasons_frame(scorer.reasons(bundle.schema.encode(now), N_REASONS), N_REASONS)
    keep = [f"reason_{k}" for k in range(1, N_REASONS + 1)] + [f"reason_{k}_feature" for k in range(1, N_REASONS + 1)]
    return pd.concat([out, reasons[keep].reset_index(drop=True)], axis=1), then, now


def migration_matrix(rated: pd.DataFrame, grades: list[str]) -> pd.DataFrame:
    """Loans per (grade at origination, grade now) on the master scale's order."""
    m = pd.crosstab(pd.Categorical(rated["grade_origination"], grades),
                    pd.Categorical(rated["grade_now"], grades), dropna=False)
    m.index.name, m.columns.name = "grade_origination", "grade_now"
    return m


def migration_summary(rated: pd.DataFrame) -> dict[str, float]:
    n = len(rated)
    notches = rated["notches"].to_numpy()
    return {"loans": n,
            "share_downgraded": float(np.mean(notches > 0)) if n else float("nan"),
            "share_downgraded_2plus": float(np.mean(notches >= 2)) if n else float("nan"),
            "share_upgraded": float(np.mean(notches < 0)) if n else float("nan"),
            "mean_pd_origination": float(rated["pd_origination"].mean()) if n else float("nan"),
            "mean_pd_now": float(rated["pd_now"].mean()) if n else float("nan")}
