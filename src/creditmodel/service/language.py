"""The language of a service answer: the request's ``lang`` (body or query) or its Accept-Language header.

Reason texts, grade names, warnings and referral texts come in Simplified Chinese or English. The
language is, first to last: the body's ``lang`` field, the query's ``?lang=``, the best language of
``Accept-Language`` the service speaks (``zh``, ``zh-CN``, ``zh-Hans``, ... -> zh; ``en-*`` -> en), else
English. A ``lang`` field that names no language the service speaks is bad input (422 naming it); a header
that names none is not: the answer is in English, as HTTP content negotiation expects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any
from urllib.parse import parse_qs

from pydantic import AfterValidator, Strict, WithJsonSchema

from creditmodel.exceptions import TextedValueError
from creditmodel.texts import DEFAULT_LANG, LANGS

__all__ = ["LangField", "from_accept_language", "from_query", "from_scope", "normalise"]

ACCEPTED = "en, zh (also zh-CN, zh-Hans, zh-SG, en-US, en-GB)"


def normalise(tag: str) -> str | None:
    """"zh-CN" -> "zh", "en-GB" -> "en", "ZH" -> "zh"; a language the service does not speak -> None."""
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in LANGS else None


# a language tag whose primary subtag is one the service speaks; the OpenAPI schema says exactly this,
# so that a client (or a schema-driven test) knows which values are accepted
LANG_PATTERN = r"^(?:[eE][nN]|[zZ][hH])(?:[-_][A-Za-z0-9]{1,8})*$"


def _check(value: str) -> str:
    if re.fullmatch(LANG_PATTERN, value) is None:
        raise TextedValueError.of("error.lang", value=value, accepted=ACCEPTED)
    return value[:2].lower()


LangField = Annotated[str, Strict(), AfterValidator(_check),
                      WithJsonSchema({"type": "string", "pattern": LANG_PATTERN, "examples": ["zh", "en", "zh-CN"],
                                      "description": f"language of the texts: {ACCEPTED}"})]


def from_accept_language(header: str | None) -> str | None:
    """The best language of an Accept-Language header that the service speaks (q-values honoured, ties
    in the header's order), or None when it names none (q=0 excludes a language)."""
    if not header:
        return None
    best, best_q = None, 0.0
    for part in header.split(","):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            key, _, value = p.strip().partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        lang = DEFAULT_LANG if tag.strip() == "*" else normalise(tag)
        if lang is not None and q > best_q:
            best, best_q = lang, q
    return best


def from_query(query_string: bytes | str) -> tuple[str | None, ValueError | None]:
    """(language, None) from a query's ``lang`` parameter (None when absent), or (None, the error)."""
    raw = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    values = parse_qs(raw, keep_blank_values=True).get("lang")
    if not values:
        return None, None
    try:
        return _check(values[-1]), None
    except ValueError as exc:
        return None, exc


def from_scope(scope: Mapping[str, Any]) -> tuple[str | None, ValueError | None]:
    """The language an ASGI request asks for (query first, then Accept-Language), or (None, error)."""
    lang, error = from_query(scope.get("query_string", b""))
    if error is not None or lang is not None:
        return lang, error
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers", ())
    for key, value in headers:
        if key == b"accept-language":
            return from_accept_language(value.decode("latin-1")), None
    return None, None
