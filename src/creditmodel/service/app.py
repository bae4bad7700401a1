"""The HTTP scoring service: FastAPI over a verified export bundle.

    POST /v1/score   {"applications": [{"id": "A-1", "features": {...}}], "reasons": true}
                     -> {"model": "...", "results": [{"id", "pd", "grade", "reasons": [...]}]}
    POST /v1/price   {"applications": [{"id", "features": {...}, "loan": {"guarantee_type", "amount",
                     "maturity_years"?, "annual_sales"?}}]}
                     -> {"model", "results": [{"id", "pd", "grade", "rate", "components", "details", "warnings"}]}
    GET  /v1/model   the model card, bundle manifest summary, feature schema and master scale
    GET  /health     liveness
    GET  /docs, /openapi.json

Bad input of any kind (malformed JSON, wrong type, unknown or missing field, null where the schema
forbids it, NaN/inf, a value outside the bundle's allowed range, an empty or oversized batch) gets
422 with ``{"detail": [{"loc": ["body", "applications", i, "features", name], "msg", "type"}]}``;
a body over the size limit gets 413. Range refusals carry ``bundle.check_request``'s message.

The hot path avoids pandas and FastAPI's per-request machinery: the body is validated once by
pydantic-core straight from bytes (``model_validate_json``), the feature matrix is built from the
validated values in schema order, and the JSON response is written directly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import ValidationError

from creditmodel import __version__
from creditmodel.exceptions import RequestError
from creditmodel.service import models as m
from creditmodel.service.scoring import FastScorer

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 2**20
THREADPOOL_ROWS = 64  # larger requests are scored off the event loop, so /health stays responsive
MAX_ERRORS = 20
_FEATURE_IN_MESSAGE = re.compile(r"feature '([^']+)'")


def model_id(bundle: Any) -> str:
    files = bundle.manifest.get("files", {}) if isinstance(bundle.manifest, dict) else {}
    sha = (files.get("model.txt") or {}).get("sha256")
    if not sha:
        sha = hashlib.sha256(bundle.booster.model_to_string().encode()).hexdigest()
    return str(sha)[:12]


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


def _json(obj: Any, status: int = 200) -> Reply:
    return status, json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


def _errors(items: list[dict[str, Any]]) -> Reply:
    return _json({"detail": items[:MAX_ERRORS]}, 422)


def _validation_errors(exc: ValidationError) -> Reply:
    out = []
    for e in exc.errors(include_url=False, include_context=False):
        loc = ["body", *[p if isinstance(p, int) else str(p) for p in e["loc"]]]
        msg = e["msg"]
        if e.get("input", ...) is None and len(loc) == 5 and loc[3] == "features" and e["type"] != "missing":
            msg = f"feature {loc[4]!r}: null is not allowed (the feature is always defined)"
        out.append({"loc": loc, "msg": msg, "type": e["type"]})
    out.sort(key=lambda e: len(e["loc"]))  # outermost first: an unknown top-level field before 147 missing features
    return _errors(out or [{"loc": ["body"], "msg": "invalid request", "type": "value_error"}])


def _locate_number_out_of_range(exc: ValidationError, body: bytes, parse) -> ValidationError:
    """A number too large for the JSON parser is a json_invalid error without a field; parse again with
    Python's json (big integers as float -> inf) so that validation names the field holding it."""
    errs = exc.errors(include_url=False)
    if len(errs) != 1 or errs[0]["type"] != "json_invalid" or "number out of range" not in errs[0]["msg"]:
        return exc
    validator = getattr(parse, "__self__", None)
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


async def _read_body(scope: dict[str, Any], receive: Any, limit: int) -> bytes:
    """The whole request body from an ASGI receive channel; _TooLarge beyond `limit` bytes."""
    for key, value in scope.get("headers", ()):
        if key == b"content-length" and value.isdigit() and int(value) > limit:
            raise _TooLarge
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _plain(v: Any) -> Any:
    """A JSON-ready scalar: numpy types unwrapped, NaN/inf as null."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (pd.Timestamp,)):
        return v.isoformat()
    return v


class ScoringService:
    """The request handling, apart from FastAPI so that it can be timed and tested in-process."""

    def __init__(self, bundle: Any, pricing_config: Any = None, *, max_batch: int = m.MAX_BATCH,
                 num_threads: int = 1):
        from creditmodel.config import PricingConfig

        self.bundle = bundle
        self.pricing = pricing_config if pricing_config is not None else PricingConfig()
        self.scorer = FastScorer(bundle, num_threads=num_threads)
        self.names = self.scorer.names
        self.model_id = model_id(bundle)
        entries = {f["name"]: f for f in bundle.schema.to_dict().get("features", [])}
        descriptions = {n: " - ".join(x for x in (e.get("label"), e.get("description")) if x)
                        for n, e in entries.items()}
        self.models = m.build_request_models(self.scorer.policies, sorted(self.pricing.lgd),
                                             descriptions=descriptions, max_batch=max_batch)
        self.keys = self.models.field_keys
        self.feature_index = {n: j for j, n in enumerate(self.names)}

    # --- shared steps -------------------------------------------------------------------------

    def _rows(self, apps: list[Any]) -> list[dict[str, Any]]:
        return [a.features.__dict__ for a in apps]

    def _matrix(self, rows: list[dict[str, Any]]) -> tuple[np.ndarray | None, Reply | None]:
        """Encoded matrix, or the 422 of the first row outside an allowed range (the bundle's words)."""
        X = self.scorer.encode_rows(rows, self.keys)
        bad = self.scorer.out_of_range(X)
        if len(bad):
            i = int(bad[0])
            row = {n: rows[i][k] for n, k in zip(self.names, self.keys)}
            verdict = self.scorer.bundle_verdict(row)
            if verdict is not None:
                found = _FEATURE_IN_MESSAGE.search(str(verdict))
                name = found.group(1) if found else self._first_out_of_range(X, i)
                return None, _errors([{"loc": ["body", "applications", i, "features", name],
                                       "msg": str(verdict), "type": "request_error"}])
            name = self._first_out_of_range(X, i)  # the screen and the bundle disagree: refuse anyway
            lo, hi = self.scorer.policies[self.feature_index[name]].bounds or (None, None)
            return None, _errors([{"loc": ["body", "applications", i, "features", name],
                                   "msg": f"feature {name!r}: value outside the allowed range [{lo:g}, {hi:g}]",
                                   "type": "request_error"}])
        return X, None

    def _first_out_of_range(self, X: np.ndarray, i: int) -> str:
        for j, p in enumerate(self.scorer.policies):
            if p.bounds is not None and not np.isnan(X[i, j]) and not p.bounds[0] <= X[i, j] <= p.bounds[1]:
                return p.name
        return self.names[0]

    # --- /v1/score ----------------------------------------------------------------------------

    def score(self, req: Any) -> Reply:
        apps = req.applications
        X, error = self._matrix(self._rows(apps))
        if error is not None:
            return error
        pd_ = self.scorer.pd(X)
        grades = self.scorer.grade(pd_)
        reasons = self.scorer.reasons(X) if req.reasons else None
        results = []
        for i, a in enumerate(apps):
            r: dict[str, Any] = {"id": a.id, "pd": float(pd_[i]), "grade": str(grades[i])}
            if reasons is not None:
                r["reasons"] = [x.as_dict() for x in reasons[i]]
            results.append(r)
        return _json({"model": self.model_id, "results": results})

    # --- /v1/price ----------------------------------------------------------------------------

    def _feature(self, row: dict[str, Any], name: str) -> Any:
        j = self.feature_index.get(name)
        return None if j is None else row[self.keys[j]]

    def price(self, req: Any) -> Reply:
        from creditmodel.pricing.engine import COMPONENTS, price

        apps = req.applications
        rows = self._rows(apps)
        X, error = self._matrix(rows)
        if error is not None:
            return error
        pd_model = self.scorer.pd(X)
        pd_priced = (self.bundle.master_scale.grade_pd(pd_model) if getattr(self.pricing, "pd_basis", "loan") == "grade"
                     else pd_model)
        default_maturity = float(getattr(self.pricing, "default_maturity_years", 1.0))
        maturity, sales, warnings = [], [], []
        for a, row in zip(apps, rows):
            loan, notes = a.loan, []
            mat = loan.maturity_years
            if mat is None:
                term = self._feature(row, "term_months")
                mat = term / 12 if term is not None and 0 < term / 12 <= m.MAX_MATURITY_YEARS else default_maturity
            maturity.append(mat)
            s = loan.annual_sales
            if s is None:
                rev = self._feature(row, "fs_revenue")
                s = rev if rev is not None and 0 <= rev <= m.ABSURD else np.nan
            sales.append(s)
            feature_gt = self._feature(row, "guarantee_type")
            if feature_gt is not None and feature_gt != loan.guarantee_type:
                notes.append(f"loan.guarantee_type {loan.guarantee_type!r} differs from features.guarantee_type "
                             f"{feature_gt!r}: the LGD follows the loan, the PD the features")
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
        try:
            priced = price(apps_frame, self.pricing)
        except RequestError as exc:
            return _errors([{"loc": self._price_error_loc(str(exc)), "msg": str(exc), "type": "request_error"}])
        components = [c for c in COMPONENTS if c in priced.columns]
        skip = {"loan_id", "rate", "grade", *components}
        details_cols = [c for c in priced.columns if c not in skip]
        records = priced.to_dict("records")
        results = []
        for i, (a, rec) in enumerate(zip(apps, records)):
            details = {("pd_priced" if c == "pd" else c): _plain(rec[c]) for c in details_cols}
            results.append({"id": a.id, "pd": float(pd_model[i]), "grade": str(rec.get("grade", "")),
                            "rate": float(rec["rate"]),
                            "components": {c: float(rec[c]) for c in components},
                            "details": details, "warnings": warnings[i]})
        return _json({"model": self.model_id, "results": results})

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
        return {
            "model": self.model_id,
            "model_card": model_card(self.bundle),
            "bundle": {k: man.get(k) for k in ("format", "format_version", "created_utc", "creditmodel_version",
                                               "lightgbm_version", "output")}
                      | {"files": {n: (f or {}).get("sha256") for n, f in (man.get("files") or {}).items()}},
            "features": self.bundle.schema.to_dict().get("features", []),
            "grades": [{"grade": g, "pd_upper": float(u), "assigned_pd": float(a)}
                       for g, u, a in zip(ms.grades, bounds, ms.grade_pds())],
        }


class _FastPath:
    """Pure ASGI middleware answering the service's own paths without FastAPI's routing and request
    objects (a few hundred microseconds per request); every other path goes to FastAPI."""

    def __init__(self, app: Any, *, posts: frozenset[str], gets: dict[str, Reply], reply: Any):
        self.app, self.posts, self.gets, self.reply = app, posts, gets, reply

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            if method == "POST" and path in self.posts:
                status, body = await self.reply(path, scope, receive)
            elif method == "GET" and path in self.gets:
                status, body = self.gets[path]
            else:
                return await self.app(scope, receive, send)
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def create_app(bundle: Any, pricing_config: Any = None, *, max_batch: int = m.MAX_BATCH,
               max_body_bytes: int = MAX_BODY_BYTES, num_threads: int = 1, fast_path: bool = True) -> FastAPI:
    """The FastAPI application serving `bundle` (a loaded, verified PDBundle).

    fast_path: answer the API's paths in a pure ASGI middleware (same handlers, same responses),
    skipping FastAPI's per-request routing; False leaves everything to FastAPI's routes.
    """
    svc = ScoringService(bundle, pricing_config, max_batch=max_batch, num_threads=num_threads)
    info = svc.info()
    info_bytes = json.dumps(info, separators=(",", ":"), allow_nan=False).encode()
    health_bytes = json.dumps({"status": "ok", "model": svc.model_id, "features": len(svc.names)}).encode()
    app = FastAPI(
        title="creditmodel scoring service",
        version=__version__,
        description=("Calibrated 12-month PDs, master-scale grades, reason codes and risk-covering prices "
                     f"from the export bundle of model {svc.model_id} ({len(svc.names)} features)."),
    )
    app.state.service = svc

    def body_of(model: type) -> dict[str, Any]:
        return {"requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}

    errors = {413: {"description": "request body too large"},
              422: {"model": m.ErrorResponse, "description": "the request does not match the bundle's schema"}}
    posts = {"/v1/score": (svc.score, svc.models.score_request.model_validate_json),
             "/v1/price": (svc.price, svc.models.price_request.model_validate_json)}
    gets = {"/v1/model": (200, info_bytes), "/health": (200, health_bytes)}

    async def reply(path: str, scope: dict[str, Any], receive: Any) -> Reply:
        fn, parse = posts[path]
        try:
            body = await _read_body(scope, receive, max_body_bytes)
        except _TooLarge:
            return _json({"detail": [{"loc": ["body"], "msg": f"request body over {max_body_bytes} bytes",
                                      "type": "too_large"}]}, 413)
        try:
            req = parse(body)
        except ValidationError as exc:
            return _validation_errors(_locate_number_out_of_range(exc, body, parse))
        if len(req.applications) > THREADPOOL_ROWS:
            return await run_in_threadpool(fn, req)
        return fn(req)

    # The routes document the API (OpenAPI, /docs) and answer when the fast path is off; with it on
    # (the default), the middleware below answers these four paths before FastAPI's routing.
    @app.post("/v1/score", summary="PD, grade and reason codes of one or many applications",
              responses={200: {"model": m.ScoreResponse}, **errors},
              openapi_extra=body_of(svc.models.score_request))
    async def score(request: Request) -> Response:
        status, body = await reply("/v1/score", request.scope, request.receive)
        return Response(body, status_code=status, media_type="application/json")

    @app.post("/v1/price", summary="PD, grade and risk-covering rate with its decomposition",
              responses={200: {"model": m.PriceResponse}, **errors},
              openapi_extra=body_of(svc.models.price_request))
    async def price(request: Request) -> Response:
        status, body = await reply("/v1/price", request.scope, request.receive)
        return Response(body, status_code=status, media_type="application/json")

    @app.get("/v1/model", summary="model card, feature schema and master scale",
             responses={200: {"model": m.ModelInfo}})
    async def model() -> Response:
        return Response(info_bytes, media_type="application/json")

    @app.get("/health", summary="liveness", responses={200: {"model": m.Health}})
    async def health() -> Response:
        return Response(health_bytes, media_type="application/json")

    if fast_path:
        app.add_middleware(_FastPath, posts=frozenset(posts), gets=gets, reply=reply)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            comps = schema.setdefault("components", {}).setdefault("schemas", {})
            for model_ in (svc.models.score_request, svc.models.price_request):
                js = model_.model_json_schema(ref_template="#/components/schemas/{model}")
                comps.update(js.pop("$defs", {}))
                comps[model_.__name__] = js
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


ENV_BUNDLE = "CREDITMODEL_SERVE_BUNDLE"
ENV_CONFIG = "CREDITMODEL_SERVE_CONFIG"
ENV_ALLOW_UNSIGNED = "CREDITMODEL_SERVE_ALLOW_UNSIGNED"  # "1" when `serve --allow-unsigned` (development only)


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers: the bundle from $CREDITMODEL_SERVE_BUNDLE, pricing from $CREDITMODEL_SERVE_CONFIG."""
    from creditmodel.config import load_config
    from creditmodel.export.bundle import load_bundle

    # trusted keys from $CREDITMODEL_TRUSTED_KEYS, which serve() sets for its workers
    bundle = load_bundle(os.environ[ENV_BUNDLE], allow_unsigned=os.environ.get(ENV_ALLOW_UNSIGNED) == "1")
    config = os.environ.get(ENV_CONFIG) or None
    return create_app(bundle, load_config(config).pricing)


def serve(app: FastAPI, bundle_dir: str | os.PathLike, config_path: str | os.PathLike | None = None, *,
          host: str = "127.0.0.1", port: int = 8000, workers: int = 1, log_level: str = "info",
          access_log: bool = False, trusted_keys: Sequence[str | os.PathLike] | None = None,
          allow_unsigned: bool = False) -> None:
    """Run the service with uvicorn until interrupted: `app` itself with one worker; with more, each
    worker process builds its own app from `bundle_dir` and `config_path` (see app_from_env),
    verifying the bundle with `trusted_keys` (public key files) or `allow_unsigned`."""
    import socket

    import uvicorn

    options: dict[str, Any] = dict(host=host, port=port, log_level=log_level, access_log=access_log,
                                   timeout_keep_alive=30, backlog=2048)
    if workers == 1:
        uvicorn.run(app, **options)
        return
    from uvicorn.supervisors import Multiprocess

    os.environ[ENV_BUNDLE] = str(Path(bundle_dir).resolve())
    os.environ[ENV_CONFIG] = str(Path(config_path).resolve()) if config_path else ""
    if trusted_keys is not None:
        from creditmodel.export.signing import ENV_TRUSTED_KEYS

        os.environ[ENV_TRUSTED_KEYS] = os.pathsep.join(str(Path(k).resolve()) for k in trusted_keys)
    os.environ[ENV_ALLOW_UNSIGNED] = "1" if allow_unsigned else ""
    config = uvicorn.Config("creditmodel.service.app:app_from_env", factory=True, workers=workers, **options)
    sock = config.bind_socket()
    # uvicorn makes this socket with protocol 0, so asyncio does not set TCP_NODELAY on the connections
    # the workers accept, and each response then waits ~40 ms (Nagle + delayed ACK). Accepted sockets
    # inherit the option from the listening one.
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
