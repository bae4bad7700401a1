"""Scoring from a bundle alone: PDs, grades and reason codes, without pandas on the hot path.

:class:`FastScorer` turns feature dicts (as a JSON request carries them) straight into the float
matrix that ``FeatureSchema.encode`` would build (categories -> their code, null -> NaN, numbers as
float64), scores it with the bundle's booster, calibrator and master scale, and checks the allowed
ranges the bundle's schema declares with one vectorised comparison. Whenever that screen finds a
row out of range, the row goes to ``bundle.check_request`` for the verdict and its message, so the
words of every refusal are the bundle's. At construction the scorer proves on probe rows that its
PDs equal ``bundle.predict_pd`` exactly, so a change to the bundle's encoding cannot go unnoticed.

Reason codes (:func:`reason_codes_from_bundle`, :meth:`FastScorer.reasons`) are LightGBM's exact
TreeSHAP (margin space): per row the ``n`` features with the largest positive (adverse) contribution,
in the catalogue's reason text with the value behind it ("<reason>: <value>"); a row with fewer
adverse features gets fewer reasons. The values come from the booster's tabulated TreeSHAP
(:mod:`creditmodel.models.treeshap`, LightGBM's ``pred_contrib`` values to rounding, the same ranking);
the ranking and the text are :mod:`creditmodel.features.reasons`, the same functions validation uses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas import DataFrame  # for annotations in FastScorer, whose method pd hides the module there

from creditmodel.exceptions import BundleError, RequestError
from creditmodel.features.reasons import reason_formatter, reason_text, top_adverse, top_adverse_matrix
from creditmodel.models.treeshap import explainer, shap_values

N_REASONS = 3
ENGINE_RTOL = 1e-12  # how far the features of two engines may differ (the parity tests' tolerance)


@dataclass(frozen=True)
class Reason:
    """One adverse factor: the feature, the text a loan officer reads, its value and its SHAP (log-odds)."""

    feature: str
    reason: str
    value: float | str | None
    contribution: float

    def as_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "reason": self.reason, "value": self.value,
                "contribution": self.contribution}


@dataclass(frozen=True)
class FeaturePolicy:
    """What the bundle's schema (and the data dictionary) allow for one feature."""

    name: str
    categories: tuple[str, ...] | None  # None for numeric features
    nullable: bool
    bounds: tuple[float, float] | None  # numeric: allowed [lo, hi]; None = any finite number
    training_range: tuple[float, float] | None = None
    domain_source: str | None = None  # "loans.amount" when the data dictionary narrowed `bounds`


_ALIASES = {"a": "loans", "e": "enterprises"}  # the catalogue's table aliases of the application and borrower
_COLUMN = re.compile(r"^\s*([a-z])\.(\w+)\s*$")
_RATIO = re.compile(r"^\s*([a-z])\.(\w+)\s*/\s*([a-z])\.(\w+)\s*$")


def dictionary_column_bounds(table: str, column: str, tables: Mapping[str, Any] | None = None
                             ) -> tuple[float, float] | None:
    """[min, max] of a numeric column in the data dictionary (the valid domain, not business policy).
    tables: the canonical tables of the bank's dictionary (``schema.resolve_tables``); None: the shipped one's."""
    from creditmodel.data.schema import TABLES

    try:
        col = (TABLES if tables is None else tables)[table].column(column)
    except (KeyError, StopIteration):
        return None
    if col.kind not in ("int", "float") or (col.min_value is None and col.max_value is None):
        return None
    lo = -math.inf if col.min_value is None else float(col.min_value)
    hi = math.inf if col.max_value is None else float(col.max_value)
    return lo, hi


def dictionary_domain(names: Sequence[str], tables: Mapping[str, Any] | None = None
                      ) -> dict[str, tuple[float, float, str]]:
    """Per feature that is a dictionary column as it stands (``a.amount``) or a ratio of two positive ones
    (``a.amount / a.term_months``): its valid range from the data dictionary (``tables``, see
    :func:`dictionary_column_bounds`) and where that comes from."""
    from creditmodel.features.catalogue import BY_NAME

    out: dict[str, tuple[float, float, str]] = {}
    for name in names:
        f = BY_NAME.get(name)
        if f is None or f.is_categorical:
            continue
        plain, ratio = _COLUMN.match(f.sql), _RATIO.match(f.sql)
        if plain and plain.group(1) in _ALIASES:
            table = _ALIASES[plain.group(1)]
            b = dictionary_column_bounds(table, plain.group(2), tables)
            if b is not None:
                out[name] = (b[0], b[1], f"{table}.{plain.group(2)}")
        elif ratio and ratio.group(1) in _ALIASES and ratio.group(3) in _ALIASES:
            t1, t2 = _ALIASES[ratio.group(1)], _ALIASES[ratio.group(3)]
            num = dictionary_column_bounds(t1, ratio.group(2), tables)
            den = dictionary_column_bounds(t2, ratio.group(4), tables)
            if num is not None and den is not None and num[0] >= 0 and den[0] > 0:
                out[name] = (num[0] / den[1], num[1] / den[0], f"{t1}.{ratio.group(2)} / {t2}.{ratio.group(4)}")
    return out


def feature_policies(schema: Any, *, dictionary: bool = False,
                     tables: Mapping[str, Any] | None = None) -> list[FeaturePolicy]:
    """The schema's per-feature policy, read defensively (older schemas carry categories only).

    dictionary: narrow each feature's allowed range to the data dictionary's valid domain where the
    feature is a dictionary column or a ratio of two (a bundle may allow [-1e15, 1e15] for a loan amount);
    tables: that dictionary's canonical tables (None: the shipped dictionary's).
    """
    bounds = getattr(schema, "bounds", None)
    default = None
    if bounds is not None:  # a schema with ranges: numeric features it does not list get the schema's default
        try:
            from creditmodel.features.matrix import ABSURD

            default = (-ABSURD, ABSURD)
        except ImportError:
            pass
    bounds = bounds or {}
    required = getattr(schema, "required", None) or frozenset()
    observed = getattr(schema, "observed", None) or {}
    domain = dictionary_domain(schema.names, tables) if dictionary else {}
    out = []
    for name in schema.names:
        cats = schema.categories.get(name)
        b = bounds.get(name, default) if cats is None else None
        source = None
        if cats is None and name in domain:
            lo, hi, where = domain[name]
            blo, bhi = (float(b[0]), float(b[1])) if b is not None else (-math.inf, math.inf)
            if lo > blo or hi < bhi:
                b, source = (max(lo, blo), min(hi, bhi)), where
        out.append(FeaturePolicy(
            name=name,
            categories=tuple(cats) if cats is not None else None,
            nullable=name not in required,
            bounds=(float(b[0]), float(b[1])) if b is not None else None,
            training_range=(float(observed[name][0]), float(observed[name][1])) if name in observed else None,
            domain_source=source,
        ))
    return out


class FastScorer:
    """Scores rows of a loaded :class:`~creditmodel.export.bundle.PDBundle` from plain dicts or matrices.

    ``num_threads`` is LightGBM's per-call thread count: 1 suits a request (OpenMP start-up costs
    more than one row of trees), 0 means all cores (batch).
    """

    def __init__(self, bundle: Any, *, num_threads: int = 1, self_check: bool = True, dictionary: bool = False,
                 tables: Mapping[str, Any] | None = None):
        self.bundle = bundle
        self.schema = bundle.schema
        self.names: tuple[str, ...] = tuple(bundle.schema.names)
        self.policies = feature_policies(bundle.schema, dictionary=dictionary, tables=tables)
        self.num_threads = num_threads
        self._codes = [(j, {c: float(i) for i, c in enumerate(p.categories)})
                       for j, p in enumerate(self.policies) if p.categories is not None]
        self._categories = {j: p.categories for j, p in enumerate(self.policies) if p.categories is not None}
        # the run's dictionary's labels of category values, as the bundle carries them (older bundles: none,
        # and the shipped dictionary's labels are used)
        self._labels: dict[str, Any] = dict(getattr(bundle.schema, "labels", None) or {})
        # the currency of the run's dictionary, which its amounts read in (the model card's; else CNY)
        self._currency: str | None = getattr(bundle, "currency", None)
        bounded = [(j, p.bounds) for j, p in enumerate(self.policies) if p.bounds is not None]
        self._bounded_idx = np.array([j for j, _ in bounded], dtype=np.intp)
        self._lo = np.array([b[0] for _, b in bounded], dtype=np.float64)
        self._hi = np.array([b[1] for _, b in bounded], dtype=np.float64)
        trained = [(j, p.training_range) for j, p in enumerate(self.policies)
                   if p.training_range is not None and p.categories is None]
        self._trained_idx = np.array([j for j, _ in trained], dtype=np.intp)
        # a feature computed by another engine (DuckDB, SQLite, PostgreSQL, Spark) equals the training matrix's to
        # the parity tolerance, not to the last bit: a value that far beyond an end of the range is the value seen
        lo_seen = np.array([r[0] for _, r in trained], dtype=np.float64)
        hi_seen = np.array([r[1] for _, r in trained], dtype=np.float64)
        self._train_lo = lo_seen - ENGINE_RTOL * np.abs(lo_seen)
        self._train_hi = hi_seen + ENGINE_RTOL * np.abs(hi_seen)
        # the same bounds over every column (+-inf where there is none): one comparison of the whole matrix,
        # without gathering the bounded columns first (a request's row spent more on the gather than the test)
        k = len(self.names)
        self._lo_all, self._hi_all = np.full(k, -np.inf), np.full(k, np.inf)
        self._lo_all[self._bounded_idx], self._hi_all[self._bounded_idx] = self._lo, self._hi
        self._train_lo_all, self._train_hi_all = np.full(k, -np.inf), np.full(k, np.inf)
        self._train_lo_all[self._trained_idx], self._train_hi_all[self._trained_idx] = self._train_lo, self._train_hi
        self._grader: Any = None
        self._own_reasons: dict[tuple[str, str], str | None] = {}  # the schema's reason texts, looked up once
        explainer(bundle.booster)  # the reasons' tables, built once per booster (at start-up in the service)
        if self_check:
            self.check_parity()

    # --- encoding and scoring ----------------------------------------------------------------

    def encode_rows(self, rows: Sequence[Mapping[str, Any]], keys: Sequence[str] | None = None) -> np.ndarray:
        """Float matrix of feature dicts in schema order, as FeatureSchema.encode makes it.

        Rows must hold every feature (already validated): numbers (or None) for numeric features,
        a known category (or None) for categorical ones. `keys` are the dict keys of the features in
        schema order when they are not the feature names themselves.
        """
        names = self.names
        keys = names if keys is None else keys
        table = [[row[k] for k in keys] for row in rows]
        for j, codes in self._codes:
            for vals in table:
                vals[j] = codes.get(vals[j], math.nan)
        return np.array(table, dtype=np.float64).reshape(len(table), len(names))

    def out_of_range(self, X: np.ndarray) -> np.ndarray:
        """Row indices with a value outside its feature's allowed range (NaN is not out of range)."""
        if not len(self._bounded_idx) or not len(X):
            return np.empty(0, dtype=np.intp)
        with np.errstate(invalid="ignore"):
            bad = (X < self._lo_all) | (X > self._hi_all)
        return np.flatnonzero(bad.any(axis=1))

    def outside_training(self, X: np.ndarray) -> list[list[str]]:
        """Per row, the features whose value lies outside the range seen in training (NaN never does)."""
        if not len(self._trained_idx) or not len(X):
            return [[] for _ in range(len(X))]
        with np.errstate(invalid="ignore"):
            bad = (X < self._train_lo_all) | (X > self._train_hi_all)
        out: list[list[str]] = [[] for _ in range(len(X))]
        for i, j in zip(*np.nonzero(bad)):  # row by row, columns in schema order as before
            out[int(i)].append(self.names[int(j)])
        return out

    def raw_score(self, X: np.ndarray) -> np.ndarray:
        margin = getattr(self.bundle, "margin", None)  # the bundle's compiled trees when it uses them
        if margin is not None:
            return margin(X, self.num_threads)
        return self.bundle.booster.predict(X, raw_score=True, num_threads=self.num_threads)

    def pd(self, X: np.ndarray) -> np.ndarray:
        """Calibrated PDs of an encoded matrix: identical to bundle.predict_pd on the same rows."""
        if not len(X):
            return np.empty(0, dtype=np.float64)
        return self.bundle.calibrator.predict(self.raw_score(X))

    def grade(self, pd_: np.ndarray) -> np.ndarray:
        """Grade names of PDs, as bundle.grade gives them (the bundle's master scale checked once)."""
        if self._grader is None:
            scale = getattr(self.bundle, "master_scale", None)
            grader = getattr(scale, "grader", None)
            self._grader = grader() if grader is not None else self.bundle.grade
        return self._grader(pd_)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """TreeSHAP per feature (n, k) in margin space; the base value column is dropped."""
        return shap_values(self.bundle.booster, X, num_threads=self.num_threads)[0]

    def decoded(self, X: np.ndarray, i: int, j: int) -> float | str | None:
        """The feature value behind cell (i, j) of an encoded matrix, as the request gave it."""
        return self._value(j, float(X[i, j]))

    def _value(self, j: int, v: float) -> float | str | None:
        """Feature ``j``'s encoded value as the request gave it: None for NaN, a category's name, else the number."""
        if math.isnan(v):
            return None
        cats = self._categories.get(j)
        return cats[int(v)] if cats is not None else v

    def reasons(self, X: np.ndarray, n: int = N_REASONS, lang: str = "en") -> list[list[Reason]]:
        """Top-n adverse factors of each row of an encoded matrix, their texts in `lang` ("en" or "zh")."""
        if not len(X):
            return []
        values = self.contributions(X)
        out = []
        for i, adverse in enumerate(top_adverse(values, n)):
            row = []
            for j in adverse:
                value = self.decoded(X, i, j)
                name = self.names[j]
                text = reason_text(name, value, lang, reason=self._reason(name, lang), labels=self._labels.get(name),
                                   currency=self._currency)
                row.append(Reason(name, text, value, float(values[i, j])))
            out.append(row)
        return out

    def reason_columns(self, X: np.ndarray, n: int = N_REASONS, lang: str = "en", also: Sequence[str] = ()) -> DataFrame:
        """:func:`reasons_frame` of :meth:`reasons`, the same frame, built a column at a time: each
        feature's texts are written once per distinct value (what a batch of many rows spends its time on).
        ``also``: more languages, whose texts of the same reasons are the columns ``reason_<k>_<lang>``."""
        values = self.contributions(X) if len(X) else np.empty((0, len(self.names)))
        order, adverse = top_adverse_matrix(values, n)
        names = np.array(self.names, dtype=object)
        cols: dict[str, Any] = {}
        writers: dict[tuple[int, str], Callable[[object], str]] = {}  # a feature's reason text, set up once per call
        for k in range(n):
            texts = {x: np.full(len(X), None, dtype=object) for x in (lang, *also)}
            feats = np.full(len(X), None, dtype=object)
            shaps = np.full(len(X), np.nan)
            if k < order.shape[1]:
                at = np.flatnonzero(adverse[:, k])
                j = order[at, k]
                feats[at] = names[j]
                shaps[at] = values[at, j]
                by = np.argsort(j, kind="stable")
                starts = np.flatnonzero(np.r_[True, j[by][1:] != j[by][:-1]]) if len(by) else by
                for a, b in zip(starts, [*starts[1:], len(by)]):
                    i = at[by[a:b]]
                    col = int(j[by[a]])
                    for x, said in texts.items():
                        said[i] = self._texts(col, X[i, col], x, writers)
            cols[f"reason_{k + 1}"], cols[f"reason_{k + 1}_feature"], cols[f"reason_{k + 1}_shap"] = \
                texts[lang], feats, shaps
            cols.update({f"reason_{k + 1}_{x}": texts[x] for x in also})
        # the texts and names as objects, as reasons_frame's: each column says so when made, as inferring
        # strings and casting them back costs more than the rest of a large batch's frame
        return pd.DataFrame({c: pd.Series(v, dtype=np.float64 if c.endswith("_shap") else object, copy=False)
                             for c, v in cols.items()}, index=pd.RangeIndex(len(X)))

    def _texts(self, j: int, encoded: np.ndarray, lang: str,
               writers: dict[tuple[int, str], Callable[[object], str]] | None = None) -> np.ndarray:
        """The reason texts of feature ``j`` with each of its encoded values, each distinct value written once
        (distinct as bits: -0.0 reads differently from 0.0); ``writers``: the features' text writers so far."""
        writers = {} if writers is None else writers
        if (j, lang) not in writers:
            name = self.names[j]
            writers[j, lang] = reason_formatter(name, lang, reason=self._reason(name, lang),
                                                labels=self._labels.get(name), currency=self._currency)
        write = writers[j, lang]
        encoded = np.ascontiguousarray(encoded, dtype=np.float64)
        distinct, first, back = np.unique(encoded.view(np.int64), return_index=True, return_inverse=True)
        said = np.empty(len(distinct), dtype=object)
        for u, v in enumerate(encoded[first].tolist()):
            said[u] = write(self._value(j, v))
        return said[back.reshape(-1)]

    def _reason(self, name: str, lang: str) -> str | None:
        """The bundle schema's reason text of a feature (its own attributes included), None: the catalogue's;
        looked up once per feature and language."""
        if (name, lang) not in self._own_reasons:
            schema_reason = getattr(self.bundle.schema, "reason", None)
            self._own_reasons[name, lang] = schema_reason(name, lang) if schema_reason is not None else None
        return self._own_reasons[name, lang]

    # --- the bundle as judge ---------------------------------------------------------------

    def bundle_verdict(self, row: Mapping[str, Any]) -> RequestError | None:
        """bundle.check_request on one row: its RequestError, or None when the bundle accepts the row."""
        frame = pd.DataFrame([{n: row.get(n) for n in self.names}], columns=list(self.names))
        try:
            self.bundle.check_request(frame)
        except RequestError as exc:
            return exc
        return None

    def probe_rows(self) -> list[dict[str, Any]]:
        """A few valid rows spanning each feature's range, categories and nulls (for the parity check)."""
        rows = []
        for r in range(4):
            row: dict[str, Any] = {}
            for j, p in enumerate(self.policies):
                if p.categories is not None:
                    row[p.name] = None if (r == 3 and p.nullable) else p.categories[(r + j) % len(p.categories)]
                    continue
                if r == 3 and p.nullable:
                    row[p.name] = None
                    continue
                lo, hi = p.training_range or p.bounds or (0.0, 1.0)
                if p.bounds is not None:
                    lo, hi = max(lo, p.bounds[0]), min(hi, p.bounds[1])
                    if lo > hi:
                        lo, hi = p.bounds
                    lo, hi = max(lo, -1e12), min(hi, 1e12)
                row[p.name] = float(lo + (hi - lo) * (0.0, 0.5, 1.0)[r % 3])
            rows.append(row)
        return rows

    def check_parity(self) -> None:
        """Raise BundleError unless the fast path scores the probe rows exactly as bundle.predict_pd does."""
        rows = self.probe_rows()
        frame = pd.DataFrame(rows, columns=list(self.names))
        try:
            expected = np.asarray(self.bundle.predict_pd(frame), dtype=np.float64)
        except RequestError:  # the bundle refuses a probe row: check the rows it accepts one by one
            ok = [r for r in rows if self.bundle_verdict(r) is None]
            if not ok:
                return
            rows, frame = ok, pd.DataFrame(ok, columns=list(self.names))
            expected = np.asarray(self.bundle.predict_pd(frame), dtype=np.float64)
        got = self.pd(self.encode_rows(rows))
        if not np.array_equal(got, expected):
            gap = float(np.max(np.abs(got - expected)))
            raise BundleError.of("error.service.encoding_differs", path=getattr(self.bundle, "path", ""), gap=gap)


def reason_codes_from_bundle(bundle: Any, frame: pd.DataFrame, n: int = N_REASONS, *,
                             num_threads: int = 0, lang: str = "en") -> list[list[Reason]]:
    """Per row of `frame` (the bundle's features; extra columns ignored) its top-`n` adverse factors, their
    texts in `lang`.

    The frame is checked by ``bundle.check_request`` and encoded by the bundle's schema, so the
    reasons explain exactly the margin behind ``bundle.predict_pd``.
    """
    bundle.check_request(frame)
    scorer = FastScorer(bundle, num_threads=num_threads, self_check=False)
    return scorer.reasons(bundle.schema.encode(frame), n, lang)


def reasons_frame(reasons: list[list[Reason]], n: int = N_REASONS, index: Any = None) -> pd.DataFrame:
    """Reasons as columns reason_<k> (text), reason_<k>_feature and reason_<k>_shap, k = 1..n (None when absent)."""
    cols: dict[str, list[Any]] = {}
    for k in range(n):
        texts, feats, shaps = [], [], []
        for row in reasons:
            r = row[k] if k < len(row) else None
            texts.append(r.reason if r else None)
            feats.append(r.feature if r else None)
            shaps.append(r.contribution if r else np.nan)
        cols[f"reason_{k + 1}"] = texts
        cols[f"reason_{k + 1}_feature"] = feats
        cols[f"reason_{k + 1}_shap"] = shaps
    out = pd.DataFrame(cols, index=index)
    for k in range(n):
        out[f"reason_{k + 1}"] = out[f"reason_{k + 1}"].astype(object)
        out[f"reason_{k + 1}_feature"] = out[f"reason_{k + 1}_feature"].astype(object)
        out[f"reason_{k + 1}_shap"] = out[f"reason_{k + 1}_shap"].astype(np.float64)
    return out
