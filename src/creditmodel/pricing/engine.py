"""Risk-covering loan pricing from a PD bundle, each component of the rate in its own column.

Per loan, every component a rate per year on the exposure at default (EAD):

    risk_covering_rate = funding_cost + operating_cost + expected_loss + capital_charge + margin
    expected_loss      = PD x LGD                (PD x LGD x EAD in money, divided by EAD)
    capital_charge     = K x hurdle_rate, or K x (hurdle_rate - risk_free_rate) if capital_credited
    rate               = risk_covering_rate clamped to [min_rate, max_rate]   (floored / capped say which)

LGD comes from the guarantee type (PricingConfig.lgd) unless the loan carries security details:
collateral, a guarantor's PD or a joint-guarantee group (creditmodel.pricing.guarantees), K is the Basel
IRB capital per unit of EAD
(creditmodel.pricing.capital: other retail or corporate with the SME adjustment), and RAROC/EVA
are those of the offered rate (creditmodel.pricing.raroc).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from creditmodel.config import PricingConfig
from creditmodel.data.dictionary import DataDictionary, default_dictionary
from creditmodel.data.policy import policy_flags, referral_items
from creditmodel.exceptions import DataContractError, RequestError
from creditmodel.export.bundle import PDBundle
from creditmodel.pricing.capital import capital_requirement, loan_capital, risk_weight  # noqa: F401 (API)
from creditmodel.pricing.guarantees import collateral_lgd, double_default_capital, group_lgd
from creditmodel.pricing.raroc import eva, raroc
from creditmodel.texts import Phrase, said

COMPONENTS = ("funding_cost", "operating_cost", "expected_loss", "capital_charge", "margin")
OUTPUT_COLUMNS = ("loan_id", "grade", "guarantee_type", "pd", "lgd", "ead", "maturity_years", "capital_approach",
                  "correlation", "k", "risk_weight", *COMPONENTS, "risk_covering_rate", "rate", "floored",
                  "capped", "raroc", "eva")
SECURITY_COLUMNS = ("lgd_before_security", "collateral_cover", "pd_guarantor", "pd_priced", "guarantee_treatment",
                    "group_lgd_effect", "group_capital_effect", "k_without_group")  # added when the loans carry security details
POLICY_COLUMNS = ("needs_referral", "referral_rules", "referral_text")  # added by price_with_bundle: the policy rules
EAD_COLUMNS = ("ead", "amount", "loan_amount")  # the first present is the exposure; none -> 1.0 (per unit)
MAX_MATURITY_YEARS = 50.0


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def _numeric(frame: pd.DataFrame, col: str, ok, expected: str, *, allow_missing: bool = False,
             scale: float = 1.0, **fields: float) -> np.ndarray:
    """Column `col` as float64; the first value that is not a number or fails `ok` raises RequestError saying
    what was `expected` (the id of a text ``error.expect.<expected>``, filled with `fields`)."""
    raw = frame[col]
    if raw.dtype == bool or pd.api.types.is_bool_dtype(raw):
        bad = np.ones(len(raw), dtype=bool)
        values = np.full(len(raw), np.nan)
    else:
        if raw.dtype.kind in "fiu":  # numbers already (the service's frames): NaN is the only missing value
            values = raw.to_numpy(dtype=np.float64) * scale
            unreadable = np.zeros(len(raw), dtype=bool)
        else:
            values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan) * scale
            unreadable = np.isnan(values) & raw.notna().to_numpy()  # a value given that is not a number
        missing = np.isnan(values)
        with np.errstate(invalid="ignore"):
            bad = unreadable | np.isinf(values) | (~missing & ~ok(values))
        if not allow_missing:
            bad |= missing
    if bad.any():
        i = int(np.argmax(bad))
        raise RequestError.of("error.pricing_numeric", column=col, value=_plain(raw.iloc[i]),
                              expected=Phrase(f"error.expect.{expected}", fields),
                              loan=(Phrase("error.pricing_loan", {"loan": _plain(frame["loan_id"].iloc[i])})
                                    if "loan_id" in frame.columns else ""))
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
    grade — passed through;
    security (creditmodel.pricing.guarantees; any of them adds SECURITY_COLUMNS):
      collateral_cover — recognised collateral in CNY (after haircuts, see collateral_cover()), or
      collateral_value with collateral_type — one item per loan, haircut from config.collateral_haircuts;
        a loan with collateral is priced at LGD = unsecured_lgd x max(floor, uncovered share);
      pd_guarantor — the guarantor's PD (empty: none), by config.guarantee_treatment;
      group_id — a joint-guarantee group (empty: none): LGD x (1 - joint_recovery), correlation
        + group_correlation_addon; group_lgd_effect / group_capital_effect show both per loan.
    Output columns: OUTPUT_COLUMNS (grade only when given); k is capital per unit of EAD, risk_weight
    = k x 12.5 x config.scaling_factor, eva in money per year (per unit when no EAD is given).
    Bad input raises RequestError naming the column, the value and what was expected.
    """
    for col in ("loan_id", "guarantee_type", "pd"):
        if col not in applications.columns:
            raise RequestError.of("error.pricing.column_missing", column=col)
    gt = applications["guarantee_type"]
    unknown = ~gt.astype(object).isin(list(config.lgd)).to_numpy()
    if unknown.any():
        i = int(np.argmax(unknown))
        raise RequestError.of("error.pricing_no_lgd", value=_plain(gt.iloc[i]),
                              loan=_plain(applications["loan_id"].iloc[i]), known=sorted(config.lgd))
    pd_ = _numeric(applications, "pd", lambda v: (v >= 0) & (v <= 1), "pd")
    n = len(applications)
    ead_col = next((c for c in EAD_COLUMNS if c in applications.columns), None)
    ead = (np.ones(n) if ead_col is None
           else _numeric(applications, ead_col, lambda v: v >= 0, "exposure"))
    if "maturity_years" in applications.columns:
        maturity = _numeric(applications, "maturity_years", lambda v: (v > 0) & (v <= MAX_MATURITY_YEARS), "maturity",
                            most=MAX_MATURITY_YEARS)
    elif "term_months" in applications.columns:
        maturity = _numeric(applications, "term_months", lambda v: (v > 0) & (v <= MAX_MATURITY_YEARS), "term",
                            scale=1 / 12, most=12 * MAX_MATURITY_YEARS)
    else:
        maturity = np.full(n, config.default_maturity_years)
    sales = (_numeric(applications, "annual_sales", lambda v: v >= 0, "sales",
                      allow_missing=True) if "annual_sales" in applications.columns else None)

    lgd = np.array([config.lgd[g] for g in gt.to_numpy(dtype=object)], dtype=np.float64)  # each known (above)
    security = _security(applications, config, ead, n)
    pd_priced = pd_
    if security is None:
        k, correlation, approach = loan_capital(pd_, lgd, ead, maturity, sales, config)
    else:
        lgd_type, cover, pd_g, in_group = security
        secured = ~np.isnan(cover)
        lgd = np.where(secured, collateral_lgd(ead, np.nan_to_num(cover), config.unsecured_lgd,
                                               config.collateral_lgd_floor), lgd_type)
        lgd_alone = lgd
        lgd = np.where(in_group, group_lgd(lgd, config.joint_recovery), lgd)
        guaranteed = ~np.isnan(pd_g)
        pd_priced = np.where(guaranteed, np.fmin(pd_, pd_g), pd_)
        addon = np.where(in_group, config.group_correlation_addon, 0.0)
        pd_capital = pd_priced if config.guarantee_treatment == "substitution" else pd_
        k, correlation, approach = loan_capital(pd_capital, lgd, ead, maturity, sales, config, correlation_addon=addon)
        k_no_group, _, _ = loan_capital(pd_capital, lgd_alone, ead, maturity, sales, config)
        k_group_lgd_only, _, _ = loan_capital(pd_capital, lgd, ead, maturity, sales, config)
        if config.guarantee_treatment == "double_default" and guaranteed.any():
            s_eur = None if sales is None else sales / config.eur_cny / 1e6
            k_dd = double_default_capital(pd_, np.nan_to_num(pd_g, nan=1.0), lgd, maturity, s_eur,
                                          pd_floor=config.pd_floor)
            k = np.where(guaranteed, k_dd, k)
            k_no_group = np.where(guaranteed, double_default_capital(
                pd_, np.nan_to_num(pd_g, nan=1.0), lgd_alone, maturity, s_eur, pd_floor=config.pd_floor), k_no_group)
            k_group_lgd_only = np.where(guaranteed, k_dd, k_group_lgd_only)
            approach = np.where(guaranteed, "double_default", approach).astype(object)
    # the columns gathered, then one frame: a frame grown a column at a time cost more than the pricing of a
    # request's few loans (scalars broadcast, as assigning them to a column does)
    cols: dict[str, object] = {"loan_id": applications["loan_id"].to_numpy()}
    if "grade" in applications.columns:
        cols["grade"] = applications["grade"].to_numpy()
    expected_loss, capital_charge = pd_priced * lgd, k * config.capital_cost_rate
    cols.update({"guarantee_type": gt.to_numpy(), "pd": pd_, "lgd": lgd, "ead": ead, "maturity_years": maturity,
                 "capital_approach": approach, "correlation": correlation, "k": k,
                 "risk_weight": risk_weight(k, config.scaling_factor), "funding_cost": config.funding_cost,
                 "operating_cost": config.operating_cost, "expected_loss": expected_loss,
                 "capital_charge": capital_charge, "margin": config.margin})
    rcr = np.zeros(n)
    for c in COMPONENTS:  # left to right, a missing part as 0: the row sum of the components' columns
        rcr = rcr + np.nan_to_num(np.broadcast_to(np.asarray(cols[c], dtype=np.float64), (n,)))
    rate = np.clip(rcr, config.min_rate, config.max_rate)
    args = (rate, config.funding_cost, config.operating_cost, expected_loss, k)
    cols.update({"risk_covering_rate": rcr, "rate": rate, "floored": rcr < config.min_rate,
                 "capped": rcr > config.max_rate, "raroc": raroc(*args, config), "eva": eva(*args, ead, config)})
    if security is not None:
        cols.update({
            "lgd_before_security": lgd_type, "collateral_cover": np.nan_to_num(cover), "pd_guarantor": pd_g,
            "pd_priced": pd_priced,
            "guarantee_treatment": np.where(guaranteed, config.guarantee_treatment, "").astype(object),
            "group_lgd_effect": lgd - lgd_alone,  # <= 0: the other members' joint liability
            "group_capital_effect": k - k_group_lgd_only,  # >= 0: their correlated default (K per unit of EAD)
            "k_without_group": k_no_group})
    return pd.DataFrame(cols, index=pd.RangeIndex(n))


def _security(applications: pd.DataFrame, config: PricingConfig, ead: np.ndarray, n: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(LGD by guarantee type, recognised collateral or NaN, guarantor PD or NaN, in a group) or None
    when the loans carry no security details."""
    cols = set(applications.columns)
    if not cols & {"collateral_cover", "collateral_value", "pd_guarantor", "group_id"}:
        return None
    lgd_type = applications["guarantee_type"].astype(object).map(config.lgd).to_numpy(dtype=np.float64)
    cover = np.full(n, np.nan)
    if "collateral_cover" in cols:
        cover = _numeric(applications, "collateral_cover", lambda v: v >= 0, "cover",
                         allow_missing=True)
    elif "collateral_value" in cols:
        value = _numeric(applications, "collateral_value", lambda v: v >= 0, "collateral",
                         allow_missing=True)
        kinds = (applications["collateral_type"].astype(object) if "collateral_type" in cols
                 else pd.Series([None] * n, dtype=object))
        has = ~np.isnan(value)
        unknown = has & ~kinds.isin(list(config.collateral_haircuts)).to_numpy()
        if unknown.any():
            i = int(np.argmax(unknown))
            raise RequestError.of("error.pricing.no_haircut", value=_plain(kinds.iloc[i]),
                                  loan=_plain(applications["loan_id"].iloc[i]),
                                  known=sorted(config.collateral_haircuts))
        haircut = kinds.map(config.collateral_haircuts).to_numpy(dtype=np.float64, na_value=np.nan)
        cover = np.where(has, (1.0 - haircut) * value, np.nan)
    pd_g = (_numeric(applications, "pd_guarantor", lambda v: (v >= 0) & (v <= 1), "pd_guarantor",
                     allow_missing=True) if "pd_guarantor" in cols else np.full(n, np.nan))
    in_group = (applications["group_id"].notna().to_numpy() if "group_id" in cols else np.zeros(n, dtype=bool))
    return lgd_type, cover, pd_g, in_group


def price_with_bundle(bundle: PDBundle, features: pd.DataFrame, config: PricingConfig,
                      dictionary: DataDictionary | None = None, lang: str = "en") -> pd.DataFrame:
    """Score feature rows with the bundle alone, then price them and flag the ones to refer.

    Loan terms are taken from the feature rows when present: guarantee_type; the exposure from ead,
    amount or loan_amount; the maturity from maturity_years or term_months; annual sales from
    annual_sales, else the latest statement's revenue fs_revenue (CNY); security from collateral_cover or
    collateral_value/collateral_type, pd_guarantor and group_id (see `price`). The policy rules of
    ``dictionary`` (None = the shipped default; e.g. the approval authority) add the columns
    needs_referral, referral_rules (the names of the rules broken, comma-separated) and referral_text
    (what the officer reads, in `lang`): a flag for the decision, never a reason to refuse the price.
    """
    if dictionary is not None:
        bundle.check_currency(dictionary, "price")
    if "loan_id" not in features.columns:
        raise RequestError.of("error.pricing.column_missing", column="loan_id")
    pd_ = bundle.predict_pd(features)
    if config.pd_basis == "grade":
        pd_ = bundle.master_scale.grade_pd(pd_)
    scored = pd.DataFrame({"loan_id": features["loan_id"].to_numpy(), "pd": pd_, "grade": bundle.grade(pd_)})
    terms = {"guarantee_type": ("guarantee_type",), None: EAD_COLUMNS,  # None: keep the source's name
             "maturity": ("maturity_years", "term_months"), "annual_sales": ("annual_sales", "fs_revenue")}
    terms.update({c: (c,) for c in ("collateral_cover", "collateral_value", "collateral_type", "pd_guarantor",
                                    "group_id")})  # security, when the rows carry it
    for name, sources in terms.items():
        source = next((c for c in sources if c in features.columns), None)
        if source is not None:
            scored[source if name in (None, "maturity") else name] = features[source].to_numpy()
    priced = price(scored, config)
    try:
        flags = policy_flags(features, dictionary)
    except DataContractError as exc:
        raise RequestError.of("error.pricing.policy", detail=said(exc)) from None
    d = default_dictionary() if dictionary is None else dictionary
    priced["needs_referral"] = flags["needs_referral"].to_numpy()
    priced["referral_rules"] = flags["referral_rules"].to_numpy()
    priced["referral_text"] = [("；" if lang == "zh" else "; ").join(i["text"] for i in referral_items(r, d, lang))
                               for r in flags["referral_rules"]]
    return priced
