"""Reason codes from SHAP values: LightGBM's own TreeSHAP call, the ranking of adverse factors and their text.

Beside the feature schema because a reason is a feature's text with its value: validation
(``creditmodel.validation.explain``) and scoring (``creditmodel.service.scoring``) both use these
functions, and the scoring path stays free of plotting and statistics packages.

* :func:`pred_contrib_values`: LightGBM's exact TreeSHAP, ``booster.predict(X, pred_contrib=True)``, in
  log-odds (margin) space; base value + row sum = ``booster.predict(X, raw_score=True)``; the reference
  (and the fallback) of the tabulated TreeSHAP that scoring and validation use
  (``creditmodel.models.treeshap.shap_values``);
* :func:`top_adverse`: per row the ``n`` features with the largest positive (PD-raising) SHAP value,
  largest first, ties in column order; a row with fewer positive values gets fewer reasons;
* :func:`reason_text`: the catalogue's reason with the value as a loan officer reads it
  ("<reason>: <value>", :func:`format_value`), in English or Simplified Chinese (``lang``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from creditmodel.features.catalogue import BY_NAME
from creditmodel.texts import template, text

__all__ = ["format_value", "pred_contrib_values", "reason_formatter", "reason_text", "top_adverse",
           "top_adverse_matrix", "value_formatter"]

FEW_ROWS = 4  # top_adverse sorts this many rows whole (the order of its argmax passes: both keep ties in column order)


def pred_contrib_values(booster: Any, encoded: np.ndarray, *, num_threads: int | None = None) -> tuple[np.ndarray, float]:
    """Exact TreeSHAP of a binary LightGBM booster on an encoded matrix: (values (n, k), base value).

    ``pred_contrib`` returns k + 1 columns per row; the last one is the expected value of the margin
    (the same on every row), the others the features' contributions. `num_threads`: LightGBM's
    per-call thread count (None: the booster's own setting).
    """
    encoded = np.asarray(encoded, dtype=np.float64)
    options = {} if num_threads is None else {"num_threads": num_threads}
    if len(encoded) == 0:  # LightGBM refuses empty input; the base value does not depend on the row
        base = float(booster.predict(np.full((1, encoded.shape[1]), np.nan), pred_contrib=True, **options)[0, -1])
        return np.empty((0, encoded.shape[1])), base
    contrib = np.asarray(booster.predict(encoded, pred_contrib=True, **options), dtype=np.float64)
    if contrib.shape != (len(encoded), encoded.shape[1] + 1):
        raise ValueError(f"pred_contrib returned shape {contrib.shape}; a binary model gives "
                         f"{(len(encoded), encoded.shape[1] + 1)}")
    return contrib[:, :-1], float(contrib[0, -1])


def top_adverse(values: np.ndarray, n: int) -> list[list[int]]:
    """Per row of a SHAP matrix, the column indices of its `n` largest positive values, largest first
    (ties keep column order); only values > 0 are adverse, so a row may get fewer than `n`."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or not len(values):
        return [[] for _ in range(len(values))]
    k = min(n, values.shape[1])
    if k == 0:
        return [[] for _ in range(len(values))]
    if len(values) <= FEW_ROWS:  # a request's row or two: one stable sort costs less than the steps below
        order = np.argsort(-values, axis=1, kind="mergesort")[:, :k]
        keep = np.take_along_axis(values, order, axis=1) > 0
        return [o[m].tolist() for o, m in zip(order, keep)]
    order, adverse = top_adverse_matrix(values, k)
    return [o[m].tolist() for o, m in zip(order, adverse)]


def top_adverse_matrix(values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_adverse` as two (rows, min(n, columns)) arrays: the column indices, largest first, and
    whether each is adverse (> 0); a row's adverse ones come first, so its reasons are a prefix."""
    values = np.asarray(values, dtype=np.float64)
    k = min(n, values.shape[1]) if values.ndim == 2 else 0
    order = np.zeros((len(values), k), dtype=np.intp)
    adverse = np.zeros((len(values), k), dtype=bool)
    if not len(values) or k == 0:
        return order, adverse
    # k passes of argmax over the adverse values (the rest, NaN too, at -inf): argmax takes the first of
    # equal values, so ties keep column order as a stable sort of the whole row does, at a fraction of
    # a sort's or a partition's cost on many rows
    with np.errstate(invalid="ignore"):
        work = np.where(values > 0, values, -np.inf)
    rows = np.arange(len(values))
    for t in range(k):
        j = np.argmax(work, axis=1)
        order[:, t] = j
        adverse[:, t] = work[rows, j] > 0
        work[rows, j] = -np.inf
    return order, adverse


def format_value(name: str, value: object, lang: str = "en",
                 labels: Mapping[str, Mapping[str, str]] | None = None, currency: str | None = None) -> str:
    """A feature value as a loan officer reads it, in `lang` ("CNY 12,000" / "12,000 元", "35%",
    "not available" / "无数据"); a category reads as the data dictionary's label in Chinese: from
    `labels` (the feature's, value -> {lang: text}, as a bundle's schema carries the run's dictionary's),
    else from the shipped dictionary. An amount reads in `currency` (the run's dictionary's, e.g. "USD"; None:
    CNY, the shipped one's)."""
    return value_formatter(name, lang, labels, currency)(value)


def value_formatter(name: str, lang: str = "en", labels: Mapping[str, Mapping[str, str]] | None = None,
                    currency: str | None = None) -> Callable[[object], str]:
    """:func:`format_value` of feature `name` in `lang` as a function of the value: the feature's format and
    the language's templates looked up once, for a batch that writes many values of one feature."""
    missing = text("value.not_available", lang)
    fmt = BY_NAME[name].fmt if name in BY_NAME else "float"

    def category(value: object) -> str:
        if lang != "en":
            label = (labels.get(str(value), {}).get(lang) or None) if labels is not None else \
                _category_label(name, str(value), lang)
            if label is not None:
                return label
        return str(value).replace("_", " ")

    number: Callable[[float], str]
    if fmt == "pct":
        number = "{:.0%}".format
    elif fmt == "cny" and currency not in (None, "CNY"):
        number = _template("value.money", lang, currency=currency)
    elif fmt in ("cny", "days", "months", "years"):
        number = _template(f"value.{fmt}", lang)
    elif fmt == "int":
        number = "{:,.0f}".format
    elif fmt == "flag":
        yes, no = text("value.yes", lang), text("value.no", lang)

        def number(v: float) -> str:
            return yes if v >= 0.5 else no
    else:
        number = "{:.2f}".format

    def formatted(value: object) -> str:
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return missing
        if fmt == "cat" or isinstance(value, str):
            return category(value)
        return number(float(value))  # type: ignore[arg-type]
    return formatted


def _template(id_: str, lang: str, **fields: Any) -> Callable[[float], str]:
    """``text(id_, lang, v=v, **fields)`` as a function of ``v``."""
    write = template(id_, lang, **fields)
    return lambda v: write(v=v)


def _category_label(name: str, value: str, lang: str) -> str | None:
    """The data dictionary's label of a category value (the feature named as its vocabulary), or None."""
    from creditmodel.data.dictionary import default_dictionary

    labels = default_dictionary().labels.get(name, {}).get(value, {})
    return labels.get(lang) or None


def reason_text(name: str, value: object, lang: str = "en", *, reason: str | None = None,
                labels: Mapping[str, Mapping[str, str]] | None = None, currency: str | None = None) -> str:
    """The catalogue's reason for a feature with the value behind it: "<reason>: <value>" ("<原因>：<值>" in
    Chinese). `reason`: the text to use instead of the catalogue's (e.g. a bundle's own attribute's);
    `labels` and `currency`: the feature's value labels and the amounts' currency (see :func:`format_value`)."""
    return reason_formatter(name, lang, reason=reason, labels=labels, currency=currency)(value)


def reason_formatter(name: str, lang: str = "en", *, reason: str | None = None,
                     labels: Mapping[str, Mapping[str, str]] | None = None,
                     currency: str | None = None) -> Callable[[object], str]:
    """:func:`reason_text` of feature `name` in `lang` as a function of the value: the reason, the value's
    format and the templates looked up once (a batch's reasons are many values of few features)."""
    if reason is None:
        f = BY_NAME.get(name)
        if f is None:
            reason = name
        elif lang == "zh":
            reason = f.reason_zh or f.label_zh or f.reason or f.label
        else:
            reason = f.reason or f.label
    value = value_formatter(name, lang, labels, currency)
    # the text around the value, written once: kept only when it is what the template writes for any value
    head, mark, tail = text("reason.with_value", lang, reason=reason, value=_MARK).partition(_MARK)
    if mark and _MARK not in head + tail and text("reason.with_value", lang, reason=reason, value="{0}") == \
            f"{head}{{0}}{tail}":
        return lambda v: f"{head}{value(v)}{tail}"
    return lambda v: text("reason.with_value", lang, reason=reason, value=value(v))


_MARK = "\x00value\x00"
