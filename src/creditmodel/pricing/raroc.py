"""Risk-adjusted return on capital (RAROC) and economic-capital value added (EVA), per loan and portfolio.

For one loan over a year, with every cost a rate on the exposure EAD and K the IRB capital per
unit of EAD (creditmodel.pricing.capital):

    return = (rate − funding_cost − operating_cost − PD·LGD) · EAD  [+ risk_free_rate · K · EAD]
    RAROC  = return / (K · EAD)
    EVA    = return − hurdle_rate · K · EAD  =  (RAROC − hurdle_rate) · K · EAD

The bracketed term, the risk-free return earned on the capital itself, is counted only when
config.capital_credited is set; it is the same flag that lowers the capital charge in the price to
K · (hurdle − risk-free). So a loan priced at its risk-covering rate earns RAROC = hurdle + margin / K
and EVA = margin · EAD. `rate` is the offered rate (after the floor and the cap). A loan with K = 0
(PD of 1, or LGD of 0) has no RAROC (NaN); its EVA is its return.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from creditmodel.config import PricingConfig
from creditmodel.exceptions import RequestError
from creditmodel.pricing.capital import loan_capital


def risk_adjusted_return(rate, funding_cost, operating_cost, expected_loss, k, ead, config: PricingConfig):
    """The numerator of RAROC in money per year: (rate − funding − operating − EL [+ rf·K]) · EAD."""
    credit = config.risk_free_rate * np.asarray(k, dtype=np.float64) if config.capital_credited else 0.0
    return (np.asarray(rate, dtype=np.float64) - funding_cost - operating_cost - expected_loss + credit) * ead


def raroc(rate, funding_cost, operating_cost, expected_loss, k, config: PricingConfig):
    """RAROC = (rate − funding − operating − EL [+ rf·K]) / K; NaN where K = 0. EAD cancels."""
    k = np.asarray(k, dtype=np.float64)
    ret = risk_adjusted_return(rate, funding_cost, operating_cost, expected_loss, k, 1.0, config)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(k > 0, ret / np.where(k > 0, k, 1.0), np.nan)


def eva(rate, funding_cost, operating_cost, expected_loss, k, ead, config: PricingConfig):
    """EVA = return − hurdle · K · EAD = (RAROC − hurdle) · capital, in money per year."""
    ret = risk_adjusted_return(rate, funding_cost, operating_cost, expected_loss, k, ead, config)
    return ret - config.hurdle_rate * np.asarray(k, dtype=np.float64) * ead


def _target_rate(expected_loss, k, target_raroc: float, config: PricingConfig):
    credit = config.risk_free_rate if config.capital_credited else 0.0
    return config.funding_cost + config.operating_cost + expected_loss + np.asarray(k) * (target_raroc - credit)


def rate_for_target_raroc(pd, lgd, ead, maturity, target_raroc: float, config: PricingConfig, *,
                          annual_sales=None, capital_approach: str | None = None):
    """The rate at which a loan earns `target_raroc`: funding + operating + PD·LGD + K·(target [− rf]).

    RAROC is linear in the rate, so this is the exact inverse of `raroc` (the floor and cap are not
    applied: this is what the loan would have to pay). Scalars give a float, arrays an array.
    `annual_sales` (CNY) and `capital_approach` ("auto"/"retail"/"corporate") as in `price`.
    """
    scalar = all(np.ndim(x) == 0 for x in (pd, lgd, ead, maturity))
    pd_ = np.atleast_1d(np.asarray(pd, dtype=np.float64))
    lgd_ = np.asarray(lgd, dtype=np.float64)
    k, _, _ = loan_capital(pd_, lgd_, ead, maturity, annual_sales, config, capital_approach)
    rate = _target_rate(pd_ * lgd_, k, float(target_raroc), config)
    return float(rate[0]) if scalar else rate


def with_target_rate(priced: pd.DataFrame, target_raroc: float, config: PricingConfig) -> pd.DataFrame:
    """A copy of `price`'s output with a column rate_for_target_raroc (the same K as priced)."""
    out = priced.copy()
    out["rate_for_target_raroc"] = _target_rate(out["expected_loss"].to_numpy(), out["k"].to_numpy(),
                                                float(target_raroc), config)
    return out


_SUMMARY_COLUMNS = ("ead", "pd", "lgd", "k", "risk_weight", "expected_loss", "risk_covering_rate", "rate",
                    "floored", "capped", "raroc", "eva")


def portfolio_summary(priced: pd.DataFrame) -> dict[str, float]:
    """Portfolio figures of `price`'s output: rates and PD/LGD/K/RW weighted by exposure (EAD).

    exposure = Σ EAD; capital = Σ K·EAD; rwa = Σ RW·EAD; eva = Σ EVA;
    raroc = Σ return / Σ capital (total return over total capital, i.e. the capital-weighted mean
    of the loans' RAROCs, which keeps eva = (raroc − hurdle) · capital for the portfolio too);
    n_floored / n_capped count the loans whose offered rate hit the floor / the cap.
    """
    missing = [c for c in _SUMMARY_COLUMNS if c not in priced.columns]
    if missing:
        raise RequestError.of("error.pricing.summary_column", column=missing[0])
    ead = priced["ead"].to_numpy(dtype=np.float64)
    exposure = float(ead.sum())
    capital_i = priced["k"].to_numpy(dtype=np.float64) * ead
    eva_i = priced["eva"].to_numpy(dtype=np.float64)
    return_i = np.where(capital_i > 0, priced["raroc"].to_numpy(dtype=np.float64) * capital_i, eva_i)
    capital = float(capital_i.sum())

    def weighted(col: str) -> float:
        return float(np.dot(priced[col].to_numpy(dtype=np.float64), ead) / exposure) if exposure > 0 else np.nan

    summary = {"n_loans": len(priced), "exposure": exposure}
    summary.update({c: weighted(c) for c in ("rate", "risk_covering_rate", "pd", "lgd", "expected_loss", "k",
                                            "risk_weight")})
    summary.update({
        "capital": capital,
        "rwa": float(np.dot(priced["risk_weight"].to_numpy(dtype=np.float64), ead)),
        "raroc": float(return_i.sum() / capital) if capital > 0 else np.nan,
        "eva": float(eva_i.sum()),
        "n_floored": int(priced["floored"].sum()),
        "n_capped": int(priced["capped"].sum()),
    })
    return summary
