"""Risk-covering loan pricing from a PD bundle.

rate = funding cost + operating cost + expected loss (PD x LGD) + capital charge + margin,

with LGD set by guarantee type and the capital charge = cost of capital x economic capital, the
capital being the Basel IRB requirement for retail exposures (asset correlation falls with PD).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from creditmodel.config import PricingConfig
from creditmodel.exceptions import RequestError
from creditmodel.export.bundle import PDBundle

COMPONENTS = ("funding_cost", "operating_cost", "expected_loss", "capital_charge", "margin")


def retail_correlation(pd_: np.ndarray) -> np.ndarray:
    """Basel II asset correlation for 'other retail' exposures: 3% for high PDs up to 16% for low ones."""
    w = (1 - np.exp(-35 * pd_)) / (1 - np.exp(-35))
    return 0.03 * w + 0.16 * (1 - w)


def capital_requirement(pd_: np.ndarray, lgd: np.ndarray, confidence: float = 0.999) -> np.ndarray:
    """Unexpected loss per unit of exposure at `confidence` (Vasicek one-factor, Basel IRB retail)."""
    pd_ = np.clip(np.asarray(pd_, dtype=np.float64), 1e-6, 1 - 1e-9)
    lgd = np.asarray(lgd, dtype=np.float64)
    r = retail_correlation(pd_)
    conditional_pd = norm.cdf((norm.ppf(pd_) + np.sqrt(r) * norm.ppf(confidence)) / np.sqrt(1 - r))
    return np.maximum(lgd * (conditional_pd - pd_), 0.0)


def price(applications: pd.DataFrame, config: PricingConfig) -> pd.DataFrame:
    """Price rows holding loan_id, guarantee_type and pd; each component of the rate in its own column."""
    for col in ("loan_id", "guarantee_type", "pd"):
        if col not in applications.columns:
            raise RequestError(f"pricing input: column {col!r} is missing")
    unknown = sorted(set(applications["guarantee_type"].dropna().astype(str)) - set(config.lgd))
    if unknown or applications["guarantee_type"].isna().any():
        raise RequestError(f"pricing input: guarantee_type {unknown[0] if unknown else None!r} has no LGD; "
                           f"expected one of {sorted(config.lgd)}")
    pd_ = applications["pd"].to_numpy(dtype=np.float64)
    if np.any(~np.isfinite(pd_)) or np.any((pd_ < 0) | (pd_ > 1)):
        raise RequestError("pricing input: pd must be a number in [0, 1]")
    lgd = applications["guarantee_type"].map(config.lgd).to_numpy(dtype=np.float64)
    out = pd.DataFrame({"loan_id": applications["loan_id"].to_numpy()})
    for col in ("grade", "guarantee_type", "amount"):
        if col in applications.columns:
            out[col] = applications[col].to_numpy()
    out["pd"] = pd_
    out["lgd"] = lgd
    out["funding_cost"] = config.funding_cost
    out["operating_cost"] = config.operating_cost
    out["expected_loss"] = pd_ * lgd
    out["economic_capital"] = capital_requirement(pd_, lgd)
    out["capital_charge"] = config.cost_of_capital * out["economic_capital"]
    out["margin"] = config.margin
    out["rate"] = out[list(COMPONENTS)].sum(axis=1)
    out["above_max_rate"] = out["rate"] > config.max_rate
    return out


def price_with_bundle(bundle: PDBundle, features: pd.DataFrame, config: PricingConfig) -> pd.DataFrame:
    """Score feature rows with the bundle alone, then price them."""
    if "loan_id" not in features.columns:
        raise RequestError("pricing input: column 'loan_id' is missing")
    pd_ = bundle.predict_pd(features)
    if config.pd_basis == "grade":
        pd_ = bundle.master_scale.grade_pd(pd_)
    scored = pd.DataFrame({
        "loan_id": features["loan_id"].to_numpy(),
        "guarantee_type": features["guarantee_type"].to_numpy() if "guarantee_type" in features else None,
        "pd": pd_,
        "grade": bundle.grade(pd_),
    })
    if "loan_amount" in features.columns:
        scored["amount"] = features["loan_amount"].to_numpy()
    return price(scored, config)
