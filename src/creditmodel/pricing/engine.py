"""Risk-covering loan pricing from a PD bundle, each component of the rate in its own column.

Per loan, every component a rate per year on the exposure at default (EAD):

    risk_covering_rate = funding_cost + operating_cost + expected_loss + capital_charge + margin
    expected_loss      = PD x LGD                (PD x LGD x EAD in money, divided by EAD)
    capital_charge     = K x hurdle_rate, or K x (hurdle_rate - risk_free_rate) if capital_credited
    rate               = risk_covering_rate clamped to [min_rate, max_rate]   (floored / capped say which)

LGD comes from the guarantee type (PricingConfig.lgd), K is the Basel IRB capital per unit of EAD
(creditmodel.pricing.capital: other retail or corporate with the SME adjustment), and RAROC/EVA
are those of the offered rate (creditmodel.pricing.raroc).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from creditmodel.config import PricingConfig
from creditmodel.data.dictionary import DataDictionary
from creditmodel.data.policy import policy_flags
from creditmodel.exceptions import DataContractError, RequestError
from creditmodel.export.bundle import PDBundle
from creditmodel.pricing.capital import capital_requirement, loan_capital, risk_weight  # noqa: F401 (API)
from creditmodel.pricing.raroc import eva, raroc

COMPONENTS = ("funding_cost", "operating_cost", "expected_loss", "capital_charge", "margin")
OUTPUT_COLUMNS = ("loan_id", "grade", "guarantee_type", "pd", "lgd", "ead", "maturity_years", "capital_approach",
                  "correlation", "k", "risk_weight", *COMPONENTS, "risk_covering_rate", "rate", "floored",
                  "capped", "raroc", "eva")
POLICY_COLUMNS = ("needs_referral", "referral_rules")  # added by price_with_bundle: the dictionary's policy rules
EAD_COLUMNS = ("ead", "amount", "loan_amount")  # the first present is the exposure; none -> 1.0 (per unit)
MAX_MATURITY_YEARS = 50.0


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def _numeric(frame: pd.DataFrame, col: str, ok, expected: str, *, allow_missing: bool = False,
             scale: float = 1.0) -> np.ndarray:
    """Column `col` as float64; the first value that is not a number or fails `ok` raises RequestError."""
    raw = frame[col]
    if raw.dtype == bool or pd.api.types.is_bool_dtype(raw):
        bad = np.ones(len(raw), dtype=bool)
        values = np.full(len(raw), np.nan)
    else:
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan) * scale
        missing = np.isnan(values)
        with np.errstate(invalid="ignore"):
            bad = (missing & raw.notna().to_numpy()) | np.isinf(values) | (~missing & ~ok(values))
        if not allow_missing:
            bad |= missing
    if bad.any():
        i = int(np.argmax(bad))
        loan = f" (loan_id {_plain(frame['loan_id'].iloc[i])!r})" if "loan_id" in frame.columns else ""
        raise RequestError(f"pricing input: {col} must be {expected}, got {_plain(raw.iloc[i])!r}{loan}")
    return values


def price(applications: pd.DataFrame, config: PricingConfig) -> pd.DataFrame:
    """Price loans: one row per application, each component of the rate in its own column.

    Required columns: loan_id, guarantee_type (a key of config.lgd), pd (in [0, 1]). Optional:
    ead — the exposure in CNY; if absent `amount`, then `loan_amount`, else 1.0 (per-unit pricing,
      which "auto" prices on the retail curve: the unit lends at most CNY 5 million);
    maturity_years — if absent `term_months` / 12, else config.default_maturity_years; only the
      corporate curve uses it (clamped to [1, 5] years there);
    annual_sales — the borrower's annual sales in CNY for the corporate SME adjustment; absent or
      missing means no adjustment (the conservative choice);
    grade — passed through.
    Output columns: OUTPUT_COLUMNS (grade only when given); k is capital per unit of EAD, risk_weight
    = k x 12.5 x config.scaling_factor, eva in money per year (per unit when no EAD is given).
    Bad input raises RequestError naming the column, the value and what was expected.
    """
    for col in ("loan_id", "guarantee_type", "pd"):
        if col not in applications.columns:
            raise RequestError(f"pricing input: column {col!r} is missing")
    gt = applications["guarantee_type"]
    unknown = ~gt.astype(object).isin(list(config.lgd)).to_numpy()
    if unknown.any():
        i = int(np.argmax(unknown))
        raise RequestError(f"pricing input: guarantee_type {_plain(gt.iloc[i])!r} has no LGD "
                           f"(loan_id {_plain(applications['loan_id'].iloc[i])!r}); expected one of {sorted(config.lgd)}")
    pd_ = _numeric(applications, "pd", lambda v: (v >= 0) & (v <= 1), "a number in [0, 1]")
    n = len(applications)
    ead_col = next((c for c in EAD_COLUMNS if c in applications.columns), None)
    ead = (np.ones(n) if ead_col is None
           else _numeric(applications, ead_col, lambda v: v >= 0, "a number >= 0 (the exposure in CNY)"))
    in_range = f"a number of years in (0, {MAX_MATURITY_YEARS:g}]"
    if "maturity_years" in applications.columns:
        maturity = _numeric(applications, "maturity_years", lambda v: (v > 0) & (v <= MAX_MATURITY_YEARS), in_range)
    elif "term_months" in applications.columns:
        maturity = _numeric(applications, "term_months", lambda v: (v > 0) & (v <= MAX_MATURITY_YEARS),
                            f"a number of months in (0, {12 * MAX_MATURITY_YEARS:g}]", scale=1 / 12)
    else:
        maturity = np.full(n, config.default_maturity_years)
    sales = (_numeric(applications, "annual_sales", lambda v: v >= 0, "a number >= 0 (CNY) or empty",
                      allow_missing=True) if "annual_sales" in applications.columns else None)

    lgd = gt.astype(object).map(config.lgd).to_numpy(dtype=np.float64)
    k, correlation, approach = loan_capital(pd_, lgd, ead, maturity, sales, config)
    out = pd.DataFrame({"loan_id": applications["loan_id"].to_numpy()})
    if "grade" in applications.columns:
        out["grade"] = applications["grade"].to_numpy()
    out["guarantee_type"] = gt.to_numpy()
    out["pd"] = pd_
    out["lgd"] = lgd
    out["ead"] = ead
    out["maturity_years"] = maturity
    out["capital_approach"] = approach
    out["correlation"] = correlation
    out["k"] = k
    out["risk_weight"] = risk_weight(k, config.scaling_factor)
    out["funding_cost"] = config.funding_cost
    out["operating_cost"] = config.operating_cost
    out["expected_loss"] = pd_ * lgd
    out["capital_charge"] = k * config.capital_cost_rate
    out["margin"] = config.margin
    out["risk_covering_rate"] = out[list(COMPONENTS)].sum(axis=1)
    rcr = out["risk_covering_rate"].to_numpy()
    out["rate"] = np.clip(rcr, config.min_rate, config.max_rate)
    out["floored"] = rcr < config.min_rate
    out["capped"] = rcr > config.max_rate
    args = (out["rate"].to_numpy(), config.funding_cost, config.operating_cost, out["expected_loss"].to_numpy(), k)
    out["raroc"] = raroc(*args, config)
    out["eva"] = eva(*args, ead, config)
    return out


def price_with_bundle(bundle: PDBundle, features: pd.DataFrame, config: PricingConfig,
                      dictionary: DataDictionary | None = None) -> pd.DataFrame:
    """Score feature rows with the bundle alone, then price them and flag the ones to refer.

    Loan terms are taken from the feature rows when present: guarantee_type; the exposure from ead,
    amount or loan_amount; the maturity from maturity_years or term_months; annual sales from
    annual_sales, else the latest statement's revenue fs_revenue (CNY). The policy rules of
    ``dictionary`` (None = the shipped default; e.g. the approval authority) add the columns
    needs_referral and referral_rules (the names of the rules broken, comma-separated): a flag for
    the decision, never a reason to refuse the price.
    """
    if "loan_id" not in features.columns:
        raise RequestError("pricing input: column 'loan_id' is missing")
    pd_ = bundle.predict_pd(features)
    if config.pd_basis == "grade":
        pd_ = bundle.master_scale.grade_pd(pd_)
    scored = pd.DataFrame({"loan_id": features["loan_id"].to_numpy(), "pd": pd_, "grade": bundle.grade(pd_)})
    terms = {"guarantee_type": ("guarantee_type",), None: EAD_COLUMNS,  # None: keep the source's name
             "maturity": ("maturity_years", "term_months"), "annual_sales": ("annual_sales", "fs_revenue")}
    for name, sources in terms.items():
        source = next((c for c in sources if c in features.columns), None)
        if source is not None:
            scored[source if name in (None, "maturity") else name] = features[source].to_numpy()
    priced = price(scored, config)
    try:
        flags = policy_flags(features, dictionary)
    except DataContractError as exc:
        raise RequestError(f"pricing input: {exc}") from None
    priced["needs_referral"] = flags["needs_referral"].to_numpy()
    priced["referral_rules"] = flags["referral_rules"].to_numpy()
    return priced
