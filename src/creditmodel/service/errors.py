"""The items of a refused request's answer, each said in English (``msg``) and Simplified Chinese (``msg_zh``).

An officer's screen shows why an application was refused as the scoring service says it, so the reason
exists in both languages whatever language the request asked for: ``msg`` stays the English (what
clients and logs match on, as FastAPI writes it), ``msg_zh`` is the same in Chinese. The service's own
refusals are texts of the message catalogue (``error.*``); a field pydantic refuses is said in Chinese from
its error type and context (``error.input.*``); a refusal raised deeper (a feature outside its range, a
pricing input) carries its catalogue text (``creditmodel.exceptions.Texted``). Anything else is said in
Chinese as "请求无效：" followed by the English, never dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from creditmodel.exceptions import Texted
from creditmodel.texts import text
from creditmodel.texts.pydantic_errors import pydantic_phrase

Item = dict[str, Any]
MAX_ERRORS = 20  # the items a refusal lists at most (the first ones: 147 missing features say no more than 20)


def item(loc: Sequence[Any], kind: str, text_id: str, /, **fields: Any) -> Item:
    """An error item whose message is the catalogue's text `text_id`, in both languages."""
    return {"loc": list(loc), "msg": text(text_id, "en", **fields), "msg_zh": text(text_id, "zh", **fields),
            "type": kind}


def untranslated(loc: Sequence[Any], kind: str, msg: str) -> Item:
    """An error item of an English message that is no catalogue text."""
    return {"loc": list(loc), "msg": msg, "msg_zh": text("error.untranslated", "zh", msg=msg), "type": kind}


def of_exception(loc: Sequence[Any], kind: str, exc: BaseException) -> Item:
    """An error item of an exception: its catalogue text in both languages when it has one."""
    zh = exc.in_lang("zh") if isinstance(exc, Texted) else None
    return untranslated(loc, kind, str(exc)) if zh is None else {
        "loc": list(loc), "msg": str(exc), "msg_zh": zh, "type": kind}


def of_validation(error: Mapping[str, Any], loc: Sequence[Any]) -> Item:
    """An error item of one pydantic error (``ValidationError.errors()``, its context included) at `loc`: pydantic's
    English, and the Chinese of its error type (``error.input.*``) or of the validator's own text."""
    english = str(error.get("msg", ""))
    kind = str(error.get("type", "value_error"))
    phrase = pydantic_phrase(error, exact=False)
    if phrase is None:
        return untranslated(loc, kind, english)
    return {"loc": list(loc), "msg": english, "msg_zh": text(phrase.id, "zh", **phrase.fields), "type": kind}


def within(items: Iterable[Item], text_id: str, /, **fields: Any) -> list[Item]:
    """The items, each message set inside the catalogue's text `text_id` (its field ``msg``) in its language,
    e.g. "computed from the store as of {d}: {msg}"."""
    return [{**e, "msg": text(text_id, "en", **fields, msg=e["msg"]),
             "msg_zh": text(text_id, "zh", **fields, msg=e["msg_zh"])} for e in items]


def answer(items: Sequence[Item], status: int = 422) -> tuple[int, bytes]:
    """The status and JSON body ``{"detail": items}`` of a refusal (its first MAX_ERRORS items)."""
    return status, json.dumps({"detail": list(items[:MAX_ERRORS])}, separators=(",", ":"), default=str).encode()
