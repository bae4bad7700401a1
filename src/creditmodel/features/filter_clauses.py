"""Aggregate ``FILTER (WHERE …)`` clauses written as CASE inside the aggregate, for speed.

The catalogue declares conditional aggregates as ``sum(x) FILTER (WHERE c)``: it reads well and every
engine accepts it. DuckDB, though, evaluates each FILTER aggregate over its own selection of the group's
rows, and the transaction block has some sixty of them: on a 50k-borrower world that block's hash
aggregate took 10.2 s of the catalogue's 27.9 s of CPU, and 1.0 s once written as
``sum(CASE WHEN c THEN x END)`` (the whole query 1.4x less CPU). For aggregates that skip nulls the two
forms read the same rows in the same order, so the values are identical, bit for bit; the compiler applies
this to every block expression, and the declarations keep their FILTER form.
"""

from __future__ import annotations

import re

# aggregates that ignore null inputs: for them `agg(CASE WHEN c THEN x END)` is `agg(x) FILTER (WHERE c)`
NULL_SKIPPING = frozenset({"sum", "count", "avg", "min", "max", "stddev_samp", "stddev_pop", "var_samp", "var_pop"})

_FILTER = re.compile(r"\)\s*FILTER\s*\(\s*WHERE\s", re.IGNORECASE)
_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*$")
_DISTINCT = re.compile(r"\s*DISTINCT\s", re.IGNORECASE)


def _partners(sql: str) -> dict[int, int]:
    """Each parenthesis's position mapped to its partner's, both ways (quoted text is skipped)."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    quote = ""
    for i, ch in enumerate(sql):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            stack.append(i)
        elif ch == ")":
            if not stack:
                raise ValueError(f"unbalanced ')' at {i} in: {sql}")
            j = stack.pop()
            pairs[i], pairs[j] = j, i
    if stack or quote:
        raise ValueError(f"unbalanced parentheses or quotes in: {sql}")
    return pairs


def lower_filters(sql: str) -> str:
    """`sql` with every ``agg(x) FILTER (WHERE c)`` of a null-skipping aggregate written as
    ``agg(CASE WHEN c THEN x END)`` (``count(*)`` takes ``1`` as x); other text is left as it is."""
    start = 0
    while match := _FILTER.search(sql, start):
        pairs = _partners(sql)
        close = match.start()  # the aggregate call's ')'
        open_ = pairs[close]
        name = _NAME.search(sql, 0, open_)
        where_open = match.end() - 1
        while sql[where_open] != "(":
            where_open -= 1
        where_close = pairs[where_open]
        if name is None or name.group(1).lower() not in NULL_SKIPPING:
            start = where_close + 1
            continue
        arg = sql[open_ + 1:close].strip()
        distinct = _DISTINCT.match(" " + arg)
        prefix = ""
        if distinct:
            prefix, arg = "DISTINCT ", (" " + arg)[distinct.end():].strip()
        value = "1" if arg == "*" else arg
        condition = sql[match.end():where_close].strip()
        lowered = f"{sql[name.start():open_]}({prefix}CASE WHEN {condition} THEN {value} END)"
        sql = sql[:name.start()] + lowered + sql[where_close + 1:]
        start = name.start() + len(lowered)
    return sql
