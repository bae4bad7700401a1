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
    """Every table restricted to rows dated on or before ``as_of`` (its event date): nothing later is read."""
    out = {}
    for name, df in tables.items():
        spec = TABLES.get(name)
        if df is None or spec is None or spec.event_date is None:
            out[name] = df
        else:
            out[name] = df[df[spec.event_date] < as_of + pd.Timedelta(days=1)]
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
    """The bundle's features of loans at their own decision dates, each loan built once: re-rating,
    the backtest and the stability of one monitoring date share one catalogue build (a loan's
    features at its decision date read nothing later, so any cut at or after it gives the same)."""

    def __init__(self, bundle: Any, tables: Mapping[str, pd.DataFrame], dictionary: DataDictionary | None = None):
        self.bundle, self.tables, self.dictionary = bundle, tables, dictionary
        self.frame: pd.DataFrame | None = None  # indexed by loan_id

    def of(self, apps: pd.DataFrame) -> pd.DataFrame:
        """loan_id and the bundle's features of ``apps`` (rows of the loans table), in their order."""
        have = self.frame.index if self.frame is not None else pd.Index([])
        missing = apps[~apps["loan_id"].isin(have)].drop_duplicates("loan_id")
        if len(missing):
            new = _features(self.bundle, self.tables, missing, self.dictionary).set_index("loan_id")
            self.frame = new if self.frame is None else pd.concat([self.frame, new])
        assert self.frame is not None
        return self.frame.loc[apps["loan_id"].to_numpy()].reset_index()


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
    from creditmodel.service.scoring import reason_codes_from_bundle, reasons_frame

    as_of = pd.Timestamp(as_of).normalize()
    known = as_of_tables(tables, as_of)
    loan_columns = list(tables["loans"].columns)  # with a bank's own attributes, as in training
    apps = book[[c for c in loan_columns if c in book.columns]].copy()
    then = origination.of(apps) if origination is not None else _features(bundle, known, apps, dictionary)
    now = _features(bundle, known, apps.assign(application_date=as_of), dictionary)
    pd_then, pd_now = bundle.predict_pd(then), bundle.predict_pd(now)
    grades = list(bundle.master_scale.grades)
    g_then, g_now = bundle.grade(pd_then), bundle.grade(pd_now)
    rank = {g: i for i, g in enumerate(grades)}
    out = pd.DataFrame({
        "loan_id": book["loan_id"].to_numpy(),
        "pd_origination": pd_then, "grade_origination": g_then,
        "pd_now": pd_now, "grade_now": g_now,
    })
    out["notches"] = [rank[b] - rank[a] for a, b in zip(g_then, g_now)]
    reasons = reasons_frame(reason_codes_from_bundle(bundle, now, N_REASONS), N_REASONS)
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
