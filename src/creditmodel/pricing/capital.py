"""Basel IRB capital: the capital K per unit of exposure and the risk weight (BCBS CRE31 / Basel II §272-330).

All functions are vectorised over numpy arrays and take PD and LGD as fractions.

    K  = [LGD · N((G(PD) + √R · G(0.999)) / √(1 − R)) − PD · LGD] × maturity adjustment
    RW = K × 12.5 × scaling factor          (1.06 under Basel II; 1.0 gives the BCBS illustrative tables)

Corporate (CRE31.5-31.9), with the SME firm-size adjustment for annual sales S in EUR million:

    w  = (1 − e^{−50·PD}) / (1 − e^{−50})
    R  = 0.12·w + 0.24·(1 − w) − 0.04·(1 − (S − 5)/45),   S clamped to [5, 50]; no S -> no adjustment
    b  = (0.11852 − 0.05478·ln PD)²
    MA = (1 + (M − 2.5)·b) / (1 − 1.5·b),   M clamped to [1, 5] years

Other retail (CRE31.14-31.15): R = 0.03·w + 0.16·(1 − w) with w = (1 − e^{−35·PD}) / (1 − e^{−35}),
and no maturity adjustment.

PD is floored at 0.03% (Basel II §285 and §331) before K is computed; a PD of 1 (a defaulted loan)
gives K = 0 here, since its loss is expected, not unexpected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.special import ndtr, ndtri  # norm.cdf and norm.ppf, without scipy.stats' argument handling

if TYPE_CHECKING:
    from creditmodel.config import PricingConfig

CONFIDENCE = 0.999
PD_FLOOR = 0.0003
SCALING_FACTOR = 1.06
SME_SALES_MIN_EUR_M, SME_SALES_MAX_EUR_M = 5.0, 50.0
MATURITY_MIN, MATURITY_MAX = 1.0, 5.0


def _floored(pd_: np.ndarray, pd_floor: float) -> np.ndarray:
    return np.clip(np.asarray(pd_, dtype=np.float64), pd_floor, 1.0)


def retail_correlation(pd_: np.ndarray) -> np.ndarray:
    """Asset correlation R of 'other retail' exposures: 3% for high PDs up to 16% for low ones."""
    pd_ = np.asarray(pd_, dtype=np.float64)
    w = (1 - np.exp(-35 * pd_)) / (1 - np.exp(-35))
    return 0.03 * w + 0.16 * (1 - w)


def corporate_correlation(pd_: np.ndarray, sales_eur_m: np.ndarray | float | None = None) -> np.ndarray:
    """Asset correlation R of corporate exposures: 12% to 24%, less up to 4 points for SMEs.

    `sales_eur_m`: the borrower's annual sales in EUR million, clamped to [5, 50]; NaN or None means
    unknown, and then no firm-size adjustment is made (the conservative choice: higher capital).
    """
    pd_ = np.asarray(pd_, dtype=np.float64)
    w = (1 - np.exp(-50 * pd_)) / (1 - np.exp(-50))
    r = 0.12 * w + 0.24 * (1 - w)
    if sales_eur_m is None:
        return r
    s = np.clip(np.asarray(sales_eur_m, dtype=np.float64), SME_SALES_MIN_EUR_M, SME_SALES_MAX_EUR_M)
    adjustment = 0.04 * (1 - (s - SME_SALES_MIN_EUR_M) / (SME_SALES_MAX_EUR_M - SME_SALES_MIN_EUR_M))
    return r - np.where(np.isnan(s), 0.0, adjustment)


def maturity_adjustment(pd_: np.ndarray, maturity: np.ndarray | float) -> np.ndarray:
    """(1 + (M − 2.5)·b) / (1 − 1.5·b) with b = (0.11852 − 0.05478·ln PD)² and M clamped to [1, 5]."""
    pd_ = np.asarray(pd_, dtype=np.float64)
    m = np.clip(np.asarray(maturity, dtype=np.float64), MATURITY_MIN, MATURITY_MAX)
    b = (0.11852 - 0.05478 * np.log(pd_)) ** 2
    return (1 + (m - 2.5) * b) / (1 - 1.5 * b)


def _unexpected_loss(pd_: np.ndarray, lgd: np.ndarray, r: np.ndarray, confidence: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        conditional = ndtr((ndtri(pd_) + np.sqrt(r) * ndtri(confidence)) / np.sqrt(1 - r))
    conditional = np.where(pd_ >= 1.0, 1.0, conditional)
    return np.maximum(np.asarray(lgd, dtype=np.float64) * (conditional - pd_), 0.0)


def retail_capital(pd_: np.ndarray, lgd: np.ndarray, *, pd_floor: float = PD_FLOOR,
                   confidence: float = CONFIDENCE, correlation_addon: np.ndarray | float = 0.0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(K, R) for 'other retail' exposures: capital per unit of EAD and the asset correlation
    (raised by `correlation_addon`, capped at 0.99, for borrowers whose defaults move together)."""
    p = _floored(pd_, pd_floor)
    r = np.minimum(retail_correlation(p) + correlation_addon, 0.99)
    return _unexpected_loss(p, lgd, r, confidence), r


def corporate_capital(pd_: np.ndarray, lgd: np.ndarray, maturity: np.ndarray | float = 2.5,
                      sales_eur_m: np.ndarray | float | None = None, *, pd_floor: float = PD_FLOOR,
                      confidence: float = CONFIDENCE, correlation_addon: np.ndarray | float = 0.0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(K, R) for corporate exposures, with the SME firm-size and the maturity adjustments (R raised by
    `correlation_addon`, capped at 0.99)."""
    p = _floored(pd_, pd_floor)
    r = np.minimum(corporate_correlation(p, sales_eur_m) + correlation_addon, 0.99)
    with np.errstate(divide="ignore", invalid="ignore"):
        ma = np.where(p >= 1.0, 1.0, maturity_adjustment(np.minimum(p, 1 - 1e-12), maturity))
    return _unexpected_loss(p, lgd, r, confidence) * ma, r


def capital_requirement(pd_: np.ndarray, lgd: np.ndarray, confidence: float = CONFIDENCE,
                        pd_floor: float = PD_FLOOR) -> np.ndarray:
    """K per unit of exposure for 'other retail' exposures (kept for callers of the earlier API)."""
    return retail_capital(pd_, lgd, pd_floor=pd_floor, confidence=confidence)[0]


def risk_weight(k: np.ndarray | float, scaling_factor: float = SCALING_FACTOR) -> np.ndarray:
    """RW = K × 12.5 × scaling factor (the Basel II 1.06; pass 1.0 for the plain K × 12.5)."""
    return np.asarray(k, dtype=np.float64) * 12.5 * scaling_factor


def loan_capital(pd_: np.ndarray, lgd: np.ndarray, ead: np.ndarray, maturity: np.ndarray,
                 annual_sales_cny: np.ndarray | None, config: PricingConfig,
                 approach: str | None = None, correlation_addon: np.ndarray | float = 0.0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K, R, approach per loan) under `config`: the IRB curve chosen by config.capital_approach.

    "auto" takes the other-retail curve for an EAD up to config.retail_threshold_cny (Basel's EUR 1
    million retail limit converted at eur_cny; the limit is meant per borrower, and a loan stands for
    its borrower here) and the corporate curve above it. Annual sales in CNY are converted to EUR
    million for the SME adjustment; NaN sales mean no adjustment. `approach` overrides the config;
    `correlation_addon` raises the asset correlation (a joint-guarantee group's correlated default).
    """
    pd_ = np.atleast_1d(np.asarray(pd_, dtype=np.float64))
    n = pd_.shape[0]
    lgd = np.broadcast_to(np.asarray(lgd, dtype=np.float64), (n,))
    ead = np.broadcast_to(np.asarray(ead, dtype=np.float64), (n,))
    maturity = np.broadcast_to(np.asarray(maturity, dtype=np.float64), (n,))
    sales = (np.full(n, np.nan) if annual_sales_cny is None
             else np.broadcast_to(np.asarray(annual_sales_cny, dtype=np.float64), (n,)))
    approach = approach or config.capital_approach
    if approach == "auto":
        retail = ead <= config.retail_threshold_cny
    elif approach in ("retail", "corporate"):
        retail = np.full(n, approach == "retail")
    else:
        raise ValueError(f"capital approach {approach!r}: expected 'auto', 'retail' or 'corporate'")
    k_r, r_r = retail_capital(pd_, lgd, pd_floor=config.pd_floor, correlation_addon=correlation_addon)
    k_c, r_c = corporate_capital(pd_, lgd, maturity, sales / config.eur_cny / 1e6, pd_floor=config.pd_floor,
                                 correlation_addon=correlation_addon)
    return (np.where(retail, k_r, k_c), np.where(retail, r_r, r_c),
            np.where(retail, "retail", "corporate").astype(object))
