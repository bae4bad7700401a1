"""Request and response models of the scoring service, the request side built from the bundle's schema.

Each feature becomes one field of ``ApplicationFeatures`` (``extra="forbid"``, every feature
required): numeric features a strict, finite ``float`` (``float | None`` where the schema allows
nulls) whose JSON schema carries the allowed range; categorical ones a ``Literal`` of the known
categories. Pydantic refuses wrong types, unknown or missing fields, NaN/inf, bools and strings
for numbers; the allowed *ranges* are documented in the OpenAPI schema but judged by the bundle
(``PDBundle.check_request``), see ``creditmodel.service.scoring``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional

from pydantic import AfterValidator, AllowInfNan, BaseModel, ConfigDict, Field, Strict, WithJsonSchema, create_model

from creditmodel.exceptions import TextedValueError
from creditmodel.service.language import LangField
from creditmodel.service.scoring import FeaturePolicy

MAX_BATCH = 10_000
MAX_ID_LENGTH = 200
ABSURD = 1e15  # loan amounts and sales beyond this are input errors
MAX_MATURITY_YEARS = 50.0

_FORBID = ConfigDict(extra="forbid")
_LANG: Any = (Optional[LangField], Field(None, description="language of the reason texts, grade names and warnings: "
                                                      "en or zh (default: ?lang=, then Accept-Language, then en)"))


def _number(minimum: float | None = None, maximum: float | None = None, **extra: Any) -> Any:
    """A strict, finite JSON number; the range goes into the JSON schema only (the bundle judges it)."""
    schema: dict[str, Any] = {"type": "number"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    schema.update(extra)
    return Annotated[float, Strict(), AllowInfNan(False), WithJsonSchema(schema)]


_Finite = Annotated[float, Strict(), AllowInfNan(False)]


@dataclass
class RequestModels:
    """The dynamic request models and, per feature field, the feature it carries (aliases)."""

    features: type[BaseModel]
    score_request: type[BaseModel]
    price_request: type[BaseModel]
    field_keys: tuple[str, ...]  # python attribute of each feature, in schema order


def _in_domain(lo: float, hi: float, source: str, *, open_low: bool = False) -> Any:
    """A strict finite number in [lo, hi] (or (lo, hi] with open_low) whose refusal names the range and
    the data dictionary column it comes from; the JSON schema carries the range."""
    def check(v: float) -> float:
        if (v <= lo if open_low else v < lo) or v > hi:
            raise TextedValueError.of("error.outside_domain", value=v, opening="(" if open_low else "[", lo=lo, hi=hi,
                                      source=source)
        return v

    schema: dict[str, Any] = {"type": "number", ("exclusiveMinimum" if open_low else "minimum"): lo, "maximum": hi}
    return Annotated[float, Strict(), AllowInfNan(False), AfterValidator(check), WithJsonSchema(schema)]


def build_request_models(policies: list[FeaturePolicy], guarantee_types: list[str], *,
                         descriptions: dict[str, str] | None = None, max_batch: int = MAX_BATCH,
                         loan_domain: dict[str, tuple[float, float, str]] | None = None,
                         currency: str = "CNY") -> RequestModels:
    """Pydantic models of the score and price requests for a bundle's features.

    Field python names are ``f0..fn`` with the feature name as alias, so a feature called e.g.
    ``schema`` or ``model_x`` cannot clash with pydantic's own attributes. `loan_domain` gives the
    valid [lo, hi] and its dictionary source of the loan terms amount, maturity_years, annual_sales;
    `currency` the data dictionary's, which the amounts are in.
    """
    domain = loan_domain or {}
    # field types built at run time from the bundle and the dictionary: Any to the type checker
    amount: Any = (_in_domain(*domain["amount"]) if "amount" in domain
                   else Annotated[_Finite, Field(ge=0, le=ABSURD)])
    maturity: Any = (_in_domain(*domain["maturity_years"]) if "maturity_years" in domain
                else Annotated[_Finite, Field(gt=0, le=MAX_MATURITY_YEARS)])
    sales: Any = (_in_domain(*domain["annual_sales"]) if "annual_sales" in domain
             else Annotated[_Finite, Field(ge=0, le=ABSURD)])
    descriptions = descriptions or {}
    fields: dict[str, Any] = {}
    keys = []
    for j, p in enumerate(policies):
        key = f"f{j}"
        keys.append(key)
        doc = descriptions.get(p.name)
        if p.categories is not None:
            typ: Any = Literal[tuple(p.categories)]
        else:
            lo, hi = p.bounds if p.bounds is not None else (None, None)
            typ = _number(lo, hi)
        if p.nullable:
            typ = Optional[typ]
        fields[key] = (typ, Field(..., alias=p.name, description=doc))
    features = create_model("ApplicationFeatures", __config__=ConfigDict(extra="forbid", populate_by_name=False),
                            **fields)
    app_id: Any = (Optional[Annotated[str, Strict(), Field(max_length=MAX_ID_LENGTH)]],
              Field(None, description="the caller's reference, echoed back"))
    application = create_model("Application", __config__=_FORBID, id=app_id, features=(features, ...))
    batch = Field(..., min_length=1, max_length=max_batch,
                  description=f"1 to {max_batch} applications, scored in this order")
    score_request = create_model(
        "ScoreRequest", __config__=_FORBID,
        applications=(list[application], batch),
        reasons=(Annotated[bool, Strict()], Field(True, description="include the top-3 reason codes")),
        lang=_LANG,
    )
    guarantee: Any = Literal[tuple(guarantee_types)]
    optional_maturity: Any = Optional[maturity]
    optional_sales: Any = Optional[sales]
    loan_terms = create_model(
        "LoanTerms", __config__=_FORBID,
        guarantee_type=(guarantee,
                        Field(..., description="sets the LGD; the PD uses features.guarantee_type")),
        amount=(amount, Field(..., description=f"exposure at default, {currency}")),
        maturity_years=(optional_maturity,
                        Field(None, description="default: features.term_months / 12 (required when that is null; "
                                                "the configured default only for a model without term_months)")),
        annual_sales=(optional_sales,
                      Field(None, description=f"borrower's annual sales, {currency} (corporate SME adjustment); "
                                              "default: features.fs_revenue when not negative")),
    )
    priced_application = create_model("PriceApplication", __config__=_FORBID, id=app_id,
                                      features=(features, ...), loan=(loan_terms, ...))
    price_request = create_model("PriceRequest", __config__=_FORBID,
                                 applications=(list[priced_application], batch),
                                 reasons=(Annotated[bool, Strict()],
                                          Field(False, description="include the top-3 reason codes")),
                                 lang=_LANG)
    return RequestModels(features, score_request, price_request, tuple(keys))


# --- responses (static; the service writes them as JSON itself, these document them) ---------------


class ReasonOut(BaseModel):
    feature: str
    reason: str = Field(description="the catalogue's reason text with the value behind it")
    value: float | str | None
    contribution: float = Field(description="TreeSHAP contribution to the log-odds of default (> 0: adverse)")


class ScoreResult(BaseModel):
    id: str | None
    pd: float = Field(description="calibrated probability of default under the bundle's label definition "
                                   "(window and default event as stated in its model card, target)")
    grade: str = Field(description="master-scale grade")
    grade_name: str = Field(description="the grade's name in the answer's language, e.g. \"B1 (sound)\", \"B1（稳健）\"")
    reasons: list[ReasonOut] | None = Field(None, description="up to 3 adverse factors, largest first")
    outside_training_range: list[str] = Field(
        default_factory=list, description="features whose value lies outside the range seen in training "
                                          "(the bundle's policy \"flag\"; with \"refuse\" such requests get 422)")


class ScoreResponse(BaseModel):
    model: str = Field(description="model id: the first 12 hex digits of model.txt's SHA-256")
    lang: Literal["en", "zh"] = Field(description="language of the texts (also the Content-Language header)")
    results: list[ScoreResult]


class PriceResult(BaseModel):
    id: str | None
    pd: float
    grade: str
    grade_name: str
    rate: float = Field(description="offered rate (the risk-covering rate within the floor and cap)")
    components: dict[str, float] = Field(description="the risk-covering rate's parts; they sum to it")
    details: dict[str, Any] = Field(description="every other column of the pricing engine's output")
    warnings: list[str] = Field(default_factory=list)
    needs_referral: bool = Field(description="the loan breaks a policy rule of the data dictionary (e.g. above the "
                                             "unit's approval authority): priced, to be decided higher up")
    referral: list[dict[str, str]] = Field(default_factory=list, description="per rule broken: rule, text (in the "
                                                                            "answer's language), en, zh")
    reasons: list[ReasonOut] | None = Field(None, description="with \"reasons\": true, as /v1/score gives them")
    outside_training_range: list[str] = Field(default_factory=list)


class PriceResponse(BaseModel):
    model: str
    lang: Literal["en", "zh"]
    results: list[PriceResult]


class ErrorItem(BaseModel):
    loc: list[str | int] = Field(description="where: body, applications, index, features, feature name")
    msg: str = Field(description="what was wrong and what was expected, in English")
    msg_zh: str = Field(description="the same in Simplified Chinese")
    type: str


class ErrorResponse(BaseModel):
    detail: list[ErrorItem]


class WorkerState(BaseModel):
    slot: int
    pid: int | None
    state: str = Field(description="ok, starting, failed, dead, not responding or other model")
    model: str | None
    restarts: int = 0
    error: str | None = None


class ScoringLogState(BaseModel):
    state: Literal["ok", "failing"] = Field(description="failing: the last batch of scored applications could not "
                                                        "be written (scoring goes on)")
    directory: str
    pid: int = Field(description="the worker process whose log this is")
    written: int
    dropped: int = Field(description="applications not logged because the queue was full")
    failed: int = Field(description="applications not logged because writing failed")
    queued: int
    last_error: str | None = None


class Health(BaseModel):
    status: Literal["ok", "failing"] = Field(description="ok only when every worker serves this model")
    model: str
    features: int
    workers: list[WorkerState]
    scoring_log: ScoringLogState | None = Field(None, description="with serve --scoring-log: the answering worker's log")


class ModelInfo(BaseModel):
    model: str
    model_card: dict[str, Any]
    bundle: dict[str, Any]
    out_of_training_range: Literal["flag", "refuse"]
    features: list[dict[str, Any]]
    grades: list[dict[str, Any]]
