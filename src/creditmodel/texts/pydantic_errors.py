"""A value pydantic refused, as a text of the message catalogue: what a configuration file, a mapping file and a
scoring request say of it, in Chinese as in English.

pydantic words its errors in English. The catalogue says each error type (``error.input.<type>``, or a text of
the caller's) from the error's context in every language; a value error raised with a catalogue text (a
``Texted`` error of one of the kit's validators) says that text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from creditmodel.exceptions import Texted
from creditmodel.texts import LANGS, Phrase, either, has_text, text

_POSITION = re.compile(r"line (\d+) column (\d+)")


def input_fields(kind: str, ctx: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a text of pydantic's error type `kind` from the error's context: numbers as pydantic writes
    them (1, not 1.0), a literal's alternatives joined the way of each language, a JSON error's line and column;
    an ``error`` that is an exception (a validator's) is no field."""
    fields: dict[str, Any] = {k: (int(v) if isinstance(v, float) and v.is_integer() and abs(v) < 1e18 else v)
                              for k, v in ctx.items() if k != "error" or isinstance(v, str)}
    expected = fields.get("expected")
    if kind == "literal_error" and isinstance(expected, str):  # "'a', 'b' or 'c'"
        head, _, last = expected.rpartition(" or ")
        fields["expected"] = either(head.split(", ") if head else [], last)
    where = _POSITION.search(str(ctx.get("error", "")))
    if where:
        fields["line"], fields["column"] = int(where.group(1)), int(where.group(2))
    return fields


def _fills(id_: str, fields: Mapping[str, Any]) -> bool:
    """Whether the text `id_` exists and takes `fields` in every language."""
    if not has_text(id_):
        return False
    try:
        for lang in LANGS:
            text(id_, lang, **fields)
    except (KeyError, IndexError, ValueError):  # a context this pydantic gives differently
        return False
    return True


def pydantic_phrase(err: Mapping[str, Any], ids: Sequence[str] = (), *, exact: bool = True) -> Phrase | None:
    """One pydantic error (an item of ``ValidationError.errors()``) as a catalogue text, None when none says it.

    A value error says the text its validator raised; any other error the first of `ids`, then
    ``error.input.<type>``, that the catalogue has for the error's context. exact: only a text whose English is
    pydantic's message word for word (so the other languages say the same thing); else a text of the error's
    type, whose English may word it otherwise (the caller keeps pydantic's English beside it)."""
    kind = str(err.get("type", ""))
    ctx = err.get("ctx") or {}
    english = str(err.get("msg", ""))
    if kind == "value_error":
        cause = ctx.get("error")
        if not isinstance(cause, Texted) or cause.text_id is None:
            return None
        return Phrase(cause.text_id, cause.fields) if not exact or english.removeprefix(
            "Value error, ") == str(cause) else None
    fields = input_fields(kind, ctx)
    for id_ in (*ids, f"error.input.{kind}"):
        if _fills(id_, fields) and (not exact or text(id_, "en", **fields) == english):
            return Phrase(id_, fields)
    return None
