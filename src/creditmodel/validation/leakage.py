"""Leakage and dominance guard: features with implausible power are flagged before anyone trusts a model.

A feature that leaks the outcome (recorded after, or because of, the default) ranks loans almost
perfectly on its own, carries a large information value and takes most of the model's gain. The
guard measures, per feature:

* single-feature AUC, direction-free (max(AUC, 1 - AUC)), on train and on the out-of-time split;
* information value (IV) over train-quantile bins (missing values a bin of their own), on train and
  out of time (the out-of-time IV uses the train bins; it is shown, not judged: on a small recent
  sample it is biased upwards);
* after training, the share of LightGBM's total gain and of the mean |SHAP|;
* the observed direction (sign of Spearman's rho with the default flag on train) against the
  declared risk direction;

and flags any feature above the configured thresholds. Constant features and exact duplicate
columns are found before training (and dropped by default): they carry no information, or the same
information twice, which splits importance and hides dominance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from creditmodel.texts import listed, text
from creditmodel.validation.metrics import auc

TITLE = {"en": "Leakage and dominance guard", "zh": "信息泄露与单一特征主导检查"}


@dataclass(frozen=True)
class GuardThresholds:
    """Where a feature's power becomes implausible (see creditmodel.config.GuardConfig)."""

    iv_max: float = 1.0
    auc_max: float = 0.85
    gain_share_max: float = 0.5
    shap_share_max: float = 0.5
    bins: int = 10


@dataclass
class Screen:
    """Columns kept for training and those found constant or duplicated (with the column they repeat)."""

    kept: list[str]
    constant: list[str] = field(default_factory=list)
    duplicates: dict[str, str] = field(default_factory=dict)

    def dropped(self) -> list[str]:
        return [*self.constant, *self.duplicates]


def _same(a: pd.Series, b: pd.Series) -> bool:
    if not (pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b)):
        return bool(a.astype(object).where(a.notna(), None).equals(b.astype(object).where(b.notna(), None)))
    x, y = a.to_numpy(dtype=float, na_value=np.nan), b.to_numpy(dtype=float, na_value=np.nan)
    return bool(np.array_equal(x, y, equal_nan=True))


def screen_columns(frame: pd.DataFrame, columns: Sequence[str]) -> Screen:
    """Constant columns (one value, nulls included, over all rows) and exact duplicates of an earlier column."""
    constant = [c for c in columns if frame[c].nunique(dropna=False) <= 1]
    rest = [c for c in columns if c not in constant]
    duplicates: dict[str, str] = {}
    by_fingerprint: dict[tuple, list[str]] = {}
    for c in rest:
        col = frame[c]
        key = (col.isna().sum(), str(col.dropna().astype(str).head(3).tolist()), col.nunique())
        twin = next((k for k in by_fingerprint.get(key, []) if _same(frame[k], col)), None)
        if twin is not None:
            duplicates[c] = twin
        else:
            by_fingerprint.setdefault(key, []).append(c)
    return Screen([c for c in rest if c not in duplicates], constant, duplicates)


def _bins(train: pd.Series, other: pd.Series, categorical: bool, bins: int) -> tuple[pd.Series, pd.Series]:
    """Bin labels for both samples: train quantile bins (numeric) or categories; missing is a bin of its own."""
    if categorical:
        a, b = train.astype(object), other.astype(object)
        seen = set(a.dropna().astype(str)) | {"<missing>"}
        other_bins = b.astype(str).where(b.notna(), "<missing>")
        return a.astype(str).where(a.notna(), "<missing>"), other_bins.where(other_bins.isin(seen), "<unseen>")
    x = pd.to_numeric(train, errors="coerce").astype(float)
    z = pd.to_numeric(other, errors="coerce").astype(float)
    qs = np.unique(np.nanquantile(x, np.linspace(0, 1, bins + 1)[1:-1])) if x.notna().any() else np.array([])
    edges = np.concatenate([[-np.inf], qs, [np.inf]])

    def cut(v: pd.Series) -> pd.Series:
        idx = np.searchsorted(edges, v.to_numpy(), side="right").astype(float)
        idx[np.isnan(v.to_numpy())] = -1
        return pd.Series(idx, index=v.index)
    return cut(x), cut(z)


def information_value(bins: pd.Series, y: np.ndarray, eps: float = 0.5) -> float:
    """IV = sum over bins of (share of goods - share of bads) x ln(share of goods / share of bads).

    `eps` is added to every bin's good and bad count, so a bin without defaults gives a large but
    finite WoE (the usual adjustment)."""
    y = np.asarray(y, dtype=float)
    codes, labels = pd.factorize(bins, sort=True)
    bad = np.bincount(codes, weights=y, minlength=len(labels)) + eps
    good = np.bincount(codes, weights=1 - y, minlength=len(labels)) + eps
    g, b = good / good.sum(), bad / bad.sum()
    return float(((g - b) * np.log(g / b)).sum())


def _direction_free_auc(y: np.ndarray, score: np.ndarray) -> float:
    a = auc(y, score)
    return max(a, 1 - a)


def single_feature_auc(train: pd.Series, y_train: np.ndarray, other: pd.Series | None = None,
                       y_other: np.ndarray | None = None, categorical: bool = False) -> tuple[float, float]:
    """Direction-free AUC of one feature alone on train (and on `other` if given).

    Numeric: the raw values, missing values placed below and above all others, the better taken
    (missingness can itself be the leak). Categorical: each category scored by its train default rate
    (unseen and missing values get the train rate overall)."""
    y_train = np.asarray(y_train, dtype=float)
    samples = [(train, y_train)] + ([(other, np.asarray(y_other, dtype=float))] if other is not None else [])
    if categorical:
        key = train.astype(object).where(train.notna(), "<missing>").astype(str)
        rates = pd.Series(y_train, index=key.index).groupby(key).mean()
        out = []
        for x, y in samples:
            k = x.astype(object).where(x.notna(), "<missing>").astype(str)
            out.append(_direction_free_auc(y, k.map(rates).fillna(y_train.mean()).to_numpy()))
    else:
        out = []
        for x, y in samples:
            v = pd.to_numeric(x, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            if np.isnan(v).all():
                out.append(0.5)
                continue
            lo, hi = np.nanmin(v) - 1, np.nanmax(v) + 1
            out.append(max(_direction_free_auc(y, np.where(np.isnan(v), lo, v)),
                           _direction_free_auc(y, np.where(np.isnan(v), hi, v))))
    return out[0], (out[1] if len(out) > 1 else float("nan"))


def _observed_direction(x: pd.Series, y: np.ndarray) -> tuple[int, float]:
    """Sign of Spearman's rho of a numeric feature with the default flag (0 when not significant at 1%)."""
    v = pd.to_numeric(x, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    ok = ~np.isnan(v)
    outcome = np.asarray(y, dtype=float)[ok]
    if ok.sum() < 10 or np.nanstd(v) == 0 or outcome.min() == outcome.max():  # no rho: SciPy would warn and give NaN
        return 0, float("nan")
    rho, p = spearmanr(v[ok], outcome)
    if not np.isfinite(rho):
        return 0, float("nan")
    return (int(np.sign(rho)) if p < 0.05 else 0), float(rho)


def power_table(train: pd.DataFrame, y_train: np.ndarray, oot: pd.DataFrame, y_oot: np.ndarray,
                columns: Sequence[str], categorical: Sequence[str] = (), directions: dict[str, int] | None = None,
                bins: int = 10) -> pd.DataFrame:
    """Per feature: single-feature AUC and IV on train and out of time, declared and observed direction."""
    rows = []
    directions = directions or {}
    for c in columns:
        is_cat = c in categorical
        auc_tr, auc_oot = single_feature_auc(train[c], y_train, oot[c], y_oot, categorical=is_cat)
        b_tr, b_oot = _bins(train[c], oot[c], is_cat, bins)
        declared = int(directions.get(c, 0))
        observed, rho = (0, float("nan")) if is_cat else _observed_direction(train[c], y_train)
        rows.append({"feature": c, "auc_train": auc_tr, "auc_oot": auc_oot,
                     "iv_train": information_value(b_tr, y_train), "iv_oot": information_value(b_oot, y_oot),
                     "declared_direction": declared, "observed_rho_train": rho,
                     "direction_contradicted": bool(declared and observed and observed != declared)})
    return pd.DataFrame(rows)


def importance_shares(booster, encoded: np.ndarray, names: Sequence[str]) -> pd.DataFrame:
    """Each feature's share of LightGBM's total gain and of the total mean |SHAP| (on `encoded` rows)."""
    gain = np.asarray(booster.feature_importance(importance_type="gain"), dtype=float)
    from creditmodel.models.treeshap import shap_values

    contrib = shap_values(booster, encoded, ranked=0)[0]  # pred_contrib's values from the tabulated trees
    shap = np.abs(contrib).mean(axis=0)
    return pd.DataFrame({"feature": list(names),
                         "gain_share": gain / gain.sum() if gain.sum() > 0 else np.zeros_like(gain),
                         "shap_share": shap / shap.sum() if shap.sum() > 0 else np.zeros_like(shap)})


def _reasons(r: dict, t: GuardThresholds, lang: str) -> str:
    """Why a feature of the guard table is flagged or dropped, in words of `lang` ("" when it is not)."""
    checks = [("auc_train", t.auc_max), ("auc_oot", t.auc_max), ("iv_train", t.iv_max),
              ("gain_share", t.gain_share_max), ("shap_share", t.shap_share_max)]
    why = [text(f"progress.guard.{col}", lang, v=r[col], m=limit) for col, limit in checks
           if col in r and r[col] is not None and np.isfinite(r[col]) and r[col] > limit]
    if r.get("status") in ("constant", "duplicate"):
        why.append(text("progress.guard.duplicate_of", lang, twin=r["duplicate_of"]) if r.get("duplicate_of")
                   else text(f"progress.guard.{r['status']}", lang))
    return text("progress.guard.sep", lang).join(why)


def flag(table: pd.DataFrame, t: GuardThresholds) -> pd.DataFrame:
    """Add `flagged` (bool) and `reasons` (why, in words; `reasons_zh` in Chinese) to a guard table, flagged
    features first."""
    out = table.copy()
    records = out.to_dict("records")
    reasons = [_reasons(r, t, "en") for r in records]
    out["reasons"] = reasons
    out["reasons_zh"] = [_reasons(r, t, "zh") for r in records]
    power = out["reasons"].ne("") & ~out.get("status", pd.Series("", index=out.index)).isin(["constant",
                                                                                            "duplicate"])
    out["flagged"] = power
    out["sort"] = ~out["flagged"]
    return (out.sort_values(["sort", "iv_train"], ascending=[True, False], na_position="last")
            .drop(columns="sort").reset_index(drop=True))


def guard_table(train: pd.DataFrame, y_train: np.ndarray, oot: pd.DataFrame, y_oot: np.ndarray, screen: Screen,
                thresholds: GuardThresholds, categorical: Sequence[str] = (), directions: dict[str, int] | None = None,
                booster=None, encoded: np.ndarray | None = None) -> pd.DataFrame:
    """The whole guard table: power of the kept features (and their importance shares when a booster
    and its encoded rows are given), then the constant and duplicate columns that were dropped."""
    table = power_table(train, y_train, oot, y_oot, screen.kept, categorical, directions, thresholds.bins)
    table["status"] = "kept"
    table["duplicate_of"] = ""
    if booster is not None and encoded is not None:
        table = table.merge(importance_shares(booster, encoded, screen.kept), on="feature", how="left")
    extra = [{"feature": c, "status": "constant", "duplicate_of": ""} for c in screen.constant]
    extra += [{"feature": c, "status": "duplicate", "duplicate_of": twin} for c, twin in screen.duplicates.items()]
    if extra:
        table = pd.concat([table, pd.DataFrame(extra)], ignore_index=True)
    table = flag(table, thresholds)
    table["direction_contradicted"] = table["direction_contradicted"].fillna(False).astype(bool)
    return table


def summary_lines(table: pd.DataFrame, lang: str = "en") -> list[str]:
    """One line per flagged feature, contradicted direction and dropped column, for the run output, in `lang`
    (a table without `reasons_zh`, as older runs logged it, gives its English reasons)."""
    said = "reasons_zh" if lang == "zh" and "reasons_zh" in table.columns else "reasons"
    lines = [text("progress.guard.line", lang, feature=r.feature, reasons=getattr(r, said))
             for r in table[table["flagged"]].itertuples()]
    lines += [text("progress.guard.direction", lang, feature=r.feature, direction=int(r.declared_direction),
                   rho=r.observed_rho_train) for r in table[table["direction_contradicted"]].itertuples()]
    dropped = table[table["status"].isin(["constant", "duplicate"])]
    if len(dropped):
        lines.append(text("progress.guard.dropped", lang, features=listed(
            [text("progress.guard.dropped_item", lang, feature=r.feature, reasons=getattr(r, said))
             for r in dropped.itertuples()])))
    return lines
