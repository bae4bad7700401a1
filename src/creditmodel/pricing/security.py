"""The security of the priced loans from the bank's own data: collateral items and guarantors scored by the bundle.

A third-party guarantee substitutes the guarantor's PD where it is lower (creditmodel.pricing.guarantees),
and that PD is not a number someone types in: the guarantor is an enterprise of the bank's data, so the
bundle scores it from the store (``creditmodel.features.online``) as of the guaranteed loan's decision
date, exactly as it would score the guarantor applying for that very loan (same amount, term, product and
guarantee type: the guarantor takes on the same obligation). Rows dated on or after the decision date never
reach its features.

    security = loan_security(bundle, online, applications, haircuts)   # loan_id, collateral_cover, pd_guarantor

Guarantees come from the applications' own ``guarantor_id`` column when they carry one, else from the
store's ``guarantees`` table; collateral from the applications' collateral_value/collateral_type, else the
store's ``collateral`` items (cover = Σ (1 − haircut) · value). A guarantor the store does not know, a
borrower guaranteeing itself, a circle of guarantees (A guarantees B, B guarantees A) or a collateral item
the haircuts do not cover is one RequestError naming it, before anything is scored or written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from creditmodel.exceptions import RequestError
from creditmodel.pricing.guarantees import check_guarantees, collateral_cover

__all__ = ["guarantor_pds_from_data", "loan_security"]

_TERMS = {"amount": ("amount", "loan_amount", "ead"), "term_months": ("term_months",), "product": ("product",),
          "guarantee_type": ("guarantee_type",), "decision_date": ("decision_date", "application_date"),
          "enterprise_id": ("enterprise_id",)}


def _terms(applications: pd.DataFrame) -> pd.DataFrame:
    """loan_id and the loan terms a guarantor is scored for, under their canonical names."""
    out = pd.DataFrame({"loan_id": applications["loan_id"].to_numpy()})
    for name, sources in _TERMS.items():
        source = next((c for c in sources if c in applications.columns), None)
        if source is None:
            raise RequestError.of("error.pricing.guarantor_term_column", column=sources[0])
        out[name] = applications[source].to_numpy()
    out["decision_date"] = pd.to_datetime(out["decision_date"])
    return out


def guarantor_pds_from_data(bundle: Any, online: Any, guarantees: pd.DataFrame, applications: pd.DataFrame,
                            *, pd_basis: str = "loan") -> pd.DataFrame:
    """Each guarantee scored: loan_id, guarantor_id, pd (the guarantor's, by the bundle, from the store as of
    the loan's decision date; the grade's PD with ``pd_basis="grade"``) and its grade.

    `online`: an OnlineFeatures over the store; `applications`: the priced loans with loan_id,
    enterprise_id, decision_date and the loan terms (amount or loan_amount, term_months, product,
    guarantee_type). Refusals as in :func:`creditmodel.pricing.guarantees.check_guarantees`."""
    terms = _terms(applications)
    own = _own_columns(online, applications)
    for c in own:
        terms[c] = applications[c].to_numpy()
    check_guarantees(guarantees, terms[["loan_id", "enterprise_id"]], lambda g: _known(online, g))
    pairs = guarantees[["loan_id", "guarantor_id"]].merge(terms, on="loan_id", how="left")
    if not len(pairs):
        return pd.DataFrame({"loan_id": [], "guarantor_id": [], "pd": [], "grade": []})
    frames = []
    for r in pairs.itertuples(index=False):
        term = pd.to_numeric(pd.Series([r.term_months]), errors="coerce").iloc[0]
        if not (np.isfinite(term) and term >= 1):
            raise RequestError.of("error.pricing.guarantor_term", term=r.term_months, loan=r.loan_id)
        frames.append(online.features(int(r.guarantor_id), r.decision_date.date(), amount=float(r.amount),
                                      term_months=int(term), product=str(r.product),
                                      guarantee_type=str(r.guarantee_type),
                                      attributes={c: _attribute(getattr(r, c), flag) for c, flag in own.items()}))
    features = pd.concat(frames, ignore_index=True)
    scored = bundle.predict_pd(features)
    if pd_basis == "grade":
        scored = bundle.master_scale.grade_pd(scored)
    return pd.DataFrame({"loan_id": pairs["loan_id"].to_numpy(), "guarantor_id": pairs["guarantor_id"].to_numpy(),
                         "pd": np.asarray(scored, dtype=np.float64), "grade": bundle.grade(scored)})


def _own_columns(online: Any, applications: pd.DataFrame) -> dict[str, bool]:
    """The bank's own loan columns the catalogue reads (name: whether it is a 0/1 flag): part of the loan's
    terms, so the guarantor is scored with the loan's values, as the service scores it; one RequestError when
    the applications lack one."""
    from creditmodel.features.build import attribute_columns

    names = attribute_columns(online.catalogue).get("loans", [])
    absent = [c for c in names if c not in applications.columns]
    if absent:
        raise RequestError.of("error.pricing.guarantor_own_column", column=absent[0])
    flags = {f.name for f in online.catalogue if f.fmt == "flag"}
    return {c: c in flags for c in names}


def _attribute(value: Any, flag: bool) -> Any:
    """A loan column's value as a feature row holds it (a flag as 0/1, missing as NaN) for the store's query."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if flag:
        return bool(value)
    return value.item() if isinstance(value, np.generic) else value


def _known(online: Any, enterprise_id: Any) -> bool:
    try:
        return bool(online.known(int(enterprise_id)))
    except (TypeError, ValueError):
        return False


def loan_security(bundle: Any, online: Any, applications: pd.DataFrame, haircuts: Mapping[str, float], *,
                  pd_basis: str = "loan") -> pd.DataFrame:
    """Per priced loan: loan_id, collateral_cover (recognised collateral in CNY; NaN: none) and pd_guarantor
    (the lowest PD of its guarantors scored from the data; NaN: none), ready to join onto the applications
    that `price_with_bundle` prices."""
    if "loan_id" not in applications.columns:
        raise RequestError.of("error.pricing.column_missing", column="loan_id")
    ids = applications["loan_id"].tolist()
    out = pd.DataFrame({"loan_id": applications["loan_id"].to_numpy()})
    if "guarantor_id" in applications.columns:
        guarantees = applications.loc[applications["guarantor_id"].notna(), ["loan_id", "guarantor_id"]].copy()
        ids_ = pd.to_numeric(guarantees["guarantor_id"], errors="coerce")
        bad = ids_.isna() | (ids_ != ids_.round())
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            raise RequestError.of("error.pricing.guarantor_id", g=guarantees["guarantor_id"].iloc[i],
                                  loan=guarantees["loan_id"].iloc[i])
        guarantees["guarantor_id"] = ids_.astype(np.int64).to_numpy()
    else:
        guarantees = online.rows("guarantees", "loan_id", ids)
        guarantees = pd.DataFrame({"loan_id": [], "guarantor_id": []}) if guarantees is None else guarantees
    scored = guarantor_pds_from_data(bundle, online, guarantees, applications, pd_basis=pd_basis)
    best = scored.groupby("loan_id")["pd"].min() if len(scored) else pd.Series(dtype=np.float64)
    out["pd_guarantor"] = out["loan_id"].map(best).astype(np.float64)
    if "collateral_value" not in applications.columns and "collateral_cover" not in applications.columns:
        items = online.rows("collateral", "loan_id", ids)
        if items is not None and len(items):
            cover = collateral_cover(items, haircuts)
            out["collateral_cover"] = out["loan_id"].map(cover).astype(np.float64)
    return out
