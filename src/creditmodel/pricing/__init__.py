"""Risk-covering loan pricing: IRB capital, the priced rate with its components, RAROC and EVA."""

from creditmodel.pricing.capital import (
    capital_requirement,
    corporate_capital,
    corporate_correlation,
    loan_capital,
    maturity_adjustment,
    retail_capital,
    retail_correlation,
    risk_weight,
)
from creditmodel.pricing.engine import (
    COMPONENTS,
    OUTPUT_COLUMNS,
    POLICY_COLUMNS,
    SECURITY_COLUMNS,
    price,
    price_with_bundle,
)
from creditmodel.pricing.guarantees import (
    collateral_cover,
    collateral_lgd,
    double_default_capital,
    group_lgd,
    guarantor_pds,
)
from creditmodel.pricing.raroc import eva, portfolio_summary, raroc, rate_for_target_raroc, with_target_rate

__all__ = [
    "COMPONENTS", "OUTPUT_COLUMNS", "POLICY_COLUMNS", "SECURITY_COLUMNS", "collateral_cover", "collateral_lgd",
    "double_default_capital", "group_lgd", "guarantor_pds", "capital_requirement", "corporate_capital",
    "corporate_correlation", "eva",
    "loan_capital", "maturity_adjustment", "portfolio_summary", "price", "price_with_bundle", "raroc",
    "rate_for_target_raroc", "retail_capital", "retail_correlation", "risk_weight", "with_target_rate",
]
