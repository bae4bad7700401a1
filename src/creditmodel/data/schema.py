"""The canonical input tables: one schema that the synthetic world, adapters and banks' own data share.

Each table is declared once here; the contracts, loaders and generators are built from these
declarations so that a column never means two things. The structure (tables, columns, kinds,
keys) is fixed here; what the values may be (the vocabulary of a categorical column, the valid
domain of a numeric one) comes from the data dictionary (``dictionary.py``): ``TABLES`` holds the
shipped default's, ``resolve_tables(dictionary)`` those of a bank's own dictionary, with its
declared attributes appended to the loans and enterprises tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from creditmodel.data.dictionary import default_dictionary

if TYPE_CHECKING:
    from creditmodel.data.dictionary import DataDictionary

@dataclass(frozen=True)
class Column:
    """One column: its logical type, whether it may be null, and its allowed values."""

    name: str
    kind: str  # "str", "int", "float", "date", "timestamp", "bool"
    nullable: bool = False
    categories: tuple[str, ...] | None = None  # filled from the dictionary's vocabulary
    min_value: float | None = None  # valid domain, filled from the dictionary's bounds
    max_value: float | None = None
    description: str = ""
    vocabulary: str | None = None  # the dictionary vocabulary that gives the categories
    attribute: bool = False  # a bank's own column declared in the dictionary, not a canonical one


@dataclass(frozen=True)
class Table:
    """One canonical table: columns, primary key, foreign keys and the date that orders its rows."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    foreign_keys: dict[str, str] = field(default_factory=dict)  # column -> "table.column"
    event_date: str | None = None  # the column compared with the decision date
    required: bool = True

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def canonical_names(self) -> list[str]:
        return [c.name for c in self.columns if not c.attribute]


_ENT = "enterprises.enterprise_id"

STRUCTURE: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "enterprises",
            (
                Column("enterprise_id", "int"),
                Column("registration_date", "date"),
                Column("legal_form", "str", vocabulary="legal_form"),
                Column("industry", "str", vocabulary="industry"),
                Column("county", "str"),
                Column("registered_capital", "float", nullable=True),
                Column("owner_birth_year", "int", nullable=True),
            ),
            key=("enterprise_id",),
            event_date="registration_date",
        ),
        Table(
            "registration_events",
            (
                Column("enterprise_id", "int"),
                Column("event_date", "date"),
                Column("kind", "str", vocabulary="registration_event_kind"),
                Column("amount", "float", nullable=True),
            ),
            foreign_keys={"enterprise_id": _ENT},
            event_date="event_date",
            required=False,
        ),
        Table(
            "court_cases",
            (
                Column("case_id", "int"),
                Column("enterprise_id", "int"),
                Column("filed_date", "date"),
                Column("closed_date", "date", nullable=True),
                Column("amount", "float"),
                Column("dishonest_debtor", "bool"),
            ),
            key=("case_id",),
            foreign_keys={"enterprise_id": _ENT},
            event_date="filed_date",
            required=False,
        ),
        Table(
            "environment_checks",
            (
                Column("enterprise_id", "int"),
                Column("check_date", "date"),
                Column("passed", "bool"),
            ),
            foreign_keys={"enterprise_id": _ENT},
            event_date="check_date",
            required=False,
        ),
        Table(
            "transactions",
            (
                Column("enterprise_id", "int"),
                Column("ts", "timestamp"),
                Column("amount", "float"),
                Column("direction", "str", vocabulary="direction"),
                Column("channel", "str", vocabulary="channel"),
                Column("counterparty", "int"),
            ),
            foreign_keys={"enterprise_id": _ENT},
            event_date="ts",
            required=False,
        ),
        Table(
            "financial_statements",
            (
                Column("enterprise_id", "int"),
                Column("period_end", "date"),
                Column("revenue", "float"),
                Column("assets", "float"),
                Column("liabilities", "float"),
                Column("inventory", "float"),
                Column("receivables", "float"),
                Column("net_profit", "float"),
            ),
            key=("enterprise_id", "period_end"),
            foreign_keys={"enterprise_id": _ENT},
            event_date="period_end",
            required=False,
        ),
        Table(
            "loans",
            (
                Column("loan_id", "int"),
                Column("enterprise_id", "int"),
                Column("application_date", "date", description="the decision date of the loan"),
                Column("product", "str", vocabulary="product"),
                Column("guarantee_type", "str", vocabulary="guarantee_type"),
                Column("amount", "float"),
                Column("term_months", "int"),
                Column("rate", "float", nullable=True,
                       description="annual rate charged; never a feature"),
                Column("group_id", "int", nullable=True, description="joint-guarantee group"),
            ),
            key=("loan_id",),
            foreign_keys={"enterprise_id": _ENT},
            event_date="application_date",
        ),
        Table(
            "repayments",
            (
                Column("loan_id", "int"),
                Column("date", "date"),
                Column("days_past_due", "int"),
            ),
            key=("loan_id", "date"),
            foreign_keys={"loan_id": "loans.loan_id"},
            event_date="date",
        ),
        Table(
            "collateral",
            (
                Column("loan_id", "int"),
                Column("collateral_type", "str", vocabulary="collateral_type"),
                Column("value", "float", description="appraised value at the decision date"),
            ),
            foreign_keys={"loan_id": "loans.loan_id"},
            required=False,
        ),
        Table(
            "guarantees",
            (
                Column("loan_id", "int"),
                Column("guarantor_id", "int", description="the guaranteeing enterprise"),
            ),
            key=("loan_id", "guarantor_id"),
            foreign_keys={"loan_id": "loans.loan_id", "guarantor_id": _ENT},
            required=False,
        ),
        # --- life after the loan (optional: a bank without them still trains and scores) ----------
        Table(
            "officers",
            (
                Column("officer_id", "int", description="loan officer (客户经理)"),
                Column("team", "str", vocabulary="industry_team", description="industry team (行业团队)"),
            ),
            key=("officer_id",),
            required=False,
        ),
        Table(
            "loan_accounts",
            (
                Column("loan_id", "int"),
                Column("officer_id", "int", description="the officer managing the loan"),
                Column("written_off_date", "date", nullable=True),
                Column("written_off_amount", "float", nullable=True),
                Column("recovered_date", "date", nullable=True),
                Column("recovered_amount", "float", nullable=True),
            ),
            key=("loan_id",),
            foreign_keys={"loan_id": "loans.loan_id", "officer_id": "officers.officer_id"},
            required=False,
        ),
        Table(
            "balances",
            (
                Column("loan_id", "int"),
                Column("date", "date", description="instalment date (month end of the loan's schedule)"),
                Column("balance", "float", description="outstanding principal after the instalment"),
                Column("interest", "float", description="interest charged for the month"),
            ),
            key=("loan_id", "date"),
            foreign_keys={"loan_id": "loans.loan_id"},
            event_date="date",
            required=False,
        ),
    )
}

_ATTRIBUTE_KINDS = {"numeric": "float", "categorical": "str", "bool": "bool"}


def resolve_tables(dictionary: DataDictionary) -> dict[str, Table]:
    """The canonical tables with the vocabularies and valid domains of ``dictionary``; its declared
    attributes are appended (nullable) to the loans and enterprises tables."""
    tables = {}
    for name, t in STRUCTURE.items():
        columns = []
        for c in t.columns:
            lo, hi = dictionary.bound(name, c.name)
            columns.append(replace(
                c,
                categories=dictionary.vocabulary(c.vocabulary) if c.vocabulary else None,
                min_value=lo, max_value=hi,
                description=c.description or dictionary.bound_labels.get(f"{name}.{c.name}", {}).get("en", ""),
            ))
        for a in dictionary.attributes_of(name):
            columns.append(Column(a.name, _ATTRIBUTE_KINDS[a.kind], nullable=True, categories=a.categories,
                                  min_value=a.min_value, max_value=a.max_value, description=a.en,
                                  attribute=True))
        tables[name] = replace(t, columns=tuple(columns))
    return tables


TABLES: dict[str, Table] = resolve_tables(default_dictionary())

REQUIRED_TABLES = tuple(name for name, t in TABLES.items() if t.required)
OPTIONAL_TABLES = tuple(name for name, t in TABLES.items() if not t.required)
