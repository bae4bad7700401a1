"""The HTTP scoring service: FastAPI over a verified export bundle.

    POST /v1/score   {"applications": [{"id": "A-1", "features": {...}}], "reasons": true}
                     -> {"model": "...", "results": [{"id", "pd", "grade", "reasons": [...],
                                                      "outside_training_range": [...]}]}
    POST /v1/price   {"applications": [{"id", "features": {...}, "loan": {"guarantee_type", "amount",
                     "maturity_years"?, "annual_sales"?}}]}
                     -> {"model", "results": [{"id", "pd", "grade", "rate", "components", "details", "warnings"}]}
    GET  /v1/model   the model card, bundle manifest summary, feature schema and master scale
    GET  /health     the model id and every worker's state; 503 while any worker is failing
    GET  /docs, /openapi.json

Bad input of any kind (malformed JSON, wrong type, unknown or missing field, null where the schema
forbids it, NaN/inf, a value outside the bundle's allowed range or the data dictionary's valid
domain, an empty or oversized batch) gets 422 with
``{"detail": [{"loc": ["body", "applications", i, "features", name], "msg", "msg_zh", "type"}]}``: ``msg`` in
English, ``msg_zh`` the same in Simplified Chinese (``creditmodel.service.errors``), whatever language
the request asked for.
Range refusals carry ``bundle.check_request``'s message, or name the data dictionary's column
(``loans.term_months``) whose valid range a loan amount, term or instalment must respect.

Values outside the range seen in training follow the bundle's policy, ``out_of_training_range``
in feature_schema.json: ``"flag"`` (the default) scores them and lists the features in each
result's ``outside_training_range``; ``"refuse"`` answers 422 naming the feature and the range.

Large bodies never block the event loop: a body over ``max_body_bytes`` gets 413 before it is read
(Content-Length) or as soon as the stream passes it; a body not received within ``body_timeout``
seconds gets 408; more than ``max_batch`` applications get 422 from a count of the ``"features"``
keys before any parsing; a body over ``large_body_bytes`` is parsed, validated and scored in a
helper process (pydantic and json hold the GIL for the whole parse, so a thread would not do), and
at most ``max_large_requests`` such bodies are in flight per worker: the next gets 503 with
Retry-After. With API keys set, /v1/* need ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``
(401 otherwise); /health, /docs and /openapi.json stay open. The request log writes one JSON line
per request: time, method, path, status, latency, model id and the applications' ids, never a
feature value.

The hot path avoids pandas and FastAPI's per-request machinery: the body is validated once by
pydantic-core straight from bytes (``model_validate_json``), the feature matrix is built from the
validated values in schema order, and the JSON response is written directly.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import os
import re
import sys
import time
from collections.abc import Mapping, MutableMapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from creditmodel import __version__
from creditmodel.data.dictionary import DataDictionary, default_dictionary
from creditmodel.data.policy import referral_items
from creditmodel.exceptions import BundleError, ConfigError, RequestError
from creditmodel.export.contents import model_id
from creditmodel.service import errors as e_
from creditmodel.service import models as m
from creditmodel.service.language import from_scope
from creditmodel.service.scoring import FastScorer, dictionary_column_bounds
from creditmodel.signals import end_with_parent
from creditmodel.texts import DEFAULT_LANG, Phrase, grade_name, text

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 2**20
APPLICATION_PATHS = ("/v1/applications/score", "/v1/applications/price")
APPLICATION_BODY_BYTES = 16 * 2**10  # one application's fields: a few hundred bytes
LARGE_BODY_BYTES = 256 * 2**10  # larger bodies are parsed and scored in a helper process
MAX_LARGE_REQUESTS = 2  # large bodies in flight per worker; the next one gets 503 + Retry-After
BODY_TIMEOUT_S = 30.0  # a body not received within this many seconds gets 408
RETRY_AFTER_S = 2
MAX_LOGGED_IDS = 1000
TRAINING_RANGE_POLICIES = ("flag", "refuse")
ENV_API_KEYS = "CREDITMODEL_API_KEYS"
MIN_KEY_LENGTH = 16
_FEATURE_IN_MESSAGE = re.compile(r"feature '([^']+)'")
_APPLICATION_KEY = re.compile(rb'"features"\s*:')
_ANSWER_LANG = re.compile(rb'"lang"\s*:\s*"(en|zh)"')

def model_card(bundle: Any) -> dict[str, Any]:
    """The bundle's model card; for bundles without one, what the manifest says."""
    card = getattr(bundle, "model_card", None)
    if isinstance(card, dict) and card:
        return card
    man = bundle.manifest if isinstance(bundle.manifest, dict) else {}
    prov = man.get("provenance") or {}
    return {"output": man.get("output"), "created_utc": man.get("created_utc"),
            "extraction_date": prov.get("extraction_date"), "source": "manifest (the bundle has no model card)"}


Reply = tuple[int, bytes]  # status and JSON body
Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]  # status, JSON body, extra headers


def _json(obj: Any, status: int = 200) -> Reply:
    return status, json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


def _errors(items: list[dict[str, Any]]) -> Reply:
    return e_.answer(items)


def _validation_errors(exc: ValidationError) -> Reply:
    errors = [(["body", *[p if isinstance(p, int) else str(p) for p in e["loc"]]], e)
              for e in exc.errors(include_url=False)]
    errors.sort(key=lambda le: len(le[0]))  # outermost first: an unknown top-level field before 147 missing features
    out = []
    for loc, e in errors[:e_.MAX_ERRORS]:  # only the items answered are said (a bad batch has a million errors)
        if e.get("input", ...) is None and len(loc) == 5 and loc[3] == "features" and e["type"] != "missing":
            out.append(e_.item(loc, e["type"], "error.feature_null", name=loc[4]))
        else:
            out.append(e_.of_validation(e, loc))
    return _errors(out or [e_.item(["body"], "value_error", "error.invalid_request")])


def _locate_number_out_of_range(exc: ValidationError, body: bytes, parse) -> ValidationError:
    """A number too large for the JSON parser is a json_invalid error without a field; parse again with
    Python's json (big integers as float -> inf) so that validation names the field holding it."""
    errs = exc.errors(include_url=False)
    if len(errs) != 1 or errs[0]["type"] != "json_invalid" or "number out of range" not in errs[0]["msg"]:
        return exc
    validator = getattr(parse, "__self__", None)
    if validator is None:  # not a pydantic model's parser: keep its own error
        return exc
    try:
        data = json.loads(body, parse_int=float)
        validator.model_validate(data)
    except ValidationError as located:
        return located
    except Exception:  # noqa: BLE001 - anything else: keep the parser's own error
        return exc
    return exc


class _TooLarge(Exception):
    pass


class _TimedOut(Exception):
    pass


class _Busy(Exception):
    pass


class _Gone(Exception):
    pass


def _content_length(scope: MutableMapping[str, Any]) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def _read_body(receive: Any, limit: int, deadline: float, *, large: int | None = None,
                     on_large: Any = None) -> bytes:
    """The whole request body from an ASGI receive channel.

    _TooLarge beyond `limit` bytes, _TimedOut when it is not complete by `deadline` (monotonic),
    _Gone when the client disconnects; once more than `large` bytes arrived, `on_large()` must
    return True (a slot for a large body) or _Busy is raised.
    """
    chunks, size, asked = [], 0, False
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _TimedOut
    try:
        # one timer for the whole body: asyncio.wait_for per chunk made a task per chunk, a tenth of a small
        # request's time in the service
        async with asyncio.timeout(remaining):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _Gone
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise _TooLarge
                if large is not None and size > large and not asked:
                    asked = True
                    if not on_large():
                        raise _Busy
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        raise _TimedOut from None
    return b"".join(chunks)


async def _drain(receive: Any, deadline: float) -> None:
    """Read and drop the rest of a body we refuse, so that the client sees the answer rather than a reset."""
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            message = await asyncio.wait_for(receive(), remaining)
        except TimeoutError:
            return
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            return


def _plain(v: Any) -> Any:
    """A JSON-ready scalar: numpy types unwrapped, NaN/inf as null."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (pd.Timestamp,)):
        return v.isoformat()
    return v


def training_range_policy(bundle: Any) -> str:
    """The bundle's policy for values outside the training range: feature_schema.json's
    ``out_of_training_range`` ("flag" when absent), read from the file the manifest vouches for."""
    path = getattr(bundle, "path", None)
    manifest = bundle.manifest if isinstance(getattr(bundle, "manifest", None), dict) else {}
    expected = ((manifest.get("files") or {}).get("feature_schema.json") or {}).get("sha256")
    raw: Any = {}
    if path is not None and expected:
        try:
            data = (Path(path) / "feature_schema.json").read_bytes()
        except OSError:
            data = None
        if data is not None:
            if hashlib.sha256(data).hexdigest() != expected:
                raise BundleError.of("error.service.schema_changed")
            raw = json.loads(data)
    policy = raw.get("out_of_training_range", "flag") if isinstance(raw, dict) else "flag"
    if policy not in TRAINING_RANGE_POLICIES:
        raise BundleError.of("error.service.schema_training_range", policy=policy,
                             expected=list(TRAINING_RANGE_POLICIES))
    return policy


def loan_domain(tables: Mapping[str, Any] | None = None) -> dict[str, tuple[float, float, str]]:
    """Valid ranges of the pricing request's loan terms, from the data dictionary (not business policy):
    the amount as loans.amount, the maturity as loans.term_months in years, sales as statement revenue.
    tables: the canonical tables of the bank's dictionary (``schema.resolve_tables``); None: the shipped one's."""
    out = {}
    for field_, (table, column, scale) in {"amount": ("loans", "amount", 1.0),
                                           "maturity_years": ("loans", "term_months", 1 / 12),
                                           "annual_sales": ("financial_statements", "revenue", 1.0)}.items():
        b = dictionary_column_bounds(table, column, tables)
        if b is not None:
            out[field_] = (b[0] * scale, b[1] * scale, f"{table}.{column}" + (" / 12" if scale != 1.0 else ""))
    return out


class ScoringService:
    """The request handling, apart from FastAPI so that it can be timed and tested in-process."""

    def __init__(self, bundle: Any, pricing_config: Any = None, *, max_batch: int = m.MAX_BATCH,
                 num_threads: int = 1, training_range: str | None = None, scoring_log: Any = None,
                 dictionary: DataDictionary | None = None):
        from creditmodel.config import PricingConfig
        from creditmodel.data.schema import resolve_tables

        self.bundle = bundle
        # the bank's data dictionary (its policy rules, valid domains, currency): the run config's, else the
        # shipped default; `tables`: the canonical tables with its domains, which bound the requests
        self.data_dictionary = dictionary if dictionary is not None else default_dictionary()
        if hasattr(bundle, "check_currency"):  # amounts of another currency than the model's: refused
            bundle.check_currency(self.data_dictionary, "serve")
        self.tables = resolve_tables(self.data_dictionary)
        self.scoring_log = scoring_log  # creditmodel.service.scoring_log.ScoringLog: every scored application
        self.pricing = pricing_config if pricing_config is not None else PricingConfig()
        self.max_batch = max_batch
        self.scorer = FastScorer(bundle, num_threads=num_threads, dictionary=True, tables=self.tables)
        self.names = self.scorer.names
        self.model_id = model_id(bundle)
        self.training_range = training_range or training_range_policy(bundle)
        if self.training_range not in TRAINING_RANGE_POLICIES:
            raise ConfigError.of("error.service.training_range", policy=self.training_range,
                                 expected=list(TRAINING_RANGE_POLICIES))
        entries = {f["name"]: f for f in bundle.schema.to_dict().get("features", [])}
        descriptions = {n: " - ".join(x for x in (e.get("label"), e.get("description")) if x)
                        for n, e in entries.items()}
        self.models = m.build_request_models(self.scorer.policies, sorted(self.pricing.lgd),
                                             descriptions=descriptions, max_batch=max_batch,
                                             loan_domain=loan_domain(self.tables),
                                             currency=self.data_dictionary.currency)
        self.keys = self.models.field_keys
        self.feature_index = {n: j for j, n in enumerate(self.names)}
        # the dictionary's policy rules a pricing request can be judged by: the loan's amount and term,
        # and rules on a column that is one of the bundle's features
        from creditmodel.data.policy import applicable_rules

        self.price_rules = applicable_rules(self.data_dictionary, {"amount", "term_months", *self.names})
        self.parsers = {"/v1/score": (self.score, self.models.score_request.model_validate_json),
                        "/v1/price": (self.price, self.models.price_request.model_validate_json)}
        # a valid request has exactly one "features" key per application, unless a feature is called so
        self.countable = "features" not in self.names
        self._grade_name_cache: dict[str, dict[str, str]] = {}

    # --- one request from its bytes --------------------------------------------------------------

    def handle(self, path: str, body: bytes, lang: str | None = None) -> tuple[int, bytes, list[Any] | None]:
        """Status, JSON body and the applications' ids (for the request log) of a POST to `path`; the texts
        in the body's ``lang``, else `lang` (the query's or Accept-Language's), else English."""
        fn, parse = self.parsers[path]
        if self.countable:
            n = len(_APPLICATION_KEY.findall(body))
            if n > self.max_batch:  # refused before parsing: a count costs a few ms, a parse seconds
                return (*_errors([e_.item(["body", "applications"], "too_long", "error.too_many",
                                          limit=self.max_batch, n=n)]), None)
        try:
            req: Any = parse(body)  # a request model built from the bundle's features
        except ValidationError as exc:
            return (*_validation_errors(_locate_number_out_of_range(exc, body, parse)), None)
        status, out = fn(req, req.lang or lang or DEFAULT_LANG)
        return status, out, [a.id for a in req.applications]

    # --- shared steps -------------------------------------------------------------------------

    def _rows(self, apps: list[Any]) -> list[dict[str, Any]]:
        return [a.features.__dict__ for a in apps]

    def _matrix(self, rows: list[dict[str, Any]]) -> tuple[np.ndarray | None, list[list[str]], Reply | None]:
        """Encoded matrix and per row the features outside the training range (policy "flag"), or the
        422 of the first row outside an allowed range (the bundle's words, else the data dictionary's)."""
        X = self.scorer.encode_rows(rows, self.keys)
        bad = self.scorer.out_of_range(X)
        if len(bad):
            i = int(bad[0])
            row = {n: rows[i][k] for n, k in zip(self.names, self.keys)}
            verdict = self.scorer.bundle_verdict(row)
            if verdict is not None:
                found = _FEATURE_IN_MESSAGE.search(str(verdict))
                name = found.group(1) if found else self._first_out_of_range(X, i)
                return None, [], _errors([e_.of_exception(["body", "applications", i, "features", name],
                                                          "request_error", verdict)])
            name = self._first_out_of_range(X, i)  # the bundle allows it; the data dictionary does not
            p = self.scorer.policies[self.feature_index[name]]
            lo, hi = p.bounds or (None, None)
            loc, value = ["body", "applications", i, "features", name], float(X[i, self.feature_index[name]])
            return None, [], _errors([
                e_.item(loc, "request_error", "error.feature_outside_valid", name=name, value=value, lo=lo, hi=hi,
                        source=p.domain_source) if p.domain_source else
                e_.item(loc, "request_error", "error.feature_outside_allowed", name=name, value=value, lo=lo, hi=hi)])
        outside = self.scorer.outside_training(X)
        if self.training_range == "refuse":
            for i, names in enumerate(outside):
                if names:
                    name = names[0]
                    j = self.feature_index[name]
                    lo, hi = self.scorer.policies[j].training_range or (None, None)
                    return None, [], _errors([e_.item(
                        ["body", "applications", i, "features", name], "outside_training_range",
                        "error.feature_outside_training", name=name, value=float(X[i, j]), lo=lo, hi=hi)])
        return X, outside, None

    def _first_out_of_range(self, X: np.ndarray, i: int) -> str:
        for j, p in enumerate(self.scorer.policies):
            if p.bounds is not None and not np.isnan(X[i, j]) and not p.bounds[0] <= X[i, j] <= p.bounds[1]:
                return p.name
        return self.names[0]

    # --- /v1/score ----------------------------------------------------------------------------

    def _scored(self, apps: list[Any]) -> tuple[list[dict[str, Any]], Any, list[Any], Any, Reply | None]:
        """The applications' feature rows, matrix, outside-the-training-range notes and PDs, or the
        answer that refuses them (the other values None)."""
        rows = self._rows(apps)
        X, outside, error = self._matrix(rows)
        if error is not None:
            return rows, None, outside, None, error
        assert X is not None  # _matrix gives the matrix or the error
        return rows, X, outside, self.scorer.pd(X), None

    def score(self, req: Any, lang: str = DEFAULT_LANG) -> Reply:
        apps = req.applications
        rows, X, outside, pd_, error = self._scored(apps)
        if error is not None:
            return error
        grades = self.scorer.grade(pd_)
        if self.scoring_log is not None:
            self.scoring_log.submit(self.model_id, "/v1/score", [a.id for a in apps], self.names, self.keys, rows, pd_,
                                    grades)
        reasons = self.scorer.reasons(X, lang=lang) if req.reasons else None
        names = self._grade_names(lang)
        results = []
        for i, a in enumerate(apps):
            g = str(grades[i])
            r: dict[str, Any] = {"id": a.id, "pd": float(pd_[i]), "grade": g, "grade_name": names.get(g, g)}
            if reasons is not None:
                r["reasons"] = [x.as_dict() for x in reasons[i]]
            r["outside_training_range"] = outside[i]
            results.append(r)
        return _json({"model": self.model_id, "lang": lang, "results": results})

    def _grade_names(self, lang: str) -> dict[str, str]:
        """The master scale's grade names in `lang`, built once per language (not once per request)."""
        names = self._grade_name_cache.get(lang)
        if names is None:
            names = self._grade_name_cache[lang] = {str(g): grade_name(str(g), lang)
                                                    for g in self.bundle.master_scale.grades}
        return names

    # --- /v1/price ----------------------------------------------------------------------------

    def _feature(self, row: dict[str, Any], name: str) -> Any:
        j = self.feature_index.get(name)
        return None if j is None else row[self.keys[j]]

    def price(self, req: Any, lang: str = DEFAULT_LANG, pd_guarantor: Sequence[float] | None = None) -> Reply:
        """The /v1/price answer. `pd_guarantor`: per application the PD of its guarantor as the bundle scored
        it from the store (NaN: none); never from the request body, only from the application endpoint."""
        from creditmodel.pricing.engine import COMPONENTS, price

        apps = req.applications
        rows, X, outside, pd_model, error = self._scored(apps)
        if error is not None:
            return error
        pd_priced = (self.bundle.master_scale.grade_pd(pd_model) if getattr(self.pricing, "pd_basis", "loan") == "grade"
                     else pd_model)
        default_maturity = float(getattr(self.pricing, "default_maturity_years", 1.0))
        maturity, sales, warnings = [], [], []
        for i, (a, row) in enumerate(zip(apps, rows)):
            loan, notes = a.loan, []
            mat = loan.maturity_years
            term = self._feature(row, "term_months") if mat is None else None
            if mat is None and term is None:  # no term at all: the configured default, said out loud
                mat = default_maturity
                notes.append(text("service.default_maturity", lang, years=default_maturity))
            elif term is not None:  # (mat is None) never a default in place of a term the request got wrong
                if not 0 < term / 12 <= m.MAX_MATURITY_YEARS:
                    return _errors([e_.item(["body", "applications", i, "features", "term_months"], "request_error",
                                            "error.term_no_maturity", term=term, most=m.MAX_MATURITY_YEARS)])
                mat = term / 12
            maturity.append(mat)
            s = loan.annual_sales
            if s is None:
                rev = self._feature(row, "fs_revenue")
                s = rev if rev is not None and 0 <= rev <= m.ABSURD else np.nan
            sales.append(s)
            feature_gt = self._feature(row, "guarantee_type")
            if feature_gt is not None and feature_gt != loan.guarantee_type:
                notes.append(text("service.guarantee_mismatch", lang, loan=loan.guarantee_type, feature=feature_gt))
            warnings.append(notes)
        apps_frame = pd.DataFrame({
            "loan_id": np.arange(len(apps)),
            "guarantee_type": [a.loan.guarantee_type for a in apps],
            "pd": pd_priced,
            "grade": self.scorer.grade(pd_model),
            "ead": np.array([a.loan.amount for a in apps], dtype=np.float64),
            "maturity_years": np.array(maturity, dtype=np.float64),
            "annual_sales": np.array(sales, dtype=np.float64),
        })
        if pd_guarantor is not None:
            apps_frame["pd_guarantor"] = np.asarray(pd_guarantor, dtype=np.float64)
        try:
            priced = price(apps_frame, self.pricing)
        except RequestError as exc:
            return _errors([e_.of_exception(self._price_error_loc(str(exc)), "request_error", exc)])
        flags = self._referrals(apps, rows, maturity)
        components = [c for c in COMPONENTS if c in priced.columns]
        skip = {"loan_id", "rate", "grade", *components}
        details_cols = [c for c in priced.columns if c not in skip]
        # the rows' values as the columns hold them (numpy scalars, unwrapped below): to_dict("records") indexes
        # every cell, which cost more than the pricing of one loan
        columns = list(priced.columns)
        records = [dict(zip(columns, values)) for values in zip(*(priced[c].to_numpy() for c in columns))]
        reasons = self.scorer.reasons(X, lang=lang) if req.reasons else None
        names = self._grade_names(lang)
        results = []
        for i, (a, rec) in enumerate(zip(apps, records)):
            details = {("pd_priced" if c == "pd" else c): _plain(rec[c]) for c in details_cols}
            g = str(rec.get("grade", ""))
            r = {"id": a.id, "pd": float(pd_model[i]), "grade": g, "grade_name": names.get(g, g),
                 "rate": float(rec["rate"]), "components": {c: float(rec[c]) for c in components},
                 "details": details, "warnings": warnings[i],
                 "needs_referral": bool(flags["needs_referral"].iat[i]),
                 "referral": referral_items(flags["referral_rules"].iat[i], self.price_rules, lang)}
            if reasons is not None:
                r["reasons"] = [x.as_dict() for x in reasons[i]]
            r["outside_training_range"] = outside[i]
            results.append(r)
        if self.scoring_log is not None:  # only what was answered with 200: a refused price is not a score
            self.scoring_log.submit(self.model_id, "/v1/price", [a.id for a in apps], self.names, self.keys, rows,
                                    pd_model, apps_frame["grade"].to_numpy())
        return _json({"model": self.model_id, "lang": lang, "results": results})

    def _referrals(self, apps: list[Any], rows: list[dict[str, Any]], maturity: list[float]) -> pd.DataFrame:
        """needs_referral and referral_rules of each priced loan under the dictionary's policy rules (the
        unit's approval authority, ...): priced all the same, flagged for the decision."""
        from creditmodel.data.policy import policy_flags

        loans = pd.DataFrame({"loan_id": np.arange(len(apps)), "amount": [a.loan.amount for a in apps],
                              "term_months": np.asarray(maturity, dtype=np.float64) * 12})
        for rule in self.price_rules.policies:
            if rule.column not in loans.columns and rule.column in self.feature_index:
                loans[rule.column] = [self._feature(row, rule.column) for row in rows]
        return policy_flags(loans, self.price_rules)

    @staticmethod
    def _price_error_loc(message: str) -> list[str | int]:
        loan = re.search(r"loan_id (\d+)", message)
        i = int(loan.group(1)) if loan else 0
        for column, field in (("ead", "amount"), ("maturity_years", "maturity_years"),
                              ("annual_sales", "annual_sales"), ("guarantee_type", "guarantee_type")):
            if column in message:
                return ["body", "applications", i, "loan", field]
        return ["body", "applications", i, "loan"]

    # --- /v1/model ----------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        man = self.bundle.manifest if isinstance(self.bundle.manifest, dict) else {}
        ms = self.bundle.master_scale
        bounds = list(ms.upper_bounds)
        features = self.bundle.schema.to_dict().get("features", [])
        narrowed = {p.name: p for p in self.scorer.policies if p.domain_source}
        for f in features:
            p = narrowed.get(f["name"])
            if p is not None and p.bounds is not None:
                f["valid_min"], f["valid_max"], f["valid_source"] = p.bounds[0], p.bounds[1], p.domain_source
        return {
            "model": self.model_id,
            "model_card": model_card(self.bundle),
            "bundle": {k: man.get(k) for k in ("format", "format_version", "created_utc", "creditmodel_version",
                                               "lightgbm_version", "output")}
                      | {"files": {n: (f or {}).get("sha256") for n, f in (man.get("files") or {}).items()}},
            "out_of_training_range": self.training_range,
            "features": features,
            "grades": [{"grade": g, "pd_upper": float(u), "assigned_pd": float(a)}
                       for g, u, a in zip(ms.grades, bounds, ms.grade_pds())],
        }


# --- large bodies: a helper process per worker ----------------------------------------------------

_HELPER: ScoringService | None = None


def _helper_init(spec: dict[str, Any]) -> None:
    """In the helper process: load the same verified bundle (its manifest must equal the worker's)."""
    from creditmodel.export.bundle import load_bundle

    global _HELPER
    end_with_parent(spec["parent_pid"])  # the worker that spawned us, even if it is already gone
    try:
        bundle = load_bundle(spec["bundle_dir"], **spec["load_options"])
    except BundleError:
        if os.getppid() != spec["parent_pid"]:  # the service stopped while this helper started, its pinned copy
            os._exit(0)  # removed with it: nothing is left to report to, and no traceback on the way out
        raise
    if bundle.manifest != spec["manifest"]:
        raise BundleError.of("error.service.bundle_changed", path=spec["bundle_dir"])
    collected = None
    if spec.get("collect_scores"):
        from creditmodel.service.scoring_log import CollectedScores

        collected = CollectedScores()
    _HELPER = ScoringService(bundle, spec["pricing"], **spec["options"], scoring_log=collected)


def _helper_handle(path: str, body: bytes, lang: str | None = None
                   ) -> tuple[int, bytes, list[Any] | None, list[Any]]:
    """The answer, and what was scored for the worker's scoring log (the helper writes no log itself)."""
    assert _HELPER is not None
    status, out, ids = _HELPER.handle(path, body, lang)
    return status, out, ids, _HELPER.scoring_log.take() if _HELPER.scoring_log is not None else []


def _helper_ready() -> int:
    return os.getpid()


class LargeRequests:
    """Parses, validates and scores large bodies in a helper process, at most `limit` at a time."""

    def __init__(self, svc: ScoringService, *, limit: int, processes: int = 1, load_options: dict | None = None):
        self.spec = {"bundle_dir": str(svc.bundle.path), "manifest": svc.bundle.manifest, "pricing": svc.pricing,
                     "parent_pid": os.getpid(),
                     "load_options": load_options or {},
                     "options": {"max_batch": svc.max_batch, "training_range": svc.training_range,
                                 "dictionary": svc.data_dictionary},
                     "collect_scores": svc.scoring_log is not None}
        self.scoring_log = svc.scoring_log  # what the helper scored is appended here, by this worker
        self.limit, self.processes, self.active = limit, max(1, min(processes, limit)), 0
        self.pool: Any = None

    def try_acquire(self) -> bool:
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def release(self) -> None:
        self.active -= 1

    def start(self) -> Any:
        """The process pool, created (and its processes spawned) on first use."""
        if self.pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_helper_init, initargs=(self.spec,))
        return self.pool

    async def warm_up(self) -> None:
        loop = asyncio.get_running_loop()
        pool = self.start()
        try:
            await asyncio.gather(*[loop.run_in_executor(pool, _helper_ready) for _ in range(self.processes)])
        except Exception as exc:  # noqa: BLE001 - the first large request reports it
            log.warning("helper process for large requests: %s", exc)

    async def handle(self, path: str, body: bytes, lang: str | None = None) -> tuple[int, bytes, list[Any] | None]:
        from concurrent.futures.process import BrokenProcessPool

        loop = asyncio.get_running_loop()
        try:
            status, out, ids, scored = await loop.run_in_executor(self.start(), _helper_handle, path, body, lang)
            if self.scoring_log is not None:
                for item in scored:
                    self.scoring_log.submit(*item)
            return status, out, ids
        except BrokenProcessPool:
            self.pool = None
            return (*e_.answer([e_.item(["body"], "unavailable", "error.helper_failed")], 503), None)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None


# --- authentication and the request log -----------------------------------------------------------


def load_api_keys(path: str | os.PathLike | None = None, env: str | None = None) -> list[str]:
    """API keys from a file (one a line; blank lines and # comments ignored) and/or $CREDITMODEL_API_KEYS
    (comma-separated). Every key must be printable ASCII without spaces, at least 16 characters."""
    keys: list[tuple[str, Phrase]] = []
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError.of("error.service.api_key_file_unreadable", path=p,
                                 detail=getattr(exc, "strerror", None) or str(exc)) from None
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if line and not line.startswith("#"):
                keys.append((line, Phrase("error.service.api_key_file_line", {"path": p, "n": n})))
        if not keys:
            raise ConfigError.of("error.service.api_key_file_empty", path=p)
    if env:
        keys += [(k.strip(), Phrase("error.service.api_key_env_entry", {"env": ENV_API_KEYS, "n": i + 1}))
                 for i, k in enumerate(env.split(",")) if k.strip()]
    for key, where in keys:
        if len(key) < MIN_KEY_LENGTH or not all(33 <= ord(c) < 127 for c in key):
            raise ConfigError.of("error.service.api_key_short", where=where, n=MIN_KEY_LENGTH)
    return [k for k, _ in keys]


class _ApiKeys:
    """Pure ASGI middleware: /v1/* need one of the keys (compared in constant time); the rest stays open."""

    def __init__(self, app: Any, keys: Sequence[str]):
        self.app = app
        self.digests = [hashlib.sha256(k.encode()).digest() for k in keys]
        self.body = json.dumps({"detail": [e_.item(["header", "authorization"], "unauthorized",
                                                   "error.api_key")]}).encode()

    def allowed(self, headers: Sequence[tuple[bytes, bytes]]) -> bool:
        presented = None
        for k, v in headers:
            if k == b"x-api-key":
                presented = v.strip()
            elif k == b"authorization" and v[:7].lower() == b"bearer ":
                presented = v[7:].strip()
        if not presented:
            return False
        digest = hashlib.sha256(presented).digest()
        ok = False
        for d in self.digests:  # every key is compared, so the time does not say which one matched
            ok |= hmac.compare_digest(digest, d)
        return ok

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/") and not self.allowed(scope["headers"]):
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer"),
                                    (b"content-length", str(len(self.body)).encode())]})
            await send({"type": "http.response.body", "body": self.body})
            return
        await self.app(scope, receive, send)


class RequestLog:
    """One JSON line per request appended to a file ("-": stderr); ids only, never feature values."""

    def __init__(self, target: str | os.PathLike):
        self.target = str(target)
        if self.target == "-":
            self.fd, self.owned = sys.stderr.fileno(), False
        else:
            try:
                self.fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            except OSError as exc:
                raise ConfigError.of("error.service.request_log", path=target, detail=exc.strerror) from None
            self.owned = True

    def __reduce__(self) -> tuple[Any, ...]:  # a worker process opens the file itself
        return RequestLog, (self.target,)

    def write(self, record: dict[str, Any]) -> None:
        try:
            os.write(self.fd, (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode())
        except OSError as exc:
            log.warning("request log: %s", exc)


class _LogRequests:
    """Pure ASGI middleware writing the request log."""

    def __init__(self, app: Any, request_log: RequestLog, model: str):
        self.app, self.log, self.model = app, request_log, model

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [0]

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            ids = scope.get("creditmodel.ids")
            record: dict[str, Any] = {
                "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                "method": scope["method"], "path": scope["path"], "status": status[0],
                "latency_ms": round((time.perf_counter() - start) * 1000, 3), "model": self.model}
            if ids is not None:
                record["applications"] = len(ids)
                record["ids"] = ids[:MAX_LOGGED_IDS]
            self.log.write(record)


class _FastPath:
    """Pure ASGI middleware answering the service's own paths without FastAPI's routing and request
    objects (a few hundred microseconds per request); every other path goes to FastAPI."""

    def __init__(self, app: Any, *, posts: frozenset[str], gets: dict[str, Any], reply: Any):
        self.app, self.posts, self.gets, self.reply = app, posts, gets, reply

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            if method == "POST" and path in self.posts:
                status, body, headers = await self.reply(path, scope, receive)
            elif method == "GET" and path in self.gets:
                status, body, headers = self.gets[path]()
            else:
                return await self.app(scope, receive, send)
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode()), *headers]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def create_app(bundle: Any, pricing_config: Any = None, *, max_batch: int = m.MAX_BATCH,
               max_body_bytes: int = MAX_BODY_BYTES, num_threads: int = 1, fast_path: bool = True,
               large_body_bytes: int = LARGE_BODY_BYTES, max_large_requests: int = MAX_LARGE_REQUESTS,
               body_timeout: float = BODY_TIMEOUT_S, api_keys: Sequence[str] | None = None,
               request_log: RequestLog | None = None, health: Any = None, training_range: str | None = None,
               load_options: dict[str, Any] | None = None, store: str | None = None,
               scoring_log: Any = None, dictionary: DataDictionary | None = None) -> FastAPI:
    """The FastAPI application serving `bundle` (a loaded, verified PDBundle).

    store: a feature store (``duckdb:///path`` or a DuckDB file) from which /v1/applications/score and
    /v1/applications/price compute the bundle's features as of the decision date; a store that does
    not fit the bundle's feature catalogue is one StoreError here, before any socket opens.

    fast_path: answer the API's paths in a pure ASGI middleware (same handlers, same responses),
    skipping FastAPI's per-request routing; False leaves everything to FastAPI's routes.
    health: what /health reports (``creditmodel.service.workers.WorkerBoard`` when several workers
    serve); default: this process alone. training_range: "flag" or "refuse", overriding the bundle's
    policy. load_options: keyword arguments of load_bundle for the helper process of large bodies.
    scoring_log: a ``creditmodel.service.scoring_log.ScoringLog`` that every scored application is
    appended to (never blocking or failing a request; /health shows its state).
    dictionary: the bank's data dictionary (``RunConfig.data_dictionary()``), whose policy rules flag the
    scored and priced applications for referral; default: the shipped one.
    """
    from creditmodel.service.workers import SingleProcess

    svc = ScoringService(bundle, pricing_config, max_batch=max_batch, num_threads=num_threads,
                         training_range=training_range, scoring_log=scoring_log, dictionary=dictionary)
    applications = None
    if store is not None:
        from creditmodel.service.applications import ApplicationService

        applications = ApplicationService(svc, store)
    large = LargeRequests(svc, limit=max_large_requests, load_options=load_options)
    board = health if health is not None else SingleProcess(svc.model_id)
    info = svc.info()
    info_bytes = json.dumps(info, separators=(",", ":"), allow_nan=False).encode()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        warm = asyncio.get_running_loop().create_task(large.warm_up())
        try:
            yield
        finally:
            warm.cancel()
            large.close()
            if scoring_log is not None:
                scoring_log.close()

    app = FastAPI(
        title="creditmodel scoring service",
        version=__version__,
        description=("Calibrated PDs, master-scale grades, reason codes and risk-covering prices "
                     f"from the export bundle of model {svc.model_id} ({len(svc.names)} features). "
                     f"PD of: {model_card(bundle).get('target') or model_card(bundle).get('output') or 'see /health'}."),
        lifespan=lifespan,
    )
    app.state.service = svc
    app.state.large_requests = large

    @app.exception_handler(StarletteHTTPException)
    async def unknown_route(request: Request, exc: StarletteHTTPException) -> Response:
        """A path the service does not have, or a method it does not take there: said like every refusal."""
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        if kind is None:
            item = e_.untranslated(["path"], "http_error", str(exc.detail))
        else:
            item = e_.item(["path"], kind, f"error.{kind}", path=request.url.path, method=request.method)
        return Response(e_.answer([item])[1], status_code=exc.status_code, media_type="application/json",
                        headers=getattr(exc, "headers", None))

    def health_answer() -> Answer:
        ok, workers = board.check()
        answer = {"status": "ok" if ok else "failing", "model": svc.model_id, "features": len(svc.names),
                  "workers": workers}
        if scoring_log is not None:  # a failing log is reported, never a reason to stop scoring
            answer["scoring_log"] = scoring_log.state()
        body = json.dumps(answer, separators=(",", ":")).encode()
        return (200 if ok else 503), body, []

    def body_of(model: type) -> dict[str, Any]:
        return {"requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}

    errors: dict[int | str, dict[str, Any]] = {
        408: {"model": m.ErrorResponse, "description": f"the body did not arrive within {body_timeout:g} s"},
        413: {"model": m.ErrorResponse, "description": f"request body over {max_body_bytes} bytes"},
        422: {"model": m.ErrorResponse, "description": "the request does not match the bundle's schema"},
        503: {"model": m.ErrorResponse, "description": "too many large requests in flight; retry after "
                                                       "the Retry-After seconds"}}
    if api_keys:
        errors[401] = {"model": m.ErrorResponse, "description": "missing or unknown API key"}
    gets = {"/v1/model": lambda: (200, info_bytes, []), "/health": health_answer}

    def refuse(status: int, kind: str, text_id: str, headers: list[tuple[bytes, bytes]] | None = None,
               **fields: Any) -> Answer:
        return status, e_.answer([e_.item(["body"], kind, text_id, **fields)])[1], headers or []

    busy = (b"retry-after", str(RETRY_AFTER_S).encode())

    async def reply(path: str, scope: MutableMapping[str, Any], receive: Any) -> Answer:
        lang, bad_lang = from_scope(scope)  # ?lang= or Accept-Language; the body's lang comes first
        if bad_lang is not None:
            await _drain(receive, time.monotonic() + body_timeout)
            return (*e_.answer([e_.of_exception(["query", "lang"], "value_error", bad_lang)]), [])
        status, out, headers = await answer(path, scope, receive, lang)
        if status == 200:
            chosen = _ANSWER_LANG.search(out[:300])  # every answer states its language near its start
            headers = [*headers, (b"content-language", chosen.group(1) if chosen else DEFAULT_LANG.encode())]
        return status, out, headers

    async def answer(path: str, scope: MutableMapping[str, Any], receive: Any, lang: str | None) -> Answer:
        length = _content_length(scope)
        if path in APPLICATION_PATHS:
            return await application_reply(path, scope, receive, length, lang)
        if length is not None and length > max_body_bytes:
            return refuse(413, "too_large", "error.body_too_large", limit=max_body_bytes)
        held = False
        deadline = time.monotonic() + body_timeout
        if length is not None and length > large_body_bytes:
            if not large.try_acquire():  # refused unparsed; the body is read and dropped
                await _drain(receive, deadline)
                return refuse(503, "busy", "error.busy", [busy], n=max_large_requests)
            held = True

        def acquire() -> bool:  # a body without Content-Length that turns out large
            nonlocal held
            held = held or large.try_acquire()
            return held

        try:
            try:
                body = await _read_body(receive, max_body_bytes, deadline, large=large_body_bytes, on_large=acquire)
            except _TooLarge:
                return refuse(413, "too_large", "error.body_too_large", limit=max_body_bytes)
            except _TimedOut:
                return refuse(408, "timeout", "error.body_timeout", seconds=body_timeout)
            except _Busy:
                await _drain(receive, deadline)
                return refuse(503, "busy", "error.busy", [busy], n=max_large_requests)
            except _Gone:
                return refuse(400, "disconnected", "error.disconnected")
            if held:
                status, out, ids = await large.handle(path, body, lang)
            else:
                status, out, ids = svc.handle(path, body, lang)
        finally:
            if held:
                large.release()
        scope["creditmodel.ids"] = ids
        return status, out, []

    async def application_reply(path: str, scope: MutableMapping[str, Any], receive: Any, length: int | None,
                                lang: str | None) -> Answer:
        """One application: a small body, answered in this process (never the helper of large bodies)."""
        limit = min(max_body_bytes, APPLICATION_BODY_BYTES)
        if applications is None:
            return refuse(404, "no_store", "error.no_store")
        if length is not None and length > limit:
            return refuse(413, "too_large", "error.body_too_large", limit=limit)
        try:
            body = await _read_body(receive, limit, time.monotonic() + body_timeout)
        except _TooLarge:
            return refuse(413, "too_large", "error.body_too_large", limit=limit)
        except _TimedOut:
            return refuse(408, "timeout", "error.body_timeout", seconds=body_timeout)
        except _Gone:
            return refuse(400, "disconnected", "error.disconnected")
        status, out, ids = applications.handle(path, body, lang)
        scope["creditmodel.ids"] = ids
        return status, out, []

    def respond(answer: Answer) -> Response:
        status, body, headers = answer
        return Response(body, status_code=status, media_type="application/json",
                        headers={k.decode(): v.decode() for k, v in headers})

    # The routes document the API (OpenAPI, /docs) and answer when the fast path is off; with it on
    # (the default), the middleware below answers these four paths before FastAPI's routing.
    @app.post("/v1/score", summary="PD, grade and reason codes of one or many applications",
              responses={200: {"model": m.ScoreResponse}, **errors},
              openapi_extra=body_of(svc.models.score_request))
    async def score(request: Request) -> Response:
        return respond(await reply("/v1/score", request.scope, request.receive))

    @app.post("/v1/price", summary="PD, grade and risk-covering rate with its decomposition",
              responses={200: {"model": m.PriceResponse}, **errors},
              openapi_extra=body_of(svc.models.price_request))
    async def price(request: Request) -> Response:
        return respond(await reply("/v1/price", request.scope, request.receive))

    if applications is not None:
        store_errors = {**errors, 503: {"model": m.ErrorResponse, "description": "the store failed under the "
                                        "request (store_unavailable, naming the store); nothing was scored, retry"}}

        @app.post("/v1/applications/score", summary="PD, grade and reasons from the application fields: the "
                                                    "features computed from the store as of the decision date",
                  responses={200: {"description": "the result, new_to_bank, needs_referral and the features"},
                             **store_errors}, openapi_extra=body_of(applications.model))
        async def score_application(request: Request) -> Response:
            return respond(await reply("/v1/applications/score", request.scope, request.receive))

        @app.post("/v1/applications/price", summary="risk-covering rate from the application fields: the "
                                                    "features computed from the store as of the decision date",
                  responses={200: {"description": "the price, new_to_bank, needs_referral and the features"},
                             **store_errors}, openapi_extra=body_of(applications.model))
        async def price_application(request: Request) -> Response:
            return respond(await reply("/v1/applications/price", request.scope, request.receive))

    @app.get("/v1/model", summary="model card, feature schema and master scale",
             responses={200: {"model": m.ModelInfo}, **({401: errors[401]} if api_keys else {})})
    async def model() -> Response:
        return Response(info_bytes, media_type="application/json")

    @app.get("/health", summary="the model id and every worker's state (503 while any worker is failing)",
             responses={200: {"model": m.Health}, 503: {"model": m.Health}})
    async def health_route() -> Response:
        return respond(health_answer())

    if fast_path:
        app.add_middleware(_FastPath, posts=frozenset(svc.parsers) | frozenset(APPLICATION_PATHS), gets=gets,
                           reply=reply)
    if api_keys:
        app.add_middleware(_ApiKeys, keys=list(api_keys))
    if request_log is not None:
        app.add_middleware(_LogRequests, request_log=request_log, model=svc.model_id)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            comps = schema.setdefault("components", {}).setdefault("schemas", {})
            for model_ in (svc.models.score_request, svc.models.price_request,
                           *((applications.model,) if applications is not None else ())):
                js = model_.model_json_schema(ref_template="#/components/schemas/{model}")
                comps.update(js.pop("$defs", {}))
                comps[model_.__name__] = js
            if api_keys:
                schema["components"]["securitySchemes"] = {
                    "bearer": {"type": "http", "scheme": "bearer"},
                    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
                for path, ops in schema.get("paths", {}).items():
                    if path.startswith("/v1/"):
                        for op in ops.values():
                            op["security"] = [{"bearer": []}, {"apiKey": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


# --- running it ----------------------------------------------------------------------------------


def listening_socket(host: str, port: int) -> Any:
    """The bound, listening socket every worker accepts on; ConfigError (one line) if it cannot be had."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigError.of("error.service.listen", host=host, port=port, detail=exc.strerror or str(exc)) from None
    # Accepted connections inherit TCP_NODELAY from the listening socket; without it each response
    # waits ~40 ms (Nagle + delayed ACK).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.set_inheritable(True)
    return sock


def serve(app: FastAPI | None, spec: Any, sock: Any, *, on_ready: Any) -> None:
    """Run the service on `sock` until interrupted: `app` itself in this process with one worker; with
    more, a Supervisor of worker processes that each build the app from the pinned bundle.

    `on_ready()` is called once the service accepts connections (every worker started).
    """
    from creditmodel.service.workers import Supervisor, started_server

    if spec.workers == 1:
        if app is None:
            raise ValueError("serve: one worker serves the app built in this process; none was given")
        import signal

        import uvicorn

        # uvicorn re-raises the signal that stopped it under the handlers it found; these let it
        # return instead, so the caller still removes its run directory.
        previous = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            config = uvicorn.Config(app, **spec.uvicorn_options)
            started_server(config, lambda _server: on_ready()).run(sockets=[sock])
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
        return
    Supervisor(spec, sock).run(on_ready)
