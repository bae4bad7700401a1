"""Life after the loan: the live book as of a date, the unit's NPL ratio and EVA, early warning.

A stage after validation and export: it reads the canonical tables (and, for re-rating, bundles),
never training code.
"""

from creditmodel.monitoring.book import (
    NPL_TOLERANCE,
    eva_by,
    live_book,
    loan_eva,
    npl_by,
    npl_per_year,
)
from creditmodel.monitoring.triggers import (
    DEFAULT_TRIGGERS,
    Trigger,
    parse_triggers,
    watch_list,
)

__all__ = [
    "DEFAULT_TRIGGERS",
    "NPL_TOLERANCE",
    "Trigger",
    "eva_by",
    "live_book",
    "loan_eva",
    "npl_by",
    "npl_per_year",
    "parse_triggers",
    "watch_list",
]
