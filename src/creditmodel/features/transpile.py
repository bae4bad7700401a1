"""What the catalogue's translations to other engines (Spark, PostgreSQL) share: sqlglot rewriting."""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

# the names DuckDB accepts for a date part, as the canonical name the translations switch on
UNIT_ALIASES = {"D": "DAY", "DAYS": "DAY", "DD": "DAY", "W": "WEEK", "WEEKS": "WEEK", "MONTHS": "MONTH",
                "MON": "MONTH", "MONS": "MONTH", "QUARTERS": "QUARTER", "Y": "YEAR", "YEARS": "YEAR",
                "YR": "YEAR", "YRS": "YEAR", "H": "HOUR", "HOURS": "HOUR", "HR": "HOUR", "HRS": "HOUR",
                "M": "MINUTE", "MINUTES": "MINUTE", "MIN": "MINUTE", "MINS": "MINUTE", "S": "SECOND",
                "SECONDS": "SECOND", "SEC": "SECOND", "SECS": "SECOND", "MS": "MILLISECOND",
                "MILLISECONDS": "MILLISECOND", "US": "MICROSECOND", "MICROSECONDS": "MICROSECOND"}


def date_unit(arg: exp.Expression | None) -> str:
    """The canonical name of a date part argument (``'days'`` -> ``DAY``); DAY when there is none."""
    name = (arg.name if arg is not None else "DAY").upper().strip("'")
    return UNIT_ALIASES.get(name, name)


def rewrite_bottom_up(tree: exp.Expr, rewrite: Callable[[exp.Expr], exp.Expr]) -> exp.Expr:
    """`tree` with every node replaced by ``rewrite(node)``, children before their parents (so a rewrite
    sees its arguments already translated); returns the new root."""
    for node in reversed(list(tree.walk(bfs=False))):
        new = rewrite(node)
        if new is not node:
            if node is tree:
                tree = new
            else:
                node.replace(new)
    return tree
