"""The data dictionary: a bank's vocabularies, valid domains, policy rules and own columns, as data.

The canonical tables' structure (which tables, columns, kinds and keys) is fixed in ``schema.py``;
what the values may be is the bank's: which industries, products and guarantee types exist, the
currency, the valid numeric domain of each column, the business rules that send an application
for referral (``policy.py``) and the bank's own extra columns (attributes). These live in a TOML
file; the seed bank's defaults ship as ``default_dictionary.toml`` and
``creditmodel data dictionary --out FILE`` writes them for a bank to edit.

In a bank's file, a vocabulary or a bound that is not given keeps its default (write
``max = inf`` to lift a bound); ``[[policy]]`` and ``[[attributes]]`` are exactly those given.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, TypeAlias

from creditmodel.exceptions import ConfigError
from creditmodel.outputs import write_atomically
from creditmodel.texts import Phrase

__all__ = [
    "Attribute",
    "PolicyRule",
    "DataDictionary",
    "VOCABULARY_COLUMNS",
    "ATTRIBUTE_TABLES",
    "ATTRIBUTE_KINDS",
    "load_dictionary",
    "parse_dictionary",
    "default_dictionary",
    "default_dictionary_text",
    "dictionary_toml",
    "write_default_dictionary",
    "source_phrase",
]

DEFAULT_FILE = "default_dictionary.toml"
DEFAULT_SOURCE = "the default data dictionary"  # the `source` of the shipped dictionary
# which canonical column takes its values from which vocabulary
VOCABULARY_COLUMNS: dict[str, str] = {
    "enterprises.legal_form": "legal_form",
    "enterprises.industry": "industry",
    "registration_events.kind": "registration_event_kind",
    "transactions.direction": "direction",
    "transactions.channel": "channel",
    "loans.product": "product",
    "loans.guarantee_type": "guarantee_type",
    "collateral.collateral_type": "collateral_type",
    "officers.team": "industry_team",
}
VOCABULARIES = tuple(dict.fromkeys(VOCABULARY_COLUMNS.values()))
# vocabularies whose values the kit's SQL names (inflows and outflows): a bank maps its codes to them, and a
# dictionary that renames them would leave every flow feature empty without a word, so it is refused
FIXED_VOCABULARIES: dict[str, tuple[str, ...]] = {"direction": ("in", "out")}
# vocabularies whose values the kit's SQL names but a bank may extend: the business-register events the
# catalogue counts and the triggers watch; a dictionary without one of them is refused for the same reason
REQUIRED_VALUES: dict[str, tuple[str, ...]] = {
    "registration_event_kind": ("legal_rep_change", "abnormal_listing", "abnormal_removal", "penalty")}
ATTRIBUTE_TABLES = ("loans", "enterprises")
ATTRIBUTE_KINDS = ("numeric", "categorical", "bool")
LANGUAGES = ("en", "zh")
_TOP = ("currency", "large_transaction", "vocabularies", "industry_teams", "labels", "bounds", "policy", "attributes")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Attribute:
    """A bank's own extra column of the loans or enterprises table, kept and validated."""

    table: str  # "loans" or "enterprises" (the application / borrower tables)
    name: str  # column name in the canonical table after mapping
    kind: str  # "numeric" | "categorical" | "bool"
    categories: tuple[str, ...] | None = None
    direction: int = 0  # +1 riskier when higher, -1 riskier when lower, 0 = no declared direction
    min_value: float | None = None
    max_value: float | None = None
    en: str = ""
    zh: str = ""  # label
    reason_en: str = ""
    reason_zh: str = ""  # reason-code text shown to a loan officer


@dataclass(frozen=True)
class PolicyRule:
    """A business rule on one numeric column: outside [min, max] flags the row, never rejects it."""

    name: str
    table: str
    column: str
    min_value: float | None = None
    max_value: float | None = None
    en: str = ""
    zh: str = ""


@dataclass(frozen=True)
class DataDictionary:
    """Vocabularies, labels, valid domains, policy rules and attributes of one bank's data."""

    currency: str
    vocabularies: dict[str, tuple[str, ...]]  # legal_form, industry, ... -> allowed values
    labels: dict[str, dict[str, dict[str, str]]]  # vocabulary -> value -> {"en": ..., "zh": ...}
    bounds: dict[str, tuple[float | None, float | None]]  # "table.column" -> valid domain
    attributes: tuple[Attribute, ...] = ()
    policies: tuple[PolicyRule, ...] = ()
    bound_labels: dict[str, dict[str, str]] = field(default_factory=dict)  # "table.column" -> en/zh
    industry_teams: dict[str, str] = field(default_factory=dict)  # industry -> the team serving it
    large_transaction: float = 50_000.0  # a single transaction of this amount or more is large (the catalogue's)
    source: str = field(default=DEFAULT_SOURCE, compare=False)

    def vocabulary(self, name: str) -> tuple[str, ...]:
        """The allowed values of vocabulary ``name`` (e.g. "industry")."""
        try:
            return self.vocabularies[name]
        except KeyError:
            raise KeyError(f"no vocabulary {name!r} in {self.source}; "
                           f"expected one of {', '.join(self.vocabularies)}") from None

    def attribute(self, table: str, name: str) -> Attribute | None:
        """The declared attribute ``table.name``, or None."""
        return next((a for a in self.attributes if a.table == table and a.name == name), None)

    def attributes_of(self, table: str) -> tuple[Attribute, ...]:
        return tuple(a for a in self.attributes if a.table == table)

    def label(self, vocabulary: str, value: str, language: str = "en") -> str:
        """What a person reads for a value; the value itself when the dictionary gives no label."""
        return self.labels.get(vocabulary, {}).get(value, {}).get(language) or value

    def team_of(self, industry: str) -> str | None:
        """The industry team serving borrowers of ``industry``; None when no team is named for it."""
        return self.industry_teams.get(industry)

    def bound(self, table: str, column: str) -> tuple[float | None, float | None]:
        return self.bounds.get(f"{table}.{column}", (None, None))

    def source_phrase(self) -> Phrase | str:
        """Which dictionary this is, for a text in any language (see `source_phrase`)."""
        return source_phrase(self.source)


def source_phrase(source: str) -> Phrase | str:
    """A dictionary's ``source`` as the field of a catalogue text, said in that text's language: the default
    data dictionary, "data dictionary" (unnamed) or the file (``data dictionary PATH``); a name a caller gave
    (e.g. a file name) is data and stays as it is."""
    if source == DEFAULT_SOURCE:
        return Phrase("error.dictionary.source.default")
    if source == "data dictionary":
        return Phrase("error.dictionary.source.unnamed")
    if source.startswith("data dictionary "):
        return Phrase("error.dictionary.source.file", {"path": source.removeprefix("data dictionary ")})
    return source


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


# where in the file a defect is: a key ("vocabularies.industry") or a place said in words (an attribute, a
# policy rule: a Phrase whose field `key` is the key under it)
Where: TypeAlias = str | Phrase


def _sub(where: Where, key: str) -> Where:
    """The key `key` under `where`."""
    if isinstance(where, Phrase):
        return Phrase(where.id, {**where.fields, "key": f"{where.fields.get('key', '')}.{key}"})
    return f"{where}.{key}"


def _fail(source: str, where: Where, problem: str, **fields: Any) -> ConfigError:
    """The one-line error of a defect of the dictionary `source` at `where`: the text
    ``error.dictionary.problem.<problem>`` filled with `fields`."""
    return ConfigError.of("error.dictionary.invalid", source=source_phrase(source), where=where,
                          problem=Phrase(f"error.dictionary.problem.{problem}", fields))


def _number(source: str, where: Where, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(float(value)):
        raise _fail(source, where, "not_number", value=value)
    return float(value)


def _text(source: str, where: Where, value: Any, *, required: bool = False) -> str:
    if not isinstance(value, str) or (required and not value.strip()):
        raise _fail(source, where, "not_nonempty_text" if required else "not_text", value=value)
    return value


def _keys(source: str, where: Where, table: Any, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
    if not isinstance(table, dict):
        raise _fail(source, where, "not_table", value=table)
    unknown = [k for k in table if k not in allowed]
    if unknown:
        raise _fail(source, where, "unknown_key", key=unknown[0], allowed=", ".join(allowed))
    missing = [k for k in required if k not in table]
    if missing:
        raise _fail(source, where, "missing_key", key=missing[0])
    return table


def _range(source: str, where: Where, spec: dict, lo_key: str = "min", hi_key: str = "max"
           ) -> tuple[float | None, float | None]:
    lo = None if spec.get(lo_key) is None else _number(source, _sub(where, lo_key), spec[lo_key])
    hi = None if spec.get(hi_key) is None else _number(source, _sub(where, hi_key), spec[hi_key])
    if lo is not None and hi is not None and lo > hi:
        raise _fail(source, where, "min_above_max", lo=lo, hi=hi)
    return (None if lo is not None and lo == -math.inf else lo,
            None if hi is not None and hi == math.inf else hi)


def _numeric_columns() -> dict[str, str]:
    """"table.column" -> kind of every numeric canonical column (the columns a bound may name)."""
    from creditmodel.data.schema import STRUCTURE  # schema reads the default dictionary at import

    return {f"{t.name}.{c.name}": c.kind for t in STRUCTURE.values() for c in t.columns
            if c.kind in ("int", "float")}


def _canonical_columns() -> set[str]:
    from creditmodel.data.schema import STRUCTURE

    return {f"{t.name}.{c.name}" for t in STRUCTURE.values() for c in t.columns}


def _vocabularies(source: str, raw: Any, defaults: dict[str, tuple[str, ...]] | None
                  ) -> dict[str, tuple[str, ...]]:
    raw = _keys(source, "vocabularies", raw, VOCABULARIES, () if defaults else VOCABULARIES)
    out = {}
    for name in VOCABULARIES:
        if name not in raw:
            out[name] = defaults[name]  # type: ignore[index]
            continue
        values = raw[name]
        where = f"vocabularies.{name}"
        if not isinstance(values, list) or not values:
            raise _fail(source, where, "empty_list", value=values)
        for v in values:
            _text(source, where, v, required=True)
            if v != v.strip():
                raise _fail(source, where, "spaces", value=v)
        dup = sorted({v for v in values if values.count(v) > 1})
        if dup:
            raise _fail(source, where, "listed_twice", value=dup[0])
        if name in FIXED_VOCABULARIES and sorted(values) != sorted(FIXED_VOCABULARIES[name]):
            raise _fail(source, where, "fixed", values=values, expected=list(FIXED_VOCABULARIES[name]))
        lacking = [v for v in REQUIRED_VALUES.get(name, ()) if v not in values]
        if lacking:
            raise _fail(source, where, "required_value", value=lacking[0], required=list(REQUIRED_VALUES[name]))
        out[name] = tuple(values)
    return out


def _labels(source: str, raw: Any, vocabularies: dict[str, tuple[str, ...]],
            defaults: dict[str, dict[str, dict[str, str]]] | None) -> dict[str, dict[str, dict[str, str]]]:
    raw = _keys(source, "labels", raw if raw is not None else {}, VOCABULARIES)
    out: dict[str, dict[str, dict[str, str]]] = {}
    for name, values in vocabularies.items():
        given = _keys(source, f"labels.{name}", raw.get(name, {}), tuple(str(v) for v in raw.get(name, {})))
        unknown = [v for v in given if v not in values]
        if unknown:
            raise _fail(source, f"labels.{name}.{unknown[0]}", "not_in_vocabulary", value=unknown[0], name=name,
                        values=", ".join(values))
        out[name] = {}
        for value in values:
            if value in given:
                spec = _keys(source, f"labels.{name}.{value}", given[value], LANGUAGES)
                out[name][value] = {lang: _text(source, f"labels.{name}.{value}.{lang}", spec[lang])
                                    for lang in LANGUAGES if lang in spec}
            elif name not in raw and defaults and value in defaults.get(name, {}):
                out[name][value] = dict(defaults[name][value])  # vocabulary kept from the defaults
    return out


def _bounds(source: str, raw: Any, defaults: DataDictionary | None
            ) -> tuple[dict[str, tuple[float | None, float | None]], dict[str, dict[str, str]]]:
    raw = raw if raw is not None else {}
    if not isinstance(raw, dict):
        raise _fail(source, "bounds", "bounds_not_table", value=raw)
    numeric = _numeric_columns()
    bounds = dict(defaults.bounds) if defaults else {}
    notes = {k: dict(v) for k, v in defaults.bound_labels.items()} if defaults else {}
    for key, spec in raw.items():
        where = f"bounds.{key!r}"
        if key not in numeric:
            raise _fail(source, where, "bound_not_numeric")
        spec = _keys(source, where, spec, ("min", "max", *LANGUAGES))
        bounds[key] = _range(source, where, spec)
        note = {lang: _text(source, _sub(where, lang), spec[lang]) for lang in LANGUAGES if lang in spec}
        if note:
            notes[key] = note
        else:
            notes.pop(key, None)
    return dict(sorted(bounds.items(), key=lambda kv: list(numeric).index(kv[0]))), notes


def _attributes(source: str, raw: Any) -> tuple[Attribute, ...]:
    raw = raw if raw is not None else []
    if not isinstance(raw, list):
        raise _fail(source, "attributes", "attributes_not_list")
    canonical = _canonical_columns()
    out: list[Attribute] = []
    for i, spec in enumerate(raw):
        at = f"attributes[{i}]"
        spec = _keys(source, at, spec, ("table", "name", "kind", "categories", "direction", "min", "max",
                                        *LANGUAGES, "reason_en", "reason_zh"), ("table", "name", "kind"))
        table, name, kind = spec["table"], spec["name"], spec["kind"]
        if table not in ATTRIBUTE_TABLES:
            raise _fail(source, f"{at}.table", "not_one_of", value=table, allowed=", ".join(ATTRIBUTE_TABLES))
        if not isinstance(name, str) or not _NAME.match(name):
            raise _fail(source, f"{at}.name", "not_column_name", value=name)
        where: Where = Phrase("error.dictionary.where.attribute", {"name": f"{table}.{name}", "key": ""})
        if f"{table}.{name}" in canonical:
            raise _fail(source, where, "canonical_already")
        if any(a.table == table and a.name == name for a in out):
            raise _fail(source, where, "declared_twice")
        if kind not in ATTRIBUTE_KINDS:
            raise _fail(source, _sub(where, "kind"), "not_one_of", value=kind, allowed=", ".join(ATTRIBUTE_KINDS))
        categories = spec.get("categories")
        if kind == "categorical":
            if not isinstance(categories, list) or not categories:
                raise _fail(source, _sub(where, "categories"), "categories_needed")
            for v in categories:
                _text(source, _sub(where, "categories"), v, required=True)
            if len(set(categories)) != len(categories):
                raise _fail(source, _sub(where, "categories"), "category_twice")
            categories = tuple(categories)
        elif categories is not None:
            raise _fail(source, _sub(where, "categories"), "categories_not_categorical", kind=kind)
        direction = spec.get("direction", 0)
        if isinstance(direction, bool) or direction not in (-1, 0, 1):
            raise _fail(source, _sub(where, "direction"), "direction", value=direction)
        if direction and kind == "categorical":
            raise _fail(source, _sub(where, "direction"), "direction_categorical")
        lo, hi = _range(source, where, spec)
        if (lo is not None or hi is not None) and kind != "numeric":
            raise _fail(source, where, "minmax_numeric")
        texts = {k: _text(source, _sub(where, k), spec.get(k, "")) for k in ("en", "zh", "reason_en", "reason_zh")}
        out.append(Attribute(table, name, kind, categories, int(direction), lo, hi, **texts))
    return tuple(out)


def _policies(source: str, raw: Any, attributes: tuple[Attribute, ...]) -> tuple[PolicyRule, ...]:
    raw = raw if raw is not None else []
    if not isinstance(raw, list):
        raise _fail(source, "policy", "policy_not_list")
    numeric = set(_numeric_columns()) | {f"{a.table}.{a.name}" for a in attributes if a.kind == "numeric"}
    out: list[PolicyRule] = []
    for i, spec in enumerate(raw):
        at = f"policy[{i}]"
        spec = _keys(source, at, spec, ("name", "table", "column", "min", "max", *LANGUAGES),
                     ("name", "table", "column"))
        name = spec["name"]
        if not isinstance(name, str) or not _NAME.match(name):
            raise _fail(source, f"{at}.name", "not_rule_name", value=name)
        where: Where = Phrase("error.dictionary.where.policy", {"name": name, "key": ""})
        if any(r.name == name for r in out):
            raise _fail(source, where, "declared_twice")
        target = f"{spec['table']}.{spec['column']}"
        if target not in numeric:
            raise _fail(source, where, "policy_target", target=target)
        lo, hi = _range(source, where, spec)
        if lo is None and hi is None:
            raise _fail(source, where, "needs_bound")
        out.append(PolicyRule(name, spec["table"], spec["column"], lo, hi,
                              _text(source, _sub(where, "en"), spec.get("en", "")),
                              _text(source, _sub(where, "zh"), spec.get("zh", ""))))
    return tuple(out)


def _industry_teams(source: str, raw: Any, vocabularies: dict[str, tuple[str, ...]],
                    defaults: DataDictionary | None) -> dict[str, str]:
    """industry -> team; every industry and team must be a value of its vocabulary.  Not given:
    the defaults' mapping, kept only for the industries and teams this dictionary still has."""
    industries, teams = vocabularies["industry"], vocabularies["industry_team"]
    if raw is None:
        base = defaults.industry_teams if defaults else {}
        return {i: t for i, t in base.items() if i in industries and t in teams}
    raw = _keys(source, "industry_teams", raw, industries)
    out = {}
    for industry, team in raw.items():
        where = f"industry_teams.{industry}"
        _text(source, where, team, required=True)
        if team not in teams:
            raise _fail(source, where, "not_in_vocabulary", value=team, name="industry_team", values=", ".join(teams))
        out[industry] = team
    return out


def parse_dictionary(raw: dict[str, Any], *, source: str = "data dictionary",
                     defaults: DataDictionary | None = None) -> DataDictionary:
    """A DataDictionary from parsed TOML; every defect raises ConfigError naming the key."""
    _keys(source, Phrase("error.dictionary.where.top"), raw, _TOP)
    currency = raw.get("currency", defaults.currency if defaults else None)
    if not isinstance(currency, str) or not currency.strip():
        raise _fail(source, "currency", "currency", example="CNY", value=currency)
    large = raw.get("large_transaction", defaults.large_transaction if defaults else 50_000.0)
    if _number(source, "large_transaction", large) <= 0 or not math.isfinite(float(large)):
        raise _fail(source, "large_transaction", "large_transaction", currency=currency, value=large)
    vocabularies = _vocabularies(source, raw.get("vocabularies", {} if defaults else None),
                                 defaults.vocabularies if defaults else None)
    labels = _labels(source, raw.get("labels"), vocabularies, defaults.labels if defaults else None)
    bounds, notes = _bounds(source, raw.get("bounds"), defaults)
    attributes = _attributes(source, raw.get("attributes"))
    policies = _policies(source, raw.get("policy"), attributes)
    teams = _industry_teams(source, raw.get("industry_teams"), vocabularies, defaults)
    return DataDictionary(currency, vocabularies, labels, bounds, attributes, policies, notes,
                          industry_teams=teams, large_transaction=float(large), source=source)


def default_dictionary_text() -> str:
    """The shipped default dictionary, as TOML text with its comments."""
    return resources.files("creditmodel.data").joinpath(DEFAULT_FILE).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def default_dictionary() -> DataDictionary:
    """The seed bank's dictionary, shipped as package data."""
    return parse_dictionary(tomllib.loads(default_dictionary_text()), source=DEFAULT_SOURCE)


def load_dictionary(path: str | Path | None = None) -> DataDictionary:
    """The dictionary in ``path`` (TOML), defaults filling what it leaves out; None = the shipped default."""
    if path is None:
        return default_dictionary()
    p = Path(path).expanduser()
    if not p.exists():
        raise ConfigError.of("error.dictionary.missing", path=str(p))
    if not p.is_file():
        raise ConfigError.of("error.dictionary.not_file", path=str(p))
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError.of("error.dictionary.not_utf8", path=str(p), reason=exc.reason) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError.of("error.dictionary.not_toml", path=str(p), detail=str(exc)) from None
    except OSError as exc:
        raise ConfigError.of("error.dictionary.unreadable", path=str(p), detail=str(exc.strerror or exc)) from None
    return parse_dictionary(raw, source=f"data dictionary {p}", defaults=default_dictionary())


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _inline(spec: dict[str, Any]) -> str:
    return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in spec.items()) + " }"


def _key(k: str) -> str:
    return k if _NAME.match(k) else _toml_value(k)


def dictionary_toml(d: DataDictionary) -> str:
    """A dictionary as TOML text that ``load_dictionary`` reads back equal (without comments)."""
    lines = [f"currency = {_toml_value(d.currency)}", f"large_transaction = {_toml_value(d.large_transaction)}", "",
             "[vocabularies]"]
    lines += [f"{name} = {_toml_value(list(values))}" for name, values in d.vocabularies.items()]
    if d.industry_teams:
        lines += ["", "[industry_teams]"]
        lines += [f"{_key(i)} = {_toml_value(t)}" for i, t in d.industry_teams.items()]
    for name, values in d.labels.items():
        for value, texts in values.items():
            lines += ["", f"[labels.{name}.{_key(value)}]"]
            lines += [f"{lang} = {_toml_value(texts[lang])}" for lang in LANGUAGES if lang in texts]
    lines += ["", "[bounds]"]
    for key, (lo, hi) in d.bounds.items():
        spec: dict[str, Any] = {"min": -math.inf if lo is None else lo, "max": math.inf if hi is None else hi}
        spec.update(d.bound_labels.get(key, {}))
        lines.append(f"{_toml_value(key)} = {_inline(spec)}")
    for r in d.policies:
        lines += ["", "[[policy]]", f"name = {_toml_value(r.name)}", f"table = {_toml_value(r.table)}",
                  f"column = {_toml_value(r.column)}"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in (("min", r.min_value), ("max", r.max_value)) if v is not None]
        lines += [f"{k} = {_toml_value(v)}" for k, v in (("en", r.en), ("zh", r.zh)) if v]
    for a in d.attributes:
        lines += ["", "[[attributes]]", f"table = {_toml_value(a.table)}", f"name = {_toml_value(a.name)}",
                  f"kind = {_toml_value(a.kind)}"]
        if a.categories is not None:
            lines.append(f"categories = {_toml_value(list(a.categories))}")
        lines.append(f"direction = {a.direction}")
        lines += [f"{k} = {_toml_value(v)}" for k, v in (("min", a.min_value), ("max", a.max_value)) if v is not None]
        lines += [f"{k} = {_toml_value(getattr(a, k))}" for k in ("en", "zh", "reason_en", "reason_zh")
                  if getattr(a, k)]
    return "\n".join(lines) + "\n"


def write_default_dictionary(out: str | Path) -> Path:
    """Write the shipped default dictionary (with its comments) to ``out``; an existing file is refused."""
    p = Path(out).expanduser()
    if p.exists() or p.is_symlink():
        raise ConfigError.of("error.dictionary.out_exists", path=str(p))
    if p.suffix.lower() != ".toml":
        raise ConfigError.of("error.dictionary.out_not_toml", path=str(p))
    if not p.parent.is_dir():
        raise ConfigError.of("error.dictionary.out_no_dir", path=str(p), dir=str(p.parent))
    try:
        return write_atomically(p, default_dictionary_text(), exclusive=True)
    except FileExistsError:  # the name appeared meanwhile
        raise ConfigError.of("error.dictionary.out_exists", path=str(p)) from None
