"""PD-model validation tests (discrimination, calibration, stability), each from its formula, each with a status.

Sources: ECB "Instructions for reporting the validation results of internal models, IRB Pillar I models for
credit risk" (2019, sections 2.5.x) for the Jeffreys test, the AUC change test, the concentration (HI) test and
the migration-matrix bandwidth; DeLong, DeLong & Clarke-Pearson (1988) with the rank algorithm of Sun & Xu (2014)
and Hanley & McNeil (1982) for the AUC variance; Hosmer & Lemeshow (1980); Spiegelhalter (1986).

Every test returns a TestResult whose status is "green", "amber" or "red", judged against thresholds passed in.
For p-value tests a small p is bad (red if p < red, amber if p < amber); for indices (PSI, HI, ...) a large value
is bad (red if value >= red, amber if value >= amber). A p-value or index that cannot be computed (NaN) is amber:
it needs a look and must never pass silently as green.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import beta, binom, chi2, norm, rankdata

from creditmodel.validation.metrics import auc, brier

__all__ = [
    "AMBER", "GREEN", "RED", "CAPCurve", "CalibrationResult", "MigrationMatrix", "Status", "TestResult",
    "auc_change_test", "auc_confidence", "binomial_p", "binomial_test", "brier", "cap_curve",
    "concentration_change_test", "csi", "csi_against", "csi_reference", "delong_placements", "hanley_mcneil_q",
    "herfindahl", "hosmer_lemeshow", "jeffreys_p", "jeffreys_test", "migration_matrix", "psi", "psi_counts",
    "spiegelhalter", "status_from_p", "status_from_value", "summary_table",
]

Status = Literal["green", "amber", "red"]
GREEN: Status = "green"
AMBER: Status = "amber"
RED: Status = "red"

MISSING = "<missing>"


# --------------------------------------------------------------------------- status and result


def status_from_p(p: float | None, red: float = 0.05, amber: float = 0.10) -> Status:
    """Traffic light for a p-value where small means the model fails: red if p < red, amber if p < amber."""
    if not 0 <= red <= amber <= 1:
        raise ValueError(f"p thresholds must satisfy 0 <= red <= amber <= 1, got red={red}, amber={amber}")
    if p is None or np.isnan(p):
        return AMBER
    return RED if p < red else AMBER if p < amber else GREEN


def status_from_value(value: float | None, amber: float, red: float) -> Status:
    """Traffic light for an index where large means bad: red if value >= red, amber if value >= amber."""
    if amber > red:
        raise ValueError(f"value thresholds must satisfy amber <= red, got amber={amber}, red={red}")
    if value is None or np.isnan(value):
        return AMBER
    return RED if value >= red else AMBER if value >= amber else GREEN


def _status_below(value: float, amber: float, red: float) -> Status:
    """Traffic light for a quality measure where small means bad (e.g. AUC): red if value < red."""
    if red > amber:
        raise ValueError(f"thresholds must satisfy red <= amber, got red={red}, amber={amber}")
    if np.isnan(value):
        return AMBER
    return RED if value < red else AMBER if value < amber else GREEN


def _p_rule(red: float, amber: float) -> str:
    return f"red p<{red:g}, amber p<{amber:g}"


def _value_rule(amber: float, red: float) -> str:
    return f"amber >={amber:g}, red >={red:g}"


@dataclass
class TestResult:
    """One validation test: headline value, p-value (None when not a test), status and the rule that set it."""

    __test__ = False  # not a pytest test class

    name: str
    value: float
    p_value: float | None
    status: Status
    threshold: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A flat row for a summary table: the headline fields plus the scalar entries of detail."""
        row: dict[str, Any] = {"name": self.name, "value": self.value, "p_value": self.p_value,
                               "status": self.status, "threshold": self.threshold}
        row.update({k: v for k, v in self.detail.items() if np.isscalar(v) or v is None})
        return row


def summary_table(results: Sequence[TestResult]) -> pd.DataFrame:
    """One row per test result, for a validation report."""
    return pd.DataFrame([r.to_dict() for r in results])


# --------------------------------------------------------------------------- input checks


def _labels(y: Any, name: str = "y") -> np.ndarray:
    y = np.asarray(y, dtype=np.float64).ravel()
    if y.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"{name}: labels must be 0 or 1")
    return y


def _same_length(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"length mismatch: {a.size} labels but {b.size} {what}")


def _scores(y: Any, score: Any) -> tuple[np.ndarray, np.ndarray]:
    y = _labels(y)
    score = np.asarray(score, dtype=np.float64).ravel()
    _same_length(y, score, "scores")
    if np.isnan(score).any():
        raise ValueError("scores contain NaN")
    return y, score


def _pds(y: Any, pd_: Any) -> tuple[np.ndarray, np.ndarray]:
    y, pd_ = _scores(y, pd_)
    if (pd_ < 0).any() or (pd_ > 1).any():
        raise ValueError("PD outside [0, 1]")
    return y, pd_


def _both_classes(y: np.ndarray, minimum: int = 1) -> tuple[int, int]:
    n_d = int(y.sum())
    n_nd = int(y.size - n_d)
    if n_d < minimum or n_nd < minimum:
        raise ValueError(f"need at least {minimum} default(s) and {minimum} non-default(s), "
                         f"got {n_d} and {n_nd}")
    return n_d, n_nd


# --------------------------------------------------------------------------- discrimination


def delong_placements(y: Any, score: Any) -> tuple[np.ndarray, np.ndarray]:
    """DeLong placement values (V10 per default, V01 per non-default) from midranks, O(n log n) (Sun & Xu 2014).

    V10_i = share of non-defaults scored below default i, V01_j = share of defaults scored above
    non-default j (ties count 1/2); AUC = mean(V10) = mean(V01).
    """
    y, score = _scores(y, score)
    n_d, n_nd = _both_classes(y)
    pos, neg = score[y == 1], score[y == 0]
    tz = rankdata(np.concatenate([pos, neg]))
    v10 = (tz[:n_d] - rankdata(pos)) / n_nd
    v01 = 1.0 - (tz[n_d:] - rankdata(neg)) / n_d
    return v10, v01


def hanley_mcneil_q(auc_value: float) -> tuple[float, float]:
    """Hanley & McNeil (1982) Q1 = AUC/(2-AUC), Q2 = 2 AUC^2/(1+AUC)."""
    return auc_value / (2.0 - auc_value), 2.0 * auc_value**2 / (1.0 + auc_value)


def _mann_whitney_var(a: float, n_d: int, n_nd: int) -> float:
    q1, q2 = hanley_mcneil_q(a)
    return (a * (1 - a) + (n_d - 1) * (q1 - a**2) + (n_nd - 1) * (q2 - a**2)) / (n_d * n_nd)


def auc_confidence(
    y: Any,
    score: Any,
    alpha: float = 0.05,
    method: Literal["delong", "mann_whitney"] = "delong",
    amber: float = 0.70,
    red: float = 0.60,
) -> TestResult:
    """AUC with standard error and two-sided (1-alpha) normal CI; status from the AUC level (red < red, amber < amber).

    "delong": variance S10/N_D + S01/N_ND of the placement values (DeLong et al. 1988).
    "mann_whitney": the ECB (2019) formula s^2 = (A(1-A) + (N_D-1)(Q1-A^2) + (N_ND-1)(Q2-A^2)) / (N_D N_ND)
    with Hanley-McNeil Q1, Q2. The AUC thresholds are judgement defaults: set them per portfolio.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    y, score = _scores(y, score)
    if method == "delong":
        n_d, n_nd = _both_classes(y, minimum=2)
        v10, v01 = delong_placements(y, score)
        a = float(v10.mean())
        var = float(v10.var(ddof=1) / n_d + v01.var(ddof=1) / n_nd)
    elif method == "mann_whitney":
        n_d, n_nd = _both_classes(y)
        a = auc(y, score)
        var = _mann_whitney_var(a, n_d, n_nd)
    else:
        raise ValueError(f"method must be 'delong' or 'mann_whitney', got {method!r}")
    se = float(np.sqrt(max(var, 0.0)))
    z = float(norm.ppf(1 - alpha / 2))
    return TestResult(
        name=f"auc ({method})", value=a, p_value=None, status=_status_below(a, amber, red),
        threshold=f"red AUC<{red:g}, amber AUC<{amber:g}",
        detail={"se": se, "variance": var, "ci_low": max(a - z * se, 0.0), "ci_high": min(a + z * se, 1.0),
                "alpha": alpha, "method": method, "n_defaults": n_d, "n_non_defaults": n_nd},
    )


def auc_change_test(
    auc_current: float, se_current: float, auc_initial: float, red: float = 0.05, amber: float = 0.10
) -> TestResult:
    """ECB (2019) one-sided test of H0 "current AUC is not lower than at initial development".

    S = (AUC_init - AUC_curr) / s_curr, p = 1 - Phi(S); a small p means discrimination has deteriorated.
    """
    for label, v in (("auc_current", auc_current), ("auc_initial", auc_initial)):
        if not 0 <= v <= 1:
            raise ValueError(f"{label} must lie in [0, 1], got {v}")
    if not se_current > 0:
        raise ValueError(f"se_current must be positive, got {se_current}")
    s = (auc_initial - auc_current) / se_current
    p = float(norm.sf(s))
    return TestResult(
        name="auc change", value=float(auc_current - auc_initial), p_value=p, status=status_from_p(p, red, amber),
        threshold=_p_rule(red, amber),
        detail={"statistic": float(s), "auc_current": auc_current, "auc_initial": auc_initial, "se": se_current},
    )


@dataclass
class CAPCurve:
    """Cumulative accuracy profile: share of obligors (riskiest first) against share of defaults captured."""

    population_share: np.ndarray
    default_share: np.ndarray
    accuracy_ratio: float


def cap_curve(y: Any, score: Any) -> CAPCurve:
    """CAP points (higher score = riskier; tied scores form one linear segment) and the accuracy ratio.

    AR = (area under CAP - 1/2) / (area under the perfect CAP - 1/2), which equals 2 AUC - 1
    (Engelmann, Hayden & Tasche 2003); with tied scores joined linearly it holds with ties too.
    """
    y, score = _scores(y, score)
    _both_classes(y)
    frame = pd.DataFrame({"s": score, "y": y}).groupby("s", sort=True)["y"].agg(["size", "sum"]).iloc[::-1]
    x = np.r_[0.0, np.cumsum(frame["size"].to_numpy()) / y.size]
    d = np.r_[0.0, np.cumsum(frame["sum"].to_numpy()) / y.sum()]
    area = float(np.sum(np.diff(x) * (d[1:] + d[:-1]) / 2))
    rate = y.mean()
    perfect = 1.0 - rate / 2.0
    return CAPCurve(population_share=x, default_share=d, accuracy_ratio=(area - 0.5) / (perfect - 0.5))


# --------------------------------------------------------------------------- calibration


def jeffreys_p(defaults: Any, n: Any, pd_: Any) -> np.ndarray | float:
    """ECB (2019) Jeffreys test p-value = BetaCDF(PD; D + 1/2, N - D + 1/2); small p: PD underestimated."""
    d, n, p = (np.asarray(v, dtype=np.float64) for v in (defaults, n, pd_))
    _check_counts(d, n, p)
    out = beta.cdf(p, d + 0.5, n - d + 0.5)
    return float(out) if out.ndim == 0 else out


def binomial_p(defaults: Any, n: Any, pd_: Any) -> np.ndarray | float:
    """One-sided exact binomial p-value P(X >= D | N, PD); H0: PD is not underestimated."""
    d, n, p = (np.asarray(v, dtype=np.float64) for v in (defaults, n, pd_))
    _check_counts(d, n, p)
    out = binom.sf(d - 1, n, p)
    return float(out) if out.ndim == 0 else out


def _check_counts(d: np.ndarray, n: np.ndarray, p: np.ndarray) -> None:
    if (n <= 0).any():
        raise ValueError("n must be positive")
    if (d < 0).any() or (d > n).any():
        raise ValueError("defaults must lie in [0, n]")
    if (p < 0).any() or (p > 1).any():
        raise ValueError("PD outside [0, 1]")


@dataclass
class CalibrationResult:
    """A calibration test overall and per grade (grade, n, defaults, pd, default_rate, p_value, status)."""

    overall: TestResult
    grades: pd.DataFrame


GRADE_COLUMNS = ["grade", "n", "defaults", "pd", "default_rate", "p_value", "status"]


def _grade_table(y: np.ndarray, pd_: np.ndarray, grade: Any | None) -> pd.DataFrame:
    if grade is None:
        return pd.DataFrame(columns=GRADE_COLUMNS[:5])
    g = grade.reset_index(drop=True) if isinstance(grade, pd.Series) else pd.Series(np.asarray(grade).ravel())
    if g.size != y.size:
        raise ValueError(f"length mismatch: {y.size} labels but {g.size} grades")
    if g.isna().any():
        raise ValueError("grade contains missing values")
    frame = pd.DataFrame({"grade": g, "y": y, "pd": pd_})
    table = frame.groupby("grade", sort=True, observed=True).agg(n=("y", "size"), defaults=("y", "sum"),
                                                                 pd=("pd", "mean")).reset_index()
    table["defaults"] = table["defaults"].astype(int)
    table["default_rate"] = table["defaults"] / table["n"]
    return table


def _calibration(name: str, pfun: Any, y: Any, pd_: Any, grade: Any | None, red: float, amber: float,
                 ) -> CalibrationResult:
    y, pd_ = _pds(y, pd_)
    table = _grade_table(y, pd_, grade)
    args = (table["defaults"].to_numpy(), table["n"].to_numpy(), table["pd"].to_numpy())
    table["p_value"] = pfun(*args) if len(table) else []
    table["status"] = [status_from_p(p, red, amber) for p in table["p_value"]]
    d, n, mean_pd = float(y.sum()), float(y.size), float(pd_.mean())
    p = float(pfun(d, n, mean_pd))
    overall = TestResult(
        name=name, value=d / n, p_value=p, status=status_from_p(p, red, amber), threshold=_p_rule(red, amber),
        detail={"n": int(n), "defaults": int(d), "pd": mean_pd,
                "grades_red": int((table["status"] == RED).sum()),
                "grades_amber": int((table["status"] == AMBER).sum())},
    )
    return CalibrationResult(overall=overall, grades=table[GRADE_COLUMNS].reset_index(drop=True))


def jeffreys_test(y: Any, pd_: Any, grade: Any | None = None, red: float = 0.05, amber: float = 0.10,
                  ) -> CalibrationResult:
    """ECB (2019, 2.5.3.1) Jeffreys test per grade and overall; PD = mean PD of the grade (or of the portfolio).

    One-sided: p = BetaCDF(PD; D + 1/2, N - D + 1/2), the Jeffreys-posterior probability that the true default
    rate is below the PD. Small p means the PD is underestimated. value = observed default rate.
    """
    return _calibration("jeffreys", jeffreys_p, y, pd_, grade, red, amber)


def binomial_test(y: Any, pd_: Any, grade: Any | None = None, red: float = 0.05, amber: float = 0.10,
                  ) -> CalibrationResult:
    """Exact one-sided binomial test per grade and overall: p = P(X >= D | N, PD), H0 PD not underestimated."""
    return _calibration("binomial", binomial_p, y, pd_, grade, red, amber)


def hosmer_lemeshow(
    y: Any, pd_: Any, grade: Any | None = None, n_groups: int = 10, df: int | None = None,
    red: float = 0.05, amber: float = 0.10,
) -> TestResult:
    """Hosmer-Lemeshow chi^2 = sum_g (D_g - N_g p_g)^2 / (N_g p_g (1 - p_g)) over grades (or PD quantile groups).

    df defaults to G, the number of groups: the right choice when testing a calibrated master scale on data it
    was not fitted on (out of sample). For in-sample groups of a fitted model pass df = G - 2. p = chi2.sf.
    """
    y, pd_ = _pds(y, pd_)
    if grade is None:
        if n_groups < 1:
            raise ValueError(f"n_groups must be at least 1, got {n_groups}")
        grade = pd.qcut(pd.Series(pd_).rank(method="first"), q=min(n_groups, y.size), labels=False).to_numpy()
    table = _grade_table(y, pd_, grade)
    p_bar = table["pd"].to_numpy()
    if ((p_bar <= 0) | (p_bar >= 1)).any():
        raise ValueError("a group has mean PD 0 or 1: Hosmer-Lemeshow is undefined there")
    expected = table["n"].to_numpy() * p_bar
    table["expected"] = expected
    table["contribution"] = (table["defaults"] - expected) ** 2 / (expected * (1 - p_bar))
    stat = float(table["contribution"].sum())
    groups = len(table)
    dof = groups if df is None else df
    if dof < 1:
        raise ValueError(f"df must be at least 1, got {dof}")
    p = float(chi2.sf(stat, dof))
    return TestResult(name="hosmer-lemeshow", value=stat, p_value=p, status=status_from_p(p, red, amber),
                      threshold=_p_rule(red, amber), detail={"df": dof, "groups": groups, "table": table})


def spiegelhalter(y: Any, pd_: Any, red: float = 0.05, amber: float = 0.10) -> TestResult:
    """Spiegelhalter (1986) z = sum (y - p)(1 - 2p) / sqrt(sum (1 - 2p)^2 p (1 - p)), two-sided normal p-value.

    The numerator equals sum (y - p)^2 - sum p (1 - p): the Brier score minus its expectation under H0 (PD right).
    """
    y, pd_ = _pds(y, pd_)
    var = float(np.sum((1 - 2 * pd_) ** 2 * pd_ * (1 - pd_)))
    if var <= 0:
        raise ValueError("Spiegelhalter variance is 0 (every PD is 0, 1/2 or 1)")
    z = float(np.sum((y - pd_) * (1 - 2 * pd_)) / np.sqrt(var))
    p = float(2 * norm.sf(abs(z)))
    return TestResult(name="spiegelhalter", value=z, p_value=p, status=status_from_p(p, red, amber),
                      threshold=_p_rule(red, amber), detail={"brier": brier(y, pd_), "n": int(y.size)})


# --------------------------------------------------------------------------- stability


def _psi_result(name: str, expected: pd.Series, actual: pd.Series, eps: float, amber: float, red: float,
                ) -> TestResult:
    """PSI = sum (a - e) ln(a / e) over aligned category counts; shares below eps are raised to eps."""
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    counts = pd.concat({"expected": expected, "actual": actual}, axis=1, sort=False).fillna(0.0)
    if (counts < 0).to_numpy().any():
        raise ValueError("counts must be non-negative")
    for col in counts:
        if counts[col].sum() <= 0:
            raise ValueError(f"{col} is empty")
    e = counts["expected"] / counts["expected"].sum()
    a = counts["actual"] / counts["actual"].sum()
    e_, a_ = e.clip(lower=eps), a.clip(lower=eps)
    table = pd.DataFrame({"bin": counts.index, "expected_share": e.to_numpy(), "actual_share": a.to_numpy(),
                          "contribution": ((a_ - e_) * np.log(a_ / e_)).to_numpy()})
    value = float(table["contribution"].sum())
    return TestResult(name=name, value=value, p_value=None, status=status_from_value(value, amber, red),
                      threshold=_value_rule(amber, red), detail={"bins": len(table), "table": table})


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _as_series(values: Any) -> pd.Series:
    if isinstance(values, pd.Series):
        return values.reset_index(drop=True)
    return pd.Series(np.asarray(values).ravel())


def _category_counts(values: pd.Series) -> pd.Series:
    return values.astype(object).where(values.notna(), MISSING).value_counts(sort=False).astype(float)


def _binned_counts(expected: pd.Series, actual: pd.Series, bins: int | Sequence[float],
                   ) -> tuple[pd.Series, pd.Series]:
    """Counts in bins (-inf, c1], (c1, c2], ..., (ck, inf) with cuts at expected's quantiles, plus a missing bin."""
    e = expected.to_numpy(dtype=np.float64, na_value=np.nan)
    a = actual.to_numpy(dtype=np.float64, na_value=np.nan)
    present = e[~np.isnan(e)]
    if isinstance(bins, int | np.integer):
        if bins < 1:
            raise ValueError(f"bins must be at least 1, got {bins}")
        cuts = np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]) if present.size else np.array([])
    else:
        cuts = np.asarray(bins, dtype=np.float64)
    cuts = np.unique(cuts[np.isfinite(cuts)])
    edges = np.r_[-np.inf, cuts, np.inf]
    labels = [f"({lo:.6g}, {hi:.6g}]" for lo, hi in zip(edges[:-1], edges[1:], strict=True)] + [MISSING]

    def count(x: np.ndarray) -> pd.Series:
        idx = np.where(np.isnan(x), len(edges) - 1, np.searchsorted(cuts, x, side="left"))
        return pd.Series(np.bincount(idx, minlength=len(labels)).astype(float), index=labels)

    ce, ca = count(e), count(a)
    keep = (ce > 0) | (ca > 0) | (ce.index != MISSING)  # drop the missing bin when neither side has one
    return ce[keep], ca[keep]


def psi(
    expected: Any, actual: Any, bins: int | Sequence[float] = 10, categorical: bool | None = None,
    eps: float = 1e-4, amber: float = 0.10, red: float = 0.25,
) -> TestResult:
    """Population stability index of actual against expected: sum (a_i - e_i) ln(a_i / e_i) over bins.

    Numeric values are cut at the quantiles of expected (`bins` quantile bins, or explicit cut points) with a
    separate bin for missing values; categorical values (grades, or non-numeric data) count per category.
    Empty bins get share eps. Status: green < 0.10, amber < 0.25, red >= 0.25 (industry convention).
    """
    e, a = _as_series(expected), _as_series(actual)
    for label, s in (("expected", e), ("actual", a)):
        if s.size == 0:
            raise ValueError(f"{label} is empty")
    if categorical is None:
        categorical = not (_is_numeric(e) and _is_numeric(a))
    if categorical:
        ce, ca = _category_counts(e), _category_counts(a)
    else:
        ce, ca = _binned_counts(e, a, bins)
    return _psi_result("psi", ce, ca, eps, amber, red)


def psi_counts(expected_counts: Any, actual_counts: Any, eps: float = 1e-4, amber: float = 0.10, red: float = 0.25,
               ) -> TestResult:
    """PSI from counts per category (e.g. obligors per grade): mappings/Series align by key, arrays by position."""
    def series(c: Any) -> pd.Series:
        if isinstance(c, Mapping):
            return pd.Series(dict(c), dtype=float)
        if isinstance(c, pd.Series):
            return c.astype(float)
        return pd.Series(np.asarray(c, dtype=np.float64).ravel())

    e, a = series(expected_counts), series(actual_counts)
    if not isinstance(expected_counts, Mapping | pd.Series) and e.size != a.size:
        raise ValueError(f"length mismatch: {e.size} expected counts but {a.size} actual counts")
    return _psi_result("psi", e, a, eps, amber, red)


def csi(
    dev_frame: pd.DataFrame, later_frame: pd.DataFrame, columns: Sequence[str] | None = None,
    bins: int = 10, eps: float = 1e-4, amber: float = 0.10, red: float = 0.25,
) -> pd.DataFrame:
    """Characteristic stability index: the PSI of each feature, later against development.

    Numeric features are binned on development quantiles with a separate missing bin; other features count per
    category (missing as its own category). Returns one row per feature: feature, kind, psi, bins, status.
    """
    if columns is None:
        columns = [c for c in dev_frame.columns if c in later_frame.columns]
    if len(columns) == 0:
        raise ValueError("no columns to compare")
    rows = []
    for col in columns:
        for label, frame in (("dev_frame", dev_frame), ("later_frame", later_frame)):
            if col not in frame.columns:
                raise ValueError(f"column {col!r} missing from {label}")
        numeric = _is_numeric(dev_frame[col]) and _is_numeric(later_frame[col])
        if numeric and isinstance(bins, int | np.integer) and bins >= 1 and eps > 0:
            value, n_bins = _numeric_psi_from(_numeric_reference(dev_frame[col], int(bins)), later_frame[col], eps)
            rows.append({"feature": col, "kind": "numeric", "psi": value, "bins": n_bins,
                         "status": status_from_value(value, amber, red)})
            continue
        r = psi(dev_frame[col], later_frame[col], bins=bins, categorical=not numeric, eps=eps, amber=amber, red=red)
        rows.append({"feature": col, "kind": "numeric" if numeric else "categorical", "psi": r.value,
                     "bins": r.detail["bins"], "status": r.status})
    return pd.DataFrame(rows)


def csi_reference(dev_frame: pd.DataFrame, columns: Sequence[str], bins: int = 10) -> dict[str, dict[str, Any]]:
    """The development side of :func:`csi`, per column: numeric columns as their quantile cuts and the
    counts in each bin, others as the counts per category in order of appearance. JSON-ready: a
    monitoring run carries it to the next date instead of the development sample itself."""
    out: dict[str, dict[str, Any]] = {}
    for col in columns:
        values = dev_frame[col]
        if _is_numeric(values):
            cuts, counts = _numeric_reference(values, int(bins))
            out[col] = {"kind": "numeric", "cuts": [float(c) for c in cuts], "counts": [float(c) for c in counts]}
        else:
            counts = _category_counts(values)
            out[col] = {"kind": "categorical",
                        "categories": [k.item() if isinstance(k, np.generic) else k for k in counts.index],
                        "counts": [float(c) for c in counts.to_numpy()]}
    return out


def csi_against(reference: Mapping[str, Mapping[str, Any]], later_frame: pd.DataFrame, eps: float = 1e-4,
                amber: float = 0.10, red: float = 0.25) -> pd.DataFrame:
    """:func:`csi` of ``later_frame`` against a development sample given by its :func:`csi_reference`
    (same bins): the same numbers as with the sample itself."""
    rows = []
    for col, ref in reference.items():
        if col not in later_frame.columns:
            raise ValueError(f"column {col!r} missing from later_frame")
        later = later_frame[col]
        if ref["kind"] == "numeric":
            if not _is_numeric(later):
                raise ValueError(f"column {col!r} is numeric in the reference but not in later_frame")
            cuts = np.asarray(ref["cuts"], dtype=np.float64)
            value, n_bins = _numeric_psi_from((cuts, np.asarray(ref["counts"], dtype=np.float64)), later, eps)
            rows.append({"feature": col, "kind": "numeric", "psi": value, "bins": n_bins,
                         "status": status_from_value(value, amber, red)})
            continue
        expected = pd.Series(ref["counts"], index=pd.Index(ref["categories"], dtype=object), dtype=float)
        r = _psi_result("psi", expected, _category_counts(later), eps, amber, red)
        rows.append({"feature": col, "kind": "categorical", "psi": r.value, "bins": r.detail["bins"],
                     "status": r.status})
    return pd.DataFrame(rows)


def _numeric_reference(expected: pd.Series, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """The cuts at ``expected``'s quantiles and its counts per bin (the last bin: missing)."""
    e = expected.to_numpy(dtype=np.float64, na_value=np.nan)
    if e.size == 0:
        raise ValueError("expected is empty")
    present = e[~np.isnan(e)]
    cuts = np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]) if present.size else np.array([])
    cuts = np.unique(cuts[np.isfinite(cuts)])
    return cuts, _bin_counts(cuts, e)


def _bin_counts(cuts: np.ndarray, x: np.ndarray) -> np.ndarray:
    n_labels = len(cuts) + 2  # the bins between the cuts, then the missing bin
    idx = np.where(np.isnan(x), n_labels - 1, np.searchsorted(cuts, x, side="left"))
    return np.bincount(idx, minlength=n_labels).astype(float)


def _numeric_psi_from(reference: tuple[np.ndarray, np.ndarray], actual: pd.Series, eps: float) -> tuple[float, int]:
    """`psi(expected, actual, bins)` of numeric data from expected's cuts and counts, value and number of
    bins, without its per-bin table: the same cuts, counts and arithmetic in numpy (csi runs it on every
    feature; tests check equality)."""
    cuts, ce = reference
    a = actual.to_numpy(dtype=np.float64, na_value=np.nan)
    if a.size == 0:
        raise ValueError("actual is empty")
    ca = _bin_counts(cuts, a)
    keep = np.ones(len(ce), dtype=bool)
    keep[-1] = ce[-1] > 0 or ca[-1] > 0
    ce, ca = ce[keep], ca[keep]
    es, as_ = ce / ce.sum(), ca / ca.sum()
    e_, a_ = np.clip(es, eps, None), np.clip(as_, eps, None)
    contribution = (a_ - e_) * np.log(a_ / e_)
    return float(pd.Series(contribution).sum()), int(keep.sum())


def _grade_counts(counts: Any) -> np.ndarray:
    if isinstance(counts, Mapping):
        counts = list(counts.values())
    c = np.asarray(counts, dtype=np.float64).ravel()
    if c.size < 2:
        raise ValueError(f"need at least 2 grades, got {c.size}")
    if np.isnan(c).any() or (c < 0).any():
        raise ValueError("grade counts must be non-negative numbers")
    if c.sum() <= 0:
        raise ValueError("grade counts are all zero")
    return c


def _cv(c: np.ndarray) -> float:
    r = c / c.sum()
    return float(np.sqrt(c.size * np.sum((r - 1.0 / c.size) ** 2)))


def herfindahl(grade_counts: Any, amber: float = 0.20, red: float = 0.30) -> TestResult:
    """Concentration of obligors (or exposure) over K grades: HHI = sum s_i^2, ECB CV and HI (value).

    CV = sqrt(K sum (R_i - 1/K)^2), HI = 1 + ln((CV^2 + 1)/K) / ln K (ECB 2019, 2.5.5.3); HI = 0 for a uniform
    spread, 1 with everything in one grade (CV^2 + 1 = K HHI). Grades with zero count still count in K.
    The amber/red HI levels are judgement defaults of this kit, not ECB values.
    """
    c = _grade_counts(grade_counts)
    k = c.size
    s = c / c.sum()
    cv = _cv(c)
    hi = float(1 + np.log((cv**2 + 1) / k) / np.log(k))
    return TestResult(name="herfindahl", value=hi, p_value=None, status=status_from_value(hi, amber, red),
                      threshold=_value_rule(amber, red), detail={"hhi": float(np.sum(s**2)), "cv": cv, "k": k})


def concentration_change_test(counts_initial: Any, counts_current: Any, red: float = 0.05, amber: float = 0.10,
                              ) -> TestResult:
    """ECB (2019, 2.5.5.3) one-sided test of H0 "concentration is not higher than at initial development".

    p = 1 - Phi( sqrt(K-1) (CV_curr - CV_init) / sqrt(CV_curr^2 (0.5 + CV_curr^2)) ), an asymptotic test on
    the coefficient of variation of the grade shares; value = HI_curr - HI_init.
    """
    ci, cc = _grade_counts(counts_initial), _grade_counts(counts_current)
    if ci.size != cc.size:
        raise ValueError(f"grade count mismatch: {ci.size} initial grades but {cc.size} current grades")
    k = cc.size
    cv_i, cv_c = _cv(ci), _cv(cc)
    if cv_c == 0:
        s, p = -np.inf, 1.0  # a uniform current spread cannot be more concentrated
    else:
        s = np.sqrt(k - 1) * (cv_c - cv_i) / np.sqrt(cv_c**2 * (0.5 + cv_c**2))
        p = float(norm.sf(s))
    hi_i, hi_c = herfindahl(ci).value, herfindahl(cc).value
    return TestResult(name="concentration change", value=hi_c - hi_i, p_value=p,
                      status=status_from_p(p, red, amber), threshold=_p_rule(red, amber),
                      detail={"statistic": float(s), "cv_initial": cv_i, "cv_current": cv_c,
                              "hi_initial": hi_i, "hi_current": hi_c, "k": k})


@dataclass
class MigrationMatrix:
    """Grade migrations: counts and row-normalised rates (rows = grade from, columns = grade to) and summary."""

    counts: pd.DataFrame
    rates: pd.DataFrame
    summary: dict[str, float]


def _mwb(n: np.ndarray, upper: bool) -> float:
    """ECB (2019, 2.5.5.1) matrix weighted bandwidth: sum |i-j| n_ij / sum max(|i-K|, |i-1|) n_ij (1-based)."""
    k = n.shape[0]
    i, j = np.indices(n.shape) + 1
    side = j > i if upper else j < i
    norm_ = np.sum(np.maximum(np.abs(i - k), np.abs(i - 1)) * n * side)
    return float(np.sum(np.abs(i - j) * n * side) / norm_) if norm_ > 0 else 0.0


def migration_matrix(grade_from: Any, grade_to: Any, grades: Sequence[Any] | None = None) -> MigrationMatrix:
    """Transitions between two rating dates, grades ordered best to worst (default: sorted observed grades).

    summary: n, diagonal_share (staying), down_more_than_one / up_more_than_one (share moving more than one grade
    towards worse / better grades), mwb_upper / mwb_lower (ECB bandwidth of moves to worse / better grades; 0
    when there are none). Rates of a grade nobody started in are NaN.
    """
    f, t = np.asarray(grade_from, dtype=object).ravel(), np.asarray(grade_to, dtype=object).ravel()
    if f.size == 0:
        raise ValueError("grade_from is empty")
    if f.size != t.size:
        raise ValueError(f"length mismatch: {f.size} grades from but {t.size} grades to")
    if pd.isna(f).any() or pd.isna(t).any():
        raise ValueError("grades contain missing values")
    order = list(grades) if grades is not None else sorted(set(f) | set(t))
    pos = {g: i for i, g in enumerate(order)}
    if len(pos) != len(order):
        raise ValueError("grades contain duplicates")
    unknown = (set(f) | set(t)) - set(pos)
    if unknown:
        raise ValueError(f"grades not in the grade list: {sorted(map(str, unknown))}")
    k = len(order)
    fi = np.array([pos[g] for g in f])
    ti = np.array([pos[g] for g in t])
    n = np.zeros((k, k))
    np.add.at(n, (fi, ti), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = n / n.sum(axis=1, keepdims=True)
    step = ti - fi
    summary = {"n": float(f.size), "diagonal_share": float(np.mean(step == 0)),
               "down_more_than_one": float(np.mean(step > 1)), "up_more_than_one": float(np.mean(step < -1)),
               "mwb_upper": _mwb(n, upper=True), "mwb_lower": _mwb(n, upper=False)}
    index = pd.Index(order, name="grade_from")
    columns = pd.Index(order, name="grade_to")
    return MigrationMatrix(counts=pd.DataFrame(n.astype(int), index=index, columns=columns),
                           rates=pd.DataFrame(rates, index=index, columns=columns), summary=summary)
