"""Data contracts: one pandera schema per canonical table, built from schema.py and the data dictionary.

``contract(table, dictionary)`` gives the pandera ``DataFrameSchema`` of one table;
``validate_tables`` checks a whole set of tables (presence, per-table contracts, foreign keys, no
rows dated after the extraction date) and returns the coerced frames. The vocabularies and valid
domains come from the data dictionary (``dictionary.py``; the shipped default when none is
given); the dictionary's declared attributes (a bank's own columns of loans and enterprises) are
kept and checked, other extra columns are left out and listed by ``ignored_columns``. Contracts
reject only impossible values; business rules are policy flags (``policy.py``).

All failures are collected and leave as one ``DataContractError``: its message is one line naming
the table, the column, the rule broken and a few offending values and rows of the first failure,
with the count of the others; ``error.failures`` holds one such line per failure, e.g.::

    loans.guarantee_type: value 'gold' not in allowed categories (unsecured, third_party,
    collateral, joint_group) of vocabulary guarantee_type; 12 rows, e.g. loan_id 3, 9, 17

Values are first read strictly into the declared kind (pandas' own casts would silently truncate
1.5 to 1 or read the text 'false' as True); cells that cannot be read are reported, then pandera
checks dtype, nullability, categories, ranges and key uniqueness lazily.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from creditmodel.data import schema
from creditmodel.data.dictionary import VOCABULARY_COLUMNS, DataDictionary, default_dictionary
from creditmodel.data.io import extraction_timestamp
from creditmodel.data.schema import Column, Table
from creditmodel.exceptions import DataContractError
from creditmodel.texts import LANGS, Phrase, text

__all__ = ["contract", "validate_tables", "ignored_columns"]
log = logging.getLogger(__name__)

# Declared kind -> pandas dtype after validation (nullable int columns become "Int64").
_DTYPES = {
    "int": "int64",
    "float": "float64",
    "str": "string",
    "date": "datetime64[ns]",
    "timestamp": "datetime64[ns]",
    "bool": "bool",
}
_MAX_EXAMPLES = 5
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})
_INT_LIMIT = 2.0**63


# --------------------------------------------------------------------------------------------
# schema construction
# --------------------------------------------------------------------------------------------


def _tables(dictionary: DataDictionary | None) -> dict[str, Table]:
    """The canonical tables with the vocabularies, domains and attributes of ``dictionary``."""
    if dictionary is None or dictionary is default_dictionary():
        return schema.TABLES
    return schema.resolve_tables(dictionary)


def _table(name: str, dictionary: DataDictionary | None = None) -> Table:
    try:
        return _tables(dictionary)[name]
    except KeyError:
        raise DataContractError.of(
            "error.contract.unknown_table", name=name, expected=", ".join(schema.TABLES)
        ) from None


def _dtype(col: Column) -> str:
    if col.kind not in _DTYPES:
        raise ValueError(f"column {col.name!r} has unknown kind {col.kind!r}")  # a schema.py bug
    if col.nullable and col.kind == "int":
        return "Int64"
    if col.nullable and col.kind == "bool":
        return "boolean"
    return _DTYPES[col.kind]


def _rules(col: Column) -> list[tuple[str, Any]]:
    """The value rules of a column, in the order their pandera checks are built (check_number)."""
    rules: list[tuple[str, Any]] = []
    if col.categories is not None:
        rules.append(("category", tuple(col.categories)))
    if col.min_value is not None:
        rules.append(("min", col.min_value))
    if col.max_value is not None:
        rules.append(("max", col.max_value))
    return rules


def _check(rule: str, bound: Any) -> pa.Check:
    if rule == "category":
        return pa.Check.isin(list(bound))
    if rule == "min":
        return pa.Check.ge(bound)
    return pa.Check.le(bound)


def contract(table: str, dictionary: DataDictionary | None = None) -> pa.DataFrameSchema:
    """The pandera schema of one canonical table, built from ``schema.py`` and the data dictionary.

    Columns are required, coerced to their declared dtype (int -> int64, or Int64 when nullable;
    float -> float64; str -> string; date/timestamp -> datetime64[ns]; bool -> bool), checked for
    nulls, allowed categories and min/max; the key is unique (column-level for a one-column key,
    schema-level ``unique=`` for a composite key). Attributes declared in ``dictionary`` are nullable
    columns of their kind; other extra columns are dropped (``strict="filter"``).
    """
    return _contract_of(_table(table, dictionary))


def _contract_of(t: Table) -> pa.DataFrameSchema:
    single_key = t.key[0] if len(t.key) == 1 else None
    columns = {
        c.name: pa.Column(
            _dtype(c),
            checks=[_check(rule, bound) for rule, bound in _rules(c)],
            nullable=c.nullable,
            unique=c.name == single_key,
            coerce=True,
            required=True,
            description=c.description or None,
        )
        for c in t.columns
    }
    return pa.DataFrameSchema(
        columns,
        name=t.name,
        coerce=True,
        strict="filter",
        unique=list(t.key) if len(t.key) > 1 else None,
        report_duplicates="all",
    )


# --------------------------------------------------------------------------------------------
# failures and the one-line message
# --------------------------------------------------------------------------------------------

# Rank of each rule: lower is reported first.
_RANK = {
    "structure": 0,
    "missing_column": 1,
    "duplicate_column": 1,
    "type": 2,
    "null": 3,
    "dtype": 4,
    "category": 5,
    "min": 5,
    "max": 5,
    "duplicate": 6,
    "foreign_key": 7,
    "future": 8,
    "other": 9,
}


@dataclass
class _Failure:
    """One broken rule in one table column, with the offending values and rows."""

    table: str
    column: str | None  # None: about the table as a whole; "a, b" for a composite key
    rule: str
    # rule-specific: what the failure says (a text of the catalogue) for a table or column as a whole, else
    # the expected kind, bound, referenced table, ... (data, or a text for a kind)
    detail: str | Phrase = ""
    values: tuple = ()  # distinct offending values (at most a few)
    rows: int = 0  # number of offending rows (0: not about rows)
    examples: str | Phrase = ""  # e.g. "loan_id 3, 9, 17" or the text of "rows 4, 7"
    position: int = 0  # column position in the table, to order failures

    def phrase(self) -> Phrase:
        """The failure's line as a text of the catalogue, to be said in any language."""
        where = self.table if self.column is None else f"{self.table}.{self.column}"
        fields: dict[str, Any] = {"where": where, "problem": self._problem()}
        if not self.rows:
            return Phrase("error.contract.line", fields)
        n = "one" if self.rows == 1 else "many"
        if self.examples:
            return Phrase(f"error.contract.line_{n}_eg", {**fields, "rows": self.rows, "examples": self.examples})
        return Phrase(f"error.contract.line_{n}", {**fields, "rows": self.rows})

    def line(self, lang: str = "en") -> str:
        """The failure in one line, in `lang`."""
        p = self.phrase()
        return text(p.id, lang, **p.fields)

    def _problem(self) -> str | Phrase:
        vals = _fmt_values(self.values)
        n = "many" if len(self.values) > 1 else "one"
        match self.rule:
            case "structure" | "missing_column" | "duplicate_column" | "other":
                return self.detail
            case "type" | "dtype":
                return Phrase(f"error.contract.{self.rule}.{n}", {"values": vals, "kind": self.detail})
            case "null":
                return Phrase("error.contract.null")
            case "category":
                vocabulary = VOCABULARY_COLUMNS.get(f"{self.table}.{self.column}")
                where = (f"vocabularies.{vocabulary}" if vocabulary
                         else Phrase("error.contract.attribute_categories", {"name": f"{self.table}.{self.column}"}))
                return Phrase(f"error.contract.category.{n}", {"values": vals, "allowed": self.detail, "where": where})
            case "min" | "max":
                return Phrase(f"error.contract.{self.rule}.{n}", {"values": vals, "bound": self.detail})
            case "duplicate":
                return Phrase(f"error.contract.duplicate.{n}", {"values": vals})
            case "foreign_key":
                return Phrase(f"error.contract.foreign_key.{n}", {"values": vals, "target": self.detail})
            case "future":
                return Phrase(f"error.contract.future.{n}", {"values": vals, "date": self.detail})
        return Phrase(f"error.contract.rule.{n}", {"values": vals, "rule": f"{self.rule} {self.detail}".strip()})


def _is_null(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _fmt(v: Any) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(_fmt(x) for x in v) + ")"
    if _is_null(v):
        return "null"
    if isinstance(v, (pd.Timestamp, np.datetime64)):
        ts = pd.Timestamp(v)
        return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.isoformat()
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return str(int(f)) if f.is_integer() and abs(f) < 1e16 else repr(f)
    if isinstance(v, str):
        return repr(v if len(v) <= 40 else v[:37] + "...")
    return repr(v)


def _fmt_values(values: Iterable[Any]) -> str:
    values = list(values)
    text = ", ".join(_fmt(v) for v in values[:_MAX_EXAMPLES])
    return text + (", ..." if len(values) > _MAX_EXAMPLES else "")


def _distinct(values: pd.Series) -> tuple:
    """The first few distinct values, in order of appearance."""
    try:
        head = values.drop_duplicates().iloc[: 4 * (_MAX_EXAMPLES + 1)]
    except TypeError:  # unhashable cells
        head = values.iloc[: 50 * (_MAX_EXAMPLES + 1)]
    out: list[Any] = []
    seen: set = set()
    for v in head:
        key = ("null",) if _is_null(v) else _fmt(v)
        if key not in seen:
            seen.add(key)
            out.append(v)
        if len(out) > _MAX_EXAMPLES:
            break
    return tuple(out)


def _examples(t: Table, original: pd.DataFrame, idx: list[int], column: str | None) -> str | Phrase:
    """Identify up to three rows: by the table's one-column key if usable, else by row number."""
    idx = idx[:_MAX_EXAMPLES]
    key = t.key[0] if len(t.key) == 1 else None
    if key and key in original.columns and column != key:
        keys = original[key].iloc[idx]
        if not keys.isna().any():
            return f"{key} " + ", ".join(_fmt(v) for v in keys)
    return Phrase("error.contract.row" if len(idx) == 1 else "error.contract.rows",
                  {"rows": ", ".join(str(i) for i in idx)})


def _raise(failures: list[_Failure]) -> None:
    """One DataContractError for all failures: the first in one line (+ the count of the others);
    ``error.failures`` lists every failure, one line each (``failures_in(lang)`` in each language)."""
    if not failures:
        return
    order = {name: i for i, name in enumerate(schema.TABLES)}
    failures = sorted(
        failures, key=lambda f: (order.get(f.table, -1), _RANK.get(f.rule, 9), f.position)
    )
    first, others = failures[0].phrase(), len(failures) - 1
    if others:
        exc = DataContractError.of("error.contract.more_one" if others == 1 else "error.contract.more_many",
                                   first=first, n=others)
    else:
        exc = DataContractError.of(first.id, **first.fields)  # one of the error.contract.line texts
    exc.failures = tuple(f.line() for f in failures)
    exc.failures_by_lang = {lang: tuple(f.line(lang) for f in failures) for lang in LANGS if lang != "en"}
    raise exc


def _row_failure(
    t: Table,
    original: pd.DataFrame,
    column: str | None,
    rule: str,
    detail: str | Phrase,
    values: pd.Series,
    rank_column: str | None = None,
) -> _Failure:
    """A failure of the rows in ``values`` (indexed by row position in ``original``)."""
    idx = [int(i) for i in values.index[:_MAX_EXAMPLES]]
    return _Failure(
        table=t.name,
        column=column,
        rule=rule,
        detail=detail,
        values=_distinct(values),
        rows=len(values),
        examples=_examples(t, original, idx, rank_column or column),
        position=_position(t, rank_column or column),
    )


def _position(t: Table, column: str | None) -> int:
    names = t.column_names
    first = (column or "").split(", ")[0]
    return names.index(first) if first in names else len(names)


# --------------------------------------------------------------------------------------------
# strict reading of each column into its declared kind
# --------------------------------------------------------------------------------------------


def _as_text(s: pd.Series) -> pd.Series:
    """Non-null values as stripped text (for object/string columns)."""
    out = s.astype(object).where(s.notna())
    return out.map(lambda v: v.strip() if isinstance(v, str) else v)


def _to_number(s: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("float64")
    if pd.api.types.is_numeric_dtype(s.dtype):
        return pd.to_numeric(s, errors="coerce").astype("float64")
    if pd.api.types.is_datetime64_any_dtype(s.dtype) or isinstance(s.dtype, pd.PeriodDtype):
        return pd.Series(np.nan, index=s.index, dtype="float64")
    text = _as_text(s).map(lambda v: np.nan if isinstance(v, str) and v == "" else v)
    text = text.map(lambda v: v if isinstance(v, (str, int, float, np.number)) else np.nan)
    return pd.to_numeric(text, errors="coerce").astype("float64")


def _naive(parsed: pd.Series) -> pd.Series:
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.astype("datetime64[us]")


def _parse_text_dates(text: pd.Series) -> pd.Series:
    """ISO-like text first (fast); whatever fails is retried value by value (format="mixed")."""
    nat = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = _naive(pd.to_datetime(text, format="ISO8601", errors="coerce"))
        except (TypeError, ValueError, OverflowError):
            parsed = nat.copy()
        retry = text.notna() & parsed.isna()
        if retry.any():
            try:
                again = _naive(pd.to_datetime(text[retry], format="mixed", errors="coerce"))
                parsed[retry] = again
            except (TypeError, ValueError, OverflowError):
                pass
    return parsed


def _parse_dates(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Read a column as datetime64[ns]; returns (parsed, mask of non-null values that failed).

    Accepts datetime columns (time zones converted to naive UTC), text such as '2023-01-31',
    '2023/01/31', '20230131' (with or without a time) and integers like 20230131 (yyyymmdd).
    Dates outside pandas' nanosecond range (e.g. the sentinel 9999-12-31) fail.
    """
    present = s.notna()
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        parsed = _naive(s)
    elif pd.api.types.is_bool_dtype(s.dtype):
        parsed = pd.Series(pd.NaT, index=s.index, dtype="datetime64[us]")
    elif pd.api.types.is_numeric_dtype(s.dtype):
        num = pd.to_numeric(s, errors="coerce")
        ok = num.notna() & (num == np.floor(num)) & (num.abs() < 1e9)
        text = num.where(ok).astype("Int64").astype(object).map(
            lambda v: None if _is_null(v) else str(v)
        )
        parsed = _naive(pd.to_datetime(text, format="%Y%m%d", errors="coerce"))
    else:
        text = _as_text(s).map(lambda v: None if isinstance(v, str) and v == "" else v)
        present = text.notna()
        parsed = _parse_text_dates(text)
    lo, hi = pd.Timestamp.min.ceil("D"), pd.Timestamp.max.floor("D")
    parsed = parsed.where(parsed.isna() | ((parsed >= lo) & (parsed <= hi)))
    bad = present & parsed.isna()
    return parsed.astype("datetime64[ns]"), bad


def _kind(name: str) -> Phrase:
    """What a column is read as, e.g. "an integer" (the text ``error.contract.kind.<name>``)."""
    return Phrase(f"error.contract.kind.{name}")


def _read_kind(s: pd.Series, col: Column) -> tuple[pd.Series, pd.Series, Phrase]:
    """Strictly read one column into its kind: (values, mask of unreadable cells, kind label).

    Unreadable cells become null in ``values``; ints come back as Int64 and bools as boolean, so
    that nulls survive for the pandera null check.
    """
    present = s.notna()
    if col.kind == "str":
        if pd.api.types.is_string_dtype(s.dtype) and not pd.api.types.is_object_dtype(s.dtype):
            return s.astype("str"), pd.Series(False, index=s.index), _kind("text")
        as_text = s.astype(object).where(present).map(
            lambda v: v if isinstance(v, str) or _is_null(v) else _fmt(v).strip("'")
        )
        return as_text.astype("str"), pd.Series(False, index=s.index), _kind("text")
    if col.kind in ("date", "timestamp"):
        parsed, bad = _parse_dates(s)
        return parsed, bad, _kind(col.kind)
    if col.kind == "bool":
        if pd.api.types.is_bool_dtype(s.dtype):
            return s.astype("boolean"), pd.Series(False, index=s.index), _kind("boolean")

        def to_bool(v: Any) -> Any:
            if _is_null(v):
                return pd.NA
            if isinstance(v, (bool, np.bool_)):
                return bool(v)
            if isinstance(v, (int, float, np.integer, np.floating)):
                return float(v) == 1.0 if float(v) in (0.0, 1.0) else None
            if isinstance(v, str):
                low = v.strip().lower()
                if low == "":
                    return pd.NA
                return True if low in _TRUE else False if low in _FALSE else None
            return None

        mapped = s.astype(object).map(to_bool)
        bad = present & mapped.map(lambda v: v is None)
        values = mapped.where(~bad, pd.NA).map(lambda v: pd.NA if v is None else v)
        return values.astype("boolean"), bad, _kind("boolean_word")
    # int / float
    num = _to_number(s)
    bad = present & num.isna()
    if col.kind == "float":
        return num, bad, _kind("number")
    nonint = num.notna() & ((num != np.floor(num)) | (num.abs() >= _INT_LIMIT))
    bad = bad | nonint
    return num.where(~bad).astype("Int64"), bad, _kind("integer")


# --------------------------------------------------------------------------------------------
# per-table validation
# --------------------------------------------------------------------------------------------


def _classify(check: str, check_number: Any, rules: list[tuple[str, Any]]) -> tuple[str, Any]:
    if check == "not_nullable":
        return "null", None
    if check.startswith("coerce_dtype(") or check.startswith("dtype("):
        return "dtype", check[check.index("(") + 1 : -1].strip("'")
    if check in ("field_uniqueness", "multiple_fields_uniqueness"):
        return "duplicate", None
    if check == "column_in_dataframe":
        return "missing_column", None
    if not _is_null(check_number):
        try:
            return rules[int(float(check_number))]
        except (IndexError, ValueError, TypeError):
            pass
    return "other", check


def _rule_detail(rule: str, bound: Any) -> str:
    if rule == "category":
        return ", ".join(bound)
    if rule in ("min", "max"):
        return _fmt(bound)
    return "" if bound is None else str(bound)


def _validate_table(t: Table, df: pd.DataFrame) -> tuple[pd.DataFrame | None, list[_Failure]]:
    failures: list[_Failure] = []
    original = df.reset_index(drop=True)

    dup_cols = original.columns[original.columns.duplicated()].unique()
    for name in dup_cols:
        failures.append(
            _Failure(t.name, str(name), "duplicate_column",
                     Phrase("error.contract.column_repeated", {"n": int((original.columns == name).sum())}),
                     position=_position(t, str(name)))
        )
    if failures:
        return None, failures

    present = [c for c in t.columns if c.name in original.columns]
    missing = [c.name for c in t.columns if c.name not in original.columns]
    for name in missing:
        found = ", ".join(str(c) for c in original.columns[:12])
        failures.append(
            _Failure(t.name, name, "missing_column",
                     Phrase("error.contract.column_missing", {"columns": found}) if found
                     else Phrase("error.contract.column_missing_none"),
                     position=_position(t, name))
        )

    prepared = original.copy()
    flagged: dict[str, np.ndarray] = {}  # column -> rows already reported as unreadable
    for col in present:
        values, bad, label = _read_kind(original[col.name], col)
        prepared[col.name] = values
        if bad.any():
            offending = original[col.name][bad]
            failures.append(_row_failure(t, original, col.name, "type", label, offending))
            flagged[col.name] = bad.to_numpy(dtype=bool)

    try:
        validated = _contract_of(t).validate(prepared, lazy=True)
    except pa.errors.SchemaErrors as exc:
        failures.extend(_from_pandera(t, original, exc.failure_cases, flagged))
        return None, failures
    except pa.errors.SchemaError as exc:  # pragma: no cover - lazy=True collects errors
        failures.append(_Failure(t.name, None, "other", Phrase(
            "error.contract.contract_failed", {"detail": (str(exc).splitlines() or [""])[0]})))
        return None, failures
    except Exception as exc:  # noqa: BLE001 - a data problem must not escape as a traceback
        first = (str(exc).splitlines() or [""])[0]
        failures.append(
            _Failure(t.name, None, "other",
                     Phrase("error.contract.not_checked", {"kind": type(exc).__name__, "detail": first}))
        )
        return None, failures
    if failures:
        return None, failures
    return validated[t.column_names].reset_index(drop=True), failures


def _from_pandera(
    t: Table, original: pd.DataFrame, fc: pd.DataFrame, flagged: dict[str, np.ndarray]
) -> list[_Failure]:
    """Turn pandera's failure_cases into failures: one per (column, rule), one rule per cell.

    Vectorised: a broken rule on millions of rows gives millions of failure cases.
    """
    composite = ", ".join(t.key) if len(t.key) > 1 else None
    check = fc["check"].astype(str).to_numpy(dtype=object)
    column = fc["column"].astype(object).where(fc["column"].notna(), "").astype(str)
    column = column.to_numpy(dtype=object)
    column[check == "multiple_fields_uniqueness"] = composite
    number = fc["check_number"].astype(object).where(fc["check_number"].notna(), "")
    frame = pd.DataFrame(
        {
            "column": column,
            "check": check,
            "number": number.astype(str).to_numpy(dtype=object),
            "index": pd.to_numeric(fc["index"], errors="coerce").to_numpy(),
            "value": fc["failure_case"].to_numpy(dtype=object),
        }
    )
    # reported by _validate_table with the columns found
    frame = frame[frame["check"] != "column_in_dataframe"]
    if frame.empty:
        return []

    # classify each distinct (column, check, check number) once, then join back
    combos = frame[["column", "check", "number"]].drop_duplicates()
    classes = []
    for c, chk, num in combos.itertuples(index=False):
        rules = _rules(t.column(c)) if c in t.column_names else []
        rule, bound = _classify(chk, num if num != "" else None, rules)
        classes.append((rule, _rule_detail(rule, bound), _RANK[rule]))
    combos[["rule", "detail", "rank"]] = pd.DataFrame(classes, index=combos.index)
    frame = frame.merge(combos, on=["column", "check", "number"], how="left", validate="m:1")

    located = frame[frame["index"].notna()].copy()
    loose = frame[frame["index"].isna()]
    located["index"] = located["index"].astype("int64")
    for name, mask in flagged.items():  # cells already reported as unreadable
        hit = (located["column"] == name).to_numpy() & mask[located["index"].to_numpy()]
        located = located[~hit]
    # One rule per cell: the most basic one (null > dtype > value rules > duplicate).
    located = located.sort_values(["rank", "index"], kind="stable")
    located = located.drop_duplicates(["column", "index"], keep="first")

    failures: list[_Failure] = []
    for (col_name, rule, detail), group in located.groupby(
        ["column", "rule", "detail"], sort=False
    ):
        idx = np.unique(group["index"].to_numpy())
        if rule == "duplicate":
            keys_ = list(t.key) if col_name == composite else [col_name]
            dup = original.iloc[idx][keys_]
            values = (
                pd.Series(list(dup.itertuples(index=False, name=None)), index=idx, dtype=object)
                if len(keys_) > 1
                else dup[keys_[0]]
            )
        elif col_name in original.columns:
            values = original[col_name].iloc[idx]  # the value as given, not as coerced
        else:
            values = pd.Series(group["value"].to_numpy(), index=group["index"].to_numpy())
        failures.append(_row_failure(t, original, col_name or None, rule, detail, values))

    # failures pandera could not pin to a row (e.g. a check that errored on bad data)
    for r in loose.drop_duplicates(["column", "rule", "detail"]).itertuples(index=False):
        col_name = r.column or None
        if col_name in flagged or any(
            f.column == col_name and f.rule == r.rule for f in failures
        ):
            continue
        failures.append(
            _Failure(t.name, col_name, "other",
                     Phrase("error.contract.check_failed", {"check": r.check, "value": _fmt(r.value)}),
                     position=_position(t, col_name))
        )
    return failures


# --------------------------------------------------------------------------------------------
# cross-table checks
# --------------------------------------------------------------------------------------------


def _foreign_keys(tables: Mapping[str, pd.DataFrame], specs: Mapping[str, Table]) -> list[_Failure]:
    failures = []
    for name, df in tables.items():
        t = specs[name]
        for column, target in t.foreign_keys.items():
            parent_table, parent_column = target.split(".")
            if parent_table not in tables:
                continue  # absent (optional) or failed its own contract: nothing to check against
            child = df[column]
            orphan = child.notna() & ~child.isin(tables[parent_table][parent_column])
            if orphan.any():
                failures.append(
                    _row_failure(t, df, column, "foreign_key", target, child[orphan])
                )
    return failures


def _future_rows(tables: Mapping[str, pd.DataFrame], specs: Mapping[str, Table],
                 cutoff: pd.Timestamp) -> list[_Failure]:
    """Every date of every table after the extraction date: such a row cannot have been observed."""
    whole_day = cutoff == cutoff.normalize()
    failures = []
    for name, df in tables.items():
        t = specs[name]
        for col in t.columns:
            if col.kind not in ("date", "timestamp") or col.name not in df.columns:
                continue
            dates = df[col.name]
            # A date-only extraction date covers the whole day: rows stamped during it are not late.
            late = dates >= cutoff + pd.Timedelta(days=1) if whole_day else dates > cutoff
            late = late.fillna(False).astype(bool)
            if late.any():
                failures.append(
                    _row_failure(t, df, col.name, "future", _fmt(cutoff), dates[late])
                )
    return failures


# --------------------------------------------------------------------------------------------
# public entry points
# --------------------------------------------------------------------------------------------


def ignored_columns(
    tables: Mapping[str, pd.DataFrame], dictionary: DataDictionary | None = None
) -> list[str]:
    """Extra columns that are neither canonical nor declared attributes, as "table.column".

    ``validate_tables`` leaves them out of the validated frames; a run lists them so that no
    column is dropped without a word. Declare one as an attribute in the dictionary to keep it.
    """
    specs = _tables(dictionary)
    out = []
    for name, df in tables.items():
        if name in specs and isinstance(df, pd.DataFrame):
            known = set(specs[name].column_names)
            out += [f"{name}.{c}" for c in df.columns if str(c) not in known]
    return out


def validate_tables(
    tables: dict[str, pd.DataFrame],
    *,
    dictionary: DataDictionary | None = None,
    extraction_date: Any = None,
    consume: bool = False,
) -> dict[str, pd.DataFrame]:
    """Check a set of canonical tables and return them coerced to the contract.

    Required tables must be present and optional ones may be absent; unknown names, empty tables,
    per-table contract failures (kinds, nulls, the dictionary's vocabularies and valid domains,
    keys), foreign keys that do not resolve and (when ``extraction_date`` is given) rows dated
    after the extraction date in any date column are all collected and raised as one
    ``DataContractError`` (first failure in the message, every failure in ``.failures``).
    ``dictionary``: the data dictionary (None = the shipped default). Returns the validated
    frames in schema order, columns in schema order followed by the declared attributes; other
    extra columns are left out and logged (see ``ignored_columns``).

    ``consume``: take each frame out of ``tables`` as it is checked, so that a large table set is not
    held twice (as read and as validated) once the caller keeps no other reference to it.
    """
    if not isinstance(tables, Mapping):
        raise DataContractError.of("error.contract.not_mapping", kind=type(tables).__name__)
    cutoff = None if extraction_date is None else extraction_timestamp(extraction_date)
    specs = _tables(dictionary)
    failures: list[_Failure] = []
    usable: dict[str, pd.DataFrame] = {}
    for name, df in tables.items():
        if name not in specs:
            failures.append(
                _Failure(str(name), None, "structure",
                         Phrase("error.contract.unknown_table", {"name": name, "expected": ", ".join(specs)}))
            )
        elif not isinstance(df, pd.DataFrame):
            failures.append(
                _Failure(name, None, "structure",
                         Phrase("error.contract.not_frame", {"kind": type(df).__name__}))
            )
        elif len(df) == 0:
            failures.append(_Failure(name, None, "structure", Phrase("error.contract.empty")))
        else:
            usable[name] = df
    for name in schema.REQUIRED_TABLES:
        if name not in tables:
            have = ", ".join(str(n) for n in tables)
            failures.append(
                _Failure(name, None, "structure",
                         Phrase("error.contract.table_missing", {"tables": have}) if have
                         else Phrase("error.contract.table_missing_none"))
            )

    extra = ignored_columns(usable, dictionary)
    if extra:
        log.info("ignored columns (not canonical, not declared as attributes in the data "
                    "dictionary): %s", ", ".join(extra))
    validated: dict[str, pd.DataFrame] = {}
    for name, t in specs.items():
        if name not in usable:
            continue
        raw = usable.pop(name)
        if consume:
            tables.pop(name, None)
        frame, table_failures = _validate_table(t, raw)
        del raw
        failures.extend(table_failures)
        if frame is not None:
            validated[name] = frame

    failures.extend(_foreign_keys(validated, specs))
    if cutoff is not None:
        failures.extend(_future_rows(validated, specs, cutoff))
    _raise(failures)
    return validated
