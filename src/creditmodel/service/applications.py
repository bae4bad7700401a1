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
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any, Literal, Optional

import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError, create_model

from creditmodel.data.policy import policy_flags, referral_items
from creditmodel.exceptions import BundleError, TextedValueError, first_line
from creditmodel.features.catalogue import ATTRIBUTE_SOURCES
from creditmodel.features.online import Application
from creditmodel.features.online_pg import open_online
from creditmodel.service import errors as e_
from creditmodel.service import models as m
from creditmodel.service.language import LangField
from creditmodel.service.scoring import dictionary_column_bounds
from creditmodel.texts import DEFAULT_LANG, LANGS, text

MAX_ID = 2**63 - 1
LOAN_ATTRIBUTES = ATTRIBUTE_SOURCES["loans"]  # the source of the features that read the bank's own loan columns


def _whole(v: Any) -> Any:
    """A JSON number with no fraction (``12.0``) as the integer it is: JSON Schema's "integer" admits it,
    so the API does too; any other value goes on to the strict check unchanged (``1.5``, ``"1"``, ``true``
    stay refused)."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _integer(lo: int, hi: int) -> Any:
    """A strict integer in [lo, hi] that also takes an integral JSON float (see ``_whole``)."""
    return Annotated[int, Strict(), Field(ge=lo, le=hi), BeforeValidator(_whole)]


def _amount(tables: Mapping[str, Any] | None) -> Any:
    lo, hi = dictionary_column_bounds("loans", "amount", tables) or (0.0, m.ABSURD)
    top = min(hi, m.ABSURD)
    bounds = (Field(ge=lo, le=top, allow_inf_nan=False) if lo > 0 else Field(gt=0.0, le=top, allow_inf_nan=False))
    return Annotated[float, Strict(), bounds]


def _sales(tables: Mapping[str, Any] | None) -> Any:
    """Annual sales as /v1/price takes them: the data dictionary's range of statement revenue."""
    lo, hi = dictionary_column_bounds("financial_statements", "revenue", tables) or (0.0, m.ABSURD)
    return Annotated[float, Strict(), Field(ge=max(lo, 0.0), le=min(hi, m.ABSURD), allow_inf_nan=False)]


def _term(tables: Mapping[str, Any] | None) -> Any:
    lo, hi = dictionary_column_bounds("loans", "term_months", tables) or (1, 12 * m.MAX_MATURITY_YEARS)
    return _integer(max(1, math.ceil(lo)), int(min(hi, 12 * m.MAX_MATURITY_YEARS)))


def build_application_model(catalogue: Any, tables: Mapping[str, Any] | None = None,
                            currency: str = "CNY") -> type[BaseModel]:
    """The request of the application endpoints, its vocabularies from the bundle's catalogue, its ranges from
    the canonical tables of the bank's data dictionary (``schema.resolve_tables``; None: the shipped one's)
    and its amounts in that dictionary's currency."""
    cats = {f.name: f.categories for f in catalogue if f.categories is not None}

    def vocab(name: str) -> Any:
        values = tuple(cats.get(name) or ())
        return Literal[values] if values else Annotated[str, Strict(), Field(min_length=1, max_length=100)]

    amount, term = _amount(tables), _term(tables)
    some_id: Any = Optional[_integer(0, MAX_ID)]  # noqa: UP045 - types built at run time: Any to the type checker
    sales: Any = Optional[_sales(tables)]  # noqa: UP045
    own = _attributes_model(catalogue)
    extra: dict[str, Any] = {} if own is None else {"attributes": (own, Field(
        ..., description="the bank's own loan columns the bundle's model reads, as the application states "
                         "them (null: not known, as in training)"))}
    return create_model(
        "LoanApplication", __config__=ConfigDict(extra="forbid"),
        id=(Optional[Annotated[str, Strict(), Field(max_length=m.MAX_ID_LENGTH)]],  # noqa: UP045
            Field(None, description="the caller's reference, echoed back")),
        enterprise_id=(_integer(0, MAX_ID), Field(..., description="the borrower")),
        amount=(amount, Field(..., description=f"amount applied for, {currency}")),
        term_months=(term, Field(..., description="term in months")),
        product=(vocab("product"), Field(..., description="product (the data dictionary's products)")),
        guarantee_type=(vocab("guarantee_type"), Field(..., description="guarantee (the data dictionary's types)")),
        decision_date=(Optional[Annotated[date, Strict()]],  # noqa: UP045
                       Field(None, description="as-of date of the features, YYYY-MM-DD; default today. Refused "
                                               "(422) in the future or not after the store's first data")),
        group_id=(some_id,
                  Field(None, description="joint-guarantee group of the application, if any")),
        guarantor_id=(some_id,
                      Field(None, description="price only: the third-party guarantor, an enterprise of the store; "
                                              "its PD is scored by the bundle as of the decision date. Refused (422) "
                                              "when the store does not know it, it is the borrower, or a circle of "
                                              "guarantees leads back to the borrower")),
        reasons=(Annotated[bool, Strict()], Field(True, description="include the top-3 reason codes")),
        annual_sales=(sales,
                      Field(None, description=f"price only: annual sales, {currency}; default the latest "
                                              f"statement's")),
        lang=(Optional[LangField], Field(None, description="language of the texts: en or zh (default: ?lang=, "  # noqa: UP045
                                                           "then Accept-Language, then en)")),
        **extra,
    )


def _attributes_model(catalogue: Any) -> type[BaseModel] | None:
    """The request's ``attributes``: one field per loan attribute of the catalogue (the bank's own loan
    columns, part of the application), each required and nullable, typed as the feature reads it; None
    when the catalogue has none."""
    fields: dict[str, Any] = {}
    for f in catalogue:
        if f.source != LOAN_ATTRIBUTES:
            continue
        if f.is_categorical:
            kind: Any = (Literal[tuple(f.categories)] if f.categories
                         else Annotated[str, Strict(), Field(min_length=1, max_length=100)])
        elif f.fmt == "flag":
            kind = Annotated[bool, Strict()]
        else:
            kind = Annotated[float, Field(allow_inf_nan=False), BeforeValidator(_number)]
        fields[f.name] = (Optional[kind], Field(..., description=f.description))  # noqa: UP045
    return create_model("LoanAttributes", __config__=ConfigDict(extra="forbid"), **fields) if fields else None


def _number(v: Any) -> Any:
    """A JSON number as a float (an integer such as a score of 700 included); anything else (a string, a
    boolean, which pydantic's lax float would take) refused."""
    if isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, float):
        return v
    raise TextedValueError.of("error.expected_number")


def _reaches(online: Any, start: int, target: int, before: date, limit: int = 10_000) -> list[int] | None:
    """A chain of guarantees in the store from enterprise `start` to `target` (each guarantor of a loan of
    the one before, loans applied for before `before`), as the enterprises along it, or None."""
    parent: dict[int, int | None] = {start: None}
    frontier = [start]
    while frontier and len(parent) < limit:
        loans = online.rows("loans", "enterprise_id", frontier)
        if loans is None or not len(loans):
            return None
        loans = loans[pd.to_datetime(loans["application_date"]) < pd.Timestamp(before)]
        edges = online.rows("guarantees", "loan_id", loans["loan_id"].tolist())
        if edges is None or not len(edges):
            return None
        owner = dict(zip(loans["loan_id"], loans["enterprise_id"]))
        nxt = []
        for loan, g in zip(edges["loan_id"], edges["guarantor_id"]):
            g = int(g)
            if g not in parent:
                parent[g] = int(owner[loan])
                if g == target:
                    chain: list[int] = [g]
                    while parent[chain[-1]] is not None:
                        chain.append(int(parent[chain[-1]]))  # type: ignore[arg-type]
                    return chain[::-1]
                nxt.append(g)
        frontier = nxt
    return None


def _error(loc: list[Any], text_id: str, /, kind: str = "request_error", status: int = 422,
           **fields: Any) -> tuple[int, bytes]:
    """The refusal of one item: the catalogue's text `text_id` in English and Chinese."""
    return e_.answer([e_.item(loc, kind, text_id, **fields)], status)


class ApplicationService:
    """The two application endpoints over a ScoringService and a store (one instance per worker)."""

    def __init__(self, svc: Any, store: str, *, today: Any = None) -> None:
        catalogue = getattr(svc.bundle, "catalogue", None)
        if catalogue is None:
            raise BundleError.of("error.service.no_catalogue", path=svc.bundle.path)
        self.svc = svc
        self.online = open_online(catalogue, store)
        self.names = list(svc.bundle.schema.names)
        self.model = build_application_model(catalogue, svc.tables, svc.data_dictionary.currency)
        self.today = today or date.today
        self._enterprise_rules = any(r.table == "enterprises" for r in svc.data_dictionary.policies)

    def handle(self, path: str, body: bytes, lang: str | None = None) -> tuple[int, bytes, list[Any] | None]:
        """Status, JSON body and the application's id; texts in the body's lang, else `lang`, else English."""
        try:
            req: Any = self.model.model_validate_json(body)  # the model is built from the bundle's catalogue
        except ValidationError as exc:
            errs = [e_.of_validation(e, ["body", *e["loc"]]) for e in exc.errors(include_url=False,
                                                                                  include_input=False)]
            return (*e_.answer(errs), None)
        try:
            status, out = self.answer(path, req, req.lang or lang or DEFAULT_LANG)
        except self.online.errors as exc:  # the store failed under a valid request: the client may retry
            return (*_error(["store"], "error.store_unavailable", "store_unavailable", 503, store=self.online.store,
                            detail=first_line(exc)[:300]), [req.id])
        return status, out, [req.id]

    def _guarantor(self, req: Any, d: date) -> tuple[dict[str, Any] | None, tuple[int, bytes] | None]:
        """The guarantor scored by the bundle from the store as of `d` for the application's own terms, or the
        422 of a guarantor that protects nobody: unknown to the store, the borrower itself, or a circle
        (the guarantor's loans guaranteed, directly or through others, by the borrower)."""
        g, a = int(req.guarantor_id), int(req.enterprise_id)
        loc = ["body", "guarantor_id"]
        if g == a:
            return None, _error(loc, "error.guarantor_self", g=g)
        if not self.online.known(g):
            return None, _error(loc, "error.guarantor_unknown", g=g)
        chain = _reaches(self.online, g, a, d)
        if chain is not None:
            circle = " -> ".join(str(x) for x in [a, *chain])
            return None, _error(loc, "error.guarantor_circle", circle=circle)
        row = self.online.compute(self._application(req, g, d, None))
        bundle = self.svc.bundle
        pd_g = bundle.predict_pd(row[self.names])
        if getattr(self.svc.pricing, "pd_basis", "loan") == "grade":
            pd_g = bundle.master_scale.grade_pd(pd_g)
        return {"enterprise_id": g, "pd": float(pd_g[0]), "grade": str(bundle.grade(pd_g)[0])}, None

    @staticmethod
    def _application(req: Any, enterprise_id: int, d: date, group_id: int | None) -> Application:
        """The application of `req` for `enterprise_id` (the borrower, or a guarantor on the same terms)."""
        own = getattr(req, "attributes", None)
        return Application(int(enterprise_id), d, req.amount, req.term_months, req.product, req.guarantee_type,
                           group_id, {} if own is None else own.model_dump())

    def answer(self, path: str, req: Any, lang: str = DEFAULT_LANG) -> tuple[int, bytes]:
        today = self.today()
        d = req.decision_date or today
        if d > today:
            return _error(["body", "decision_date"], "error.decision_future", d=d, today=today)
        if d <= self.online.first_date:
            return _error(["body", "decision_date"], "error.decision_before_data", d=d, first=self.online.first_date)
        # the borrower's enterprise row only where a policy rule reads it (the shipped rules read the loan alone)
        ent = self.online.enterprise(req.enterprise_id) if self._enterprise_rules else None
        new = len(ent) == 0 if ent is not None else not self.online.known(req.enterprise_id)
        values = self.online.compute_values(self._application(req, req.enterprise_id, d, req.group_id))
        features = {n: values[n] for n in self.names}
        app = {"id": req.id, "features": features}
        if path.endswith("/score"):
            inner = {"applications": [app], "reasons": req.reasons, "lang": lang}
            status, out, _ = self.svc.handle("/v1/score", json.dumps(inner, allow_nan=False).encode())
        else:
            guarantor = None
            if req.guarantor_id is not None:
                guarantor, refusal = self._guarantor(req, d)
                if refusal is not None:
                    return refusal
            app["loan"] = {"guarantee_type": req.guarantee_type, "amount": req.amount,
                           "maturity_years": req.term_months / 12}
            if req.annual_sales is not None:
                app["loan"]["annual_sales"] = req.annual_sales
            inner = {"applications": [app], "reasons": req.reasons, "lang": lang}
            try:
                parsed = self.svc.models.price_request.model_validate_json(json.dumps(inner, allow_nan=False))
            except ValidationError as exc:  # the request's own fields are checked above: a computed value
                return e_.answer(e_.within([e_.of_validation(exc.errors()[0], ["body"])], "error.computed", d=d))
            else:
                status, out = self.svc.price(parsed, lang, pd_guarantor=None if guarantor is None else
                                             [guarantor["pd"]])
        if status != 200:  # a computed feature outside what the bundle accepts: say it is computed
            return e_.answer(e_.within(json.loads(out).get("detail", []), "error.computed", d=d), status)
        result = json.loads(out)["results"][0]
        loans = pd.DataFrame({"loan_id": [0], "enterprise_id": [req.enterprise_id], "amount": [req.amount],
                              "term_months": [req.term_months]})
        # every policy rule of the dictionary: the borrower's enterprise row is at hand where one reads it
        # (unknown: no enterprise rule breaks)
        flags = policy_flags(loans, self.svc.data_dictionary, enterprises=ent).iloc[0]
        rules = [r for r in str(flags["referral_rules"]).split(",") if r]
        result.update({
            "enterprise_id": req.enterprise_id, "decision_date": str(d), "new_to_bank": new,
            "needs_referral": bool(rules),
            "referral": referral_items(flags["referral_rules"], self.svc.data_dictionary, lang),
            "features": features,
        })
        if path.endswith("/price") and req.guarantor_id is not None:
            result["guarantor"] = guarantor
        if new:
            result["note"] = {k: text("service.new_to_bank", k) for k in LANGS}
            result["note_text"] = result["note"][lang]
        return 200, json.dumps({"model": self.svc.model_id, "lang": lang, "result": result}, allow_nan=False).encode()
