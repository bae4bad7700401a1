"""Scoring and pricing from the application fields alone: features computed from the bank's store.

``POST /v1/applications/score`` and ``/v1/applications/price`` take what an application form holds
(borrower, amount, term, product, guarantee, optional decision date and joint-guarantee group),
compute the borrower's features as of the decision date with the bundle's own catalogue SQL
(``creditmodel.features.online``), then answer as ``/v1/score`` and ``/v1/price`` do for those
features, plus whether the borrower is new to the bank and whether the loan needs referral under the
data dictionary's policy rules. Rows dated on or after the decision date never reach a feature.
"""

from __future__ import annotations

import json
import math
from datetime import date
from typing import Annotated, Any, Literal, Optional

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, create_model

from creditmodel.data.dictionary import default_dictionary
from creditmodel.data.policy import policy_flags, rule_text
from creditmodel.exceptions import BundleError
from creditmodel.features.online import OnlineFeatures
from creditmodel.service import models as m
from creditmodel.service.scoring import dictionary_column_bounds

MAX_ID = 2**63 - 1


def _plain(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (np.floating, float)):
        return None if np.isnan(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def _amount() -> Any:
    lo, hi = dictionary_column_bounds("loans", "amount") or (0.0, m.ABSURD)
    top = min(hi, m.ABSURD)
    bounds = (Field(ge=lo, le=top, allow_inf_nan=False) if lo > 0 else Field(gt=0.0, le=top, allow_inf_nan=False))
    return Annotated[float, Strict(), bounds]


def _term() -> Any:
    lo, hi = dictionary_column_bounds("loans", "term_months") or (1, 12 * m.MAX_MATURITY_YEARS)
    return Annotated[int, Strict(), Field(ge=max(1, math.ceil(lo)), le=int(min(hi, 12 * m.MAX_MATURITY_YEARS)))]


def build_application_model(catalogue: Any) -> type[BaseModel]:
    """The request of the application endpoints, its vocabularies from the bundle's catalogue."""
    cats = {f.name: f.categories for f in catalogue if f.categories is not None}

    def vocab(name: str) -> Any:
        values = tuple(cats.get(name) or ())
        return Literal[values] if values else Annotated[str, Strict(), Field(min_length=1, max_length=100)]

    amount, term = _amount(), _term()
    return create_model(
        "LoanApplication", __config__=ConfigDict(extra="forbid"),
        id=(Optional[Annotated[str, Strict(), Field(max_length=m.MAX_ID_LENGTH)]],  # noqa: UP045
            Field(None, description="the caller's reference, echoed back")),
        enterprise_id=(Annotated[int, Strict(), Field(ge=0, le=MAX_ID)], Field(..., description="the borrower")),
        amount=(amount, Field(..., description="amount applied for, CNY")),
        term_months=(term, Field(..., description="term in months")),
        product=(vocab("product"), Field(..., description="product (the data dictionary's products)")),
        guarantee_type=(vocab("guarantee_type"), Field(..., description="guarantee (the data dictionary's types)")),
        decision_date=(Optional[date], Field(None, description="as-of date of the features; default today")),  # noqa: UP045
        group_id=(Optional[Annotated[int, Strict(), Field(ge=0, le=MAX_ID)]],  # noqa: UP045
                  Field(None, description="joint-guarantee group of the application, if any")),
        reasons=(Annotated[bool, Strict()], Field(True, description="include the top-3 reason codes")),
        annual_sales=(Optional[Annotated[float, Strict(), Field(ge=0, le=m.ABSURD, allow_inf_nan=False)]],  # noqa: UP045
                      Field(None, description="price only: annual sales, CNY; default the latest statement's")),
    )


def _error(loc: list[Any], msg: str, kind: str = "request_error", status: int = 422) -> tuple[int, bytes]:
    return status, json.dumps({"detail": [{"loc": loc, "msg": msg, "type": kind}]}).encode()


class ApplicationService:
    """The two application endpoints over a ScoringService and a store (one instance per worker)."""

    def __init__(self, svc: Any, store: str, *, today: Any = None) -> None:
        catalogue = getattr(svc.bundle, "catalogue", None)
        if catalogue is None:
            raise BundleError(f"bundle {svc.bundle.path}: it carries no feature catalogue "
                              f"(feature_catalogue.json), so it cannot score from a store; re-export it")
        self.svc = svc
        self.online = OnlineFeatures(catalogue, store)
        self.names = list(svc.bundle.schema.names)
        self.model = build_application_model(catalogue)
        self.dictionary = default_dictionary()
        self.today = today or date.today

    def handle(self, path: str, body: bytes) -> tuple[int, bytes, list[Any] | None]:
        try:
            req: Any = self.model.model_validate_json(body)  # the model is built from the bundle's catalogue
        except ValidationError as exc:
            errs = [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                    for e in exc.errors(include_url=False, include_context=False, include_input=False)][:20]
            return 422, json.dumps({"detail": errs}, default=str).encode(), None
        status, out = self.answer(path, req)
        return status, out, [req.id]

    def answer(self, path: str, req: Any) -> tuple[int, bytes]:
        today = self.today()
        d = req.decision_date or today
        if d > today:
            return _error(["body", "decision_date"], f"decision date {d} is in the future (today is {today})")
        if d <= self.online.first_date:
            return _error(["body", "decision_date"], f"decision date {d} is not after the store's first data "
                                                     f"({self.online.first_date}); no history to score from")
        ent = self.online.enterprise(req.enterprise_id)
        new = len(ent) == 0
        row = self.online.features(req.enterprise_id, d, amount=req.amount, term_months=req.term_months,
                                   product=req.product, guarantee_type=req.guarantee_type, group_id=req.group_id)
        features = {n: _plain(row[n].iloc[0]) for n in self.names}
        app = {"id": req.id, "features": features}
        if path.endswith("/score"):
            inner = {"applications": [app], "reasons": req.reasons}
            status, out, _ = self.svc.handle("/v1/score", json.dumps(inner, allow_nan=False).encode())
        else:
            app["loan"] = {"guarantee_type": req.guarantee_type, "amount": req.amount,
                           "maturity_years": req.term_months / 12}
            if req.annual_sales is not None:
                app["loan"]["annual_sales"] = req.annual_sales
            status, out, _ = self.svc.handle("/v1/price", json.dumps({"applications": [app]},
                                                                     allow_nan=False).encode())
        if status != 200:  # a computed feature outside what the bundle accepts: say it is computed
            detail = json.loads(out).get("detail", [])
            for e in detail:
                e["msg"] = f"computed from the store as of {d}: {e['msg']}"
            return status, json.dumps({"detail": detail}).encode()
        result = json.loads(out)["results"][0]
        loans = pd.DataFrame({"loan_id": [0], "enterprise_id": [req.enterprise_id], "amount": [req.amount],
                              "term_months": [req.term_months]})
        flags = policy_flags(loans, self.dictionary, enterprises=ent).iloc[0]  # unknown: no enterprise rule breaks
        rules = [r for r in str(flags["referral_rules"]).split(",") if r]
        result.update({
            "enterprise_id": req.enterprise_id, "decision_date": str(d), "new_to_bank": new,
            "needs_referral": bool(rules),
            "referral": [{"rule": r, "en": rule_text(self.dictionary, r, "en"), "zh": rule_text(self.dictionary, r, "zh")}
                         for r in rules],
            "features": features,
        })
        if new:
            result["note"] = {"en": "New to the bank: no records in the store; scored on the application and "
                                    "thin-file features.",
                              "zh": "新客户：库中无该企业记录，按申请信息和薄档案特征评分。"}
        return 200, json.dumps({"model": self.svc.model_id, "result": result}, allow_nan=False).encode()
