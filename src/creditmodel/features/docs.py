"""The feature catalogue as a readable page, generated from the declarations so it never goes stale.

``python -m creditmodel.features.docs [path]`` writes it (default ``docs/feature_catalogue.md``);
a test checks that the committed page equals ``catalogue_markdown()``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from creditmodel.features.build import SOURCES, source_clause
from creditmodel.features.catalogue import (
    CATALOGUE,
    LARGE_TXN_CNY,
    REPORTING_LAG_DAYS,
    STATEMENT_WINDOW_DAYS,
    Feature,
)

DEFAULT_PATH = Path("docs") / "feature_catalogue.md"

_TITLES = {
    "application": "Application",
    "enterprises": "Business registration record",
    "registration_events": "Registration events (legal representative, abnormal operation, penalties)",
    "court_cases": "Court enforcement",
    "environment_checks": "Environmental compliance",
    "transactions": "Account and settlement flows",
    "transactions_monthly": "Account flows by month",
    "transaction_gaps": "Gaps between receipts",
    "transaction_counterparties": "Paying counterparties",
    "financial_statements": "Simplified financial statements",
    "loan_history": "Own loan history",
    "repayment_history": "Own repayment history (days past due)",
    "guarantee_group": "Joint-guarantee group",
    "derived": "Across sources",
}
_FROM = {
    "application": "the application itself (`a`)",
    "enterprises": "`LEFT JOIN enterprises e ON e.enterprise_id = a.enterprise_id`",
    "derived": "other features of this catalogue, by name",
}
_DIRECTION = {1: "+1 (higher = riskier)", -1: "-1 (higher = safer)", 0: "0 (no prior)"}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _window(f: Feature) -> str:
    if f.window_days is not None:
        return f"{f.window_days} days"
    return "all history" if f.source not in _FROM else "-"


def _fill(f: Feature) -> str:
    return "null" if f.fill is None else f"{f.fill:g}"


def _layout(sql: str) -> list[str]:
    """A FROM clause as written in build.py: the first line, then the rest dedented to 2 spaces."""
    first, *rest = sql.splitlines()
    indent = min((len(line) - len(line.lstrip()) for line in rest if line.strip()), default=0)
    return [first.strip()] + ["  " + line[indent:].rstrip() for line in rest if line.strip()]


def _section(source: str, feats: Sequence[Feature]) -> list[str]:
    lines = [f"## {_TITLES.get(source, source)} (`{source}`, {len(feats)})", ""]
    if source in _FROM:
        lines += [f"Rows: {_FROM[source]}.", ""]
    else:
        lines += ["Rows (the point-in-time join; the look-back follows the widest window below):", "",
                  "```sql", *_layout(source_clause(source, feats)), "```", ""]
    lines += ["| feature | label | window | aggregation | direction | fill | definition | reason (loan officer) |",
              "|---|---|---|---|---|---|---|---|"]
    for f in feats:
        lines.append(f"| `{f.name}` | {_cell(f.label)} | {_window(f)} | {f.aggregation} | "
                     f"{_DIRECTION[f.direction]} | {_fill(f)} | {_cell(f.description)} | {_cell(f.reason)} |")
    lines += ["", "<details><summary>SQL of each feature</summary>", "", "| feature | SQL expression |", "|---|---|"]
    lines += [f"| `{f.name}` | `{_cell(' '.join(f.sql.split()))}` |" for f in feats]
    lines += ["", "</details>", ""]
    return lines


def catalogue_markdown(features: Sequence[Feature] = CATALOGUE) -> str:
    """Every feature, grouped by source with counts: name, label, window, aggregation, direction, fill,
    definition, reason text and SQL."""
    by_source: dict[str, list[Feature]] = {}
    for f in features:
        by_source.setdefault(f.source, []).append(f)
    order = [s for s in SOURCES if s in by_source] + sorted(set(by_source) - set(SOURCES))
    lines = [
        "# Feature catalogue",
        "",
        "Generated from `creditmodel.features.catalogue` by `python -m creditmodel.features.docs`; do not edit",
        "by hand (a test fails when this page and the declarations disagree).",
        "",
        "Conventions:",
        "",
        "- Point in time: a feature of a loan uses only rows dated strictly before its decision date `d`.",
        "- Windows are half-open, `[d - window, d)`: a row exactly at the window start is in, a row on `d` is"
        " out. Name suffixes read as months: 1m = 30, 3m = 90, 6m = 180, 12m = 365, 24m = 730, 36m = 1095 days.",
        f"- A financial statement for the period ending `P` is available from `P + {REPORTING_LAG_DAYS}` days"
        f" (reporting lag); it is usable when that date is before `d`, and only statements whose period ended in"
        f" the last {STATEMENT_WINDOW_DAYS} days are read.",
        f"- A large transaction is a single amount of at least CNY {LARGE_TXN_CNY:,}: the shipped data dictionary's"
        " `large_transaction`. A bank's dictionary sets its own amount and `currency`, which its catalogue's SQL"
        " and texts then use.",
        "- Fill: the value when the expression is null (e.g. no row in the window); 0 for counts and sums,"
        " null (unknown) otherwise.",
        "- Direction: the expected direction of risk, used for monotone constraints and sanity checks.",
        "- Reason: what a loan officer reads when the feature raises the PD; reason codes add the value.",
        "",
        f"**{len(features)} features** from {len(by_source)} sources:",
        "",
        "| source | features |",
        "|---|---|",
        *(f"| [{_TITLES.get(s, s)}](#{_anchor(s, by_source[s])}) (`{s}`) | {len(by_source[s])} |" for s in order),
        "",
    ]
    for source in order:
        lines += _section(source, by_source[source])
    return "\n".join(lines).rstrip("\n") + "\n"


def _anchor(source: str, feats: Sequence[Feature]) -> str:
    """GitHub's anchor of the section heading."""
    heading = f"{_TITLES.get(source, source)} ({source}, {len(feats)})".lower()
    return "".join(ch for ch in heading.replace(" ", "-") if ch.isalnum() or ch in "-_")


def write_catalogue(path: str | Path = DEFAULT_PATH) -> Path:
    """Write the catalogue page to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(catalogue_markdown(), encoding="utf-8")
    return path


if __name__ == "__main__":  # pragma: no cover
    print(write_catalogue(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_PATH))
