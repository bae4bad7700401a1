"""Every text a person reads, in Simplified Chinese and English, from one message catalogue.

``en.toml`` and ``zh.toml`` hold the same ids (dotted keys, e.g. ``price.summary``), and so do the texts kept
apart beside them, ``<part>.en.toml`` and ``<part>.zh.toml`` (the command line's ``help``, a run's
``progress``), and the error messages of each part of the kit in ``errors/``; a text is a
``str.format`` template whose fields the caller fills: ``text("price.summary", "zh", n=12, ...)``.
The catalogues are read once. The language comes from ``--lang`` or the configuration's ``lang``;
an unknown language or id is a ConfigError naming it (one line). This module sits below every
stage, so data, features, models, validation, export, pricing and the service all read from here.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Callable, Sequence
from functools import cache
from importlib import resources
from typing import Any

from creditmodel.exceptions import ConfigError, Texted

LANGS = ("en", "zh")
DEFAULT_LANG = "en"
# CSS fonts of the pages people read (reports, price sheets): Latin families first, then CJK-capable ones a
# reader's machine may have, then its own sans-serif; nothing is downloaded or embedded
FONT_STACK = ('-apple-system, "Segoe UI", Roboto, Helvetica, Arial, "Noto Sans CJK SC", "Noto Sans SC", '
              '"Source Han Sans SC", "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "WenQuanYi Micro Hei", '
              'sans-serif')


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = str(value)
    return out


@cache
def catalogue(lang: str) -> dict[str, str]:
    """All texts of one language, by id: the package's ``<lang>.toml``, each ``<part>.<lang>.toml`` beside it
    (help, progress) and the error messages of each part of the kit in ``errors/<part>.<lang>.toml``
    (read once; an id in two files is a ConfigError naming both)."""
    lang = check_lang(lang)
    root = resources.files(__package__)
    files = [root.joinpath(f"{lang}.toml"),
             *sorted((f for f in root.iterdir() if f.name.endswith(f".{lang}.toml")), key=lambda f: f.name),
             *sorted((f for f in root.joinpath("errors").iterdir() if f.name.endswith(f".{lang}.toml")),
                     key=lambda f: f.name)]
    out: dict[str, str] = {}
    where: dict[str, str] = {}
    for f in files:
        for key, value in _flatten(tomllib.loads(f.read_text(encoding="utf-8"))).items():
            if key in out:
                raise ConfigError(f"text {key!r} is in both {where[key]} and {f.name}; expected one of them")
            out[key], where[key] = value, f.name
    return out


def check_lang(lang: str | None) -> str:
    """`lang` if it is one of LANGS (None gives the default); otherwise a one-line ConfigError."""
    if lang is None:
        return DEFAULT_LANG
    if lang not in LANGS:
        raise ConfigError(f"lang {lang!r}: expected one of {list(LANGS)}")
    return lang


def has_text(id_: str, lang: str = DEFAULT_LANG) -> bool:
    return id_ in catalogue(lang)


def money_unit(currency: str | None, lang: str | None = DEFAULT_LANG) -> str:
    """The currency of amounts as a text of `lang` writes it: 元 in Chinese for CNY, else the code (None: CNY,
    the shipped data dictionary's)."""
    currency = currency or "CNY"
    return "元" if check_lang(lang) == "zh" and currency == "CNY" else currency


class Phrase:
    """A text of the catalogue used as a field of another: written in the language of the text it fills
    (e.g. what a pricing input must be, inside the error that says it was not)."""

    def __init__(self, id_: str, fields: dict[str, Any] | None = None) -> None:
        self.id, self.fields = id_, dict(fields or {})

    def __repr__(self) -> str:
        return f"Phrase({self.id!r}, {self.fields!r})"


def text(id_: str, lang: str | None = DEFAULT_LANG, /, **fields: Any) -> str:
    """The text `id_` in `lang` with `fields` filled in. A template's ``{unit}`` is the currency of its amounts
    as the language writes it, from the field ``currency`` (the data dictionary's; default CNY); a field that
    is a ``Phrase`` is written in `lang` too."""
    written, fields = _prepared(id_, lang, fields)
    return written.format(**fields) if fields else written


def template(id_: str, lang: str | None = DEFAULT_LANG, /, **fields: Any) -> Callable[..., str]:
    """``text(id_, lang, **fields, **more)`` as a function of the fields ``more`` (plain values, not
    Phrases): the catalogue looked up and `fields` prepared once, for a caller that writes one text many times."""
    written, fixed = _prepared(id_, lang, fields)
    return lambda **more: written.format(**fixed, **more)


def _prepared(id_: str, lang: str | None, fields: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The template `id_` of `lang` and `fields` as it is filled: Phrases written, the ``{unit}`` added."""
    texts = catalogue(check_lang(lang))
    if id_ not in texts:
        raise ConfigError(f"text {id_!r} is not in the {lang} message catalogue")
    if any(isinstance(v, Phrase) for v in fields.values()):
        fields = {k: text(v.id, lang, **v.fields) if isinstance(v, Phrase) else v for k, v in fields.items()}
    if "{unit}" in texts[id_]:
        fields = {**fields, "unit": money_unit(fields.get("currency"), lang)}
    return texts[id_], fields


def said(exc: BaseException | Texted) -> Phrase | str:
    """What an exception says, as a field of another text: its catalogue text (said in the language of the text
    it fills) or, if it has none, its own message."""
    if isinstance(exc, Texted) and exc.text_id is not None:
        return Phrase(exc.text_id, exc.fields)
    return str(exc)


def listed(items: Sequence[Any]) -> Any:
    """Items joined as each language lists them ("a, b, c"; "a、b、c"), as a field of another text."""
    joined = items[0]
    for item in items[1:]:
        joined = Phrase("join.list", {"a": joined, "b": item})
    return joined


def either(items: Sequence[Any], last: Any) -> Any:
    """Alternatives as each language says them ("a, b or c"; "a、b 或 c"); no items: `last` alone."""
    return Phrase("join.or", {"a": listed(items), "b": last}) if items else last


def fields_of(template: str) -> set[str]:
    """The placeholder names of a template (the two languages' templates must agree)."""
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name}


def grade_name(grade: str, lang: str | None = DEFAULT_LANG) -> str:
    """The grade's name for people, e.g. "A1 (excellent)"; a grade the catalogue does not know keeps its code
    (grades are the bank's master-scale policy, the catalogue only names the shipped ones)."""
    key = f"grade.{grade}"
    return text(key, lang) if has_text(key, check_lang(lang)) else str(grade)


def column_heading(column: str, lang: str | None = DEFAULT_LANG, currency: str | None = None) -> str:
    """The heading of a price-sheet column, its amounts in `currency` (default CNY); an unknown column keeps
    its name."""
    key = f"column.{column}"
    return text(key, lang, currency=currency) if has_text(key, check_lang(lang)) else column
