"""The canonical input tables: one schema that the synthetic world, adapters and banks' own data share.

Each table is declared once here; the contracts, loaders and generators are built from these
declarations so that a column never means two things.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LEGAL_FORMS = ("sole_trader", "farmer_household", "limited_company")
INDUSTRIES = (
    "bamboo_products",
    "furniture",
    "agri_processing",
    "commerce_trade",
    "livestock",
    "forestry",
    "horticulture",
    "medicinal_herbs",
    "vegetables",
    "grain_oil",
)
REGISTRATION_EVENT_KINDS = ("legal_rep_change", "abnormal_listing", "abnormal_removal", "penalty")
DIRECTIONS = ("in", "out")
CHANNELS = ("pos", "transfer", "cash", "direct_link")
PRODUCTS = ("micro", "working_capital", "joint_guarantee_group", "growth", "preferential")
GUARANTEE_TYPES = ("unsecured", "third_party", "collateral", "joint_group")


@dataclass(frozen=True)
class Column:
    """One column: its logical type, whether it may be null, and its allowed values."""

    name: str
    kind: str  # "str", "int", "float", "date", "timestamp", "bool"
    nullable: bool = False
    categories: tuple[str, ...] | None = None
    min_value: float | None = None
    max_value: float | None = None
    description: str = ""


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


_ENT = "enterprises.enterprise_id"

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "enterprises",
            (
                Column("enterprise_id", "int", min_value=0),
                Column("registration_date", "date"),
                Column("legal_form", "str", categories=LEGAL_FORMS),
                Column("industry", "str", categories=INDUSTRIES),
                Column("county", "str"),
                Column("registered_capital", "float", nullable=True, min_value=0, max_value=1e10,
                       description="CNY; sole traders often register none"),
                Column("owner_birth_year", "int", nullable=True, min_value=1900, max_value=2015),
            ),
            key=("enterprise_id",),
            event_date="registration_date",
        ),
        Table(
            "registration_events",
            (
                Column("enterprise_id", "int"),
                Column("event_date", "date"),
                Column("kind", "str", categories=REGISTRATION_EVENT_KINDS),
                Column("amount", "float", nullable=True, min_value=0, max_value=1e9,
                       description="penalty amount in CNY, null for other kinds"),
            ),
            foreign_keys={"enterprise_id": _ENT},
            event_date="event_date",
            required=False,
        ),
        Table(
            "court_cases",
            (
                Column("case_id", "int", min_value=0),
                Column("enterprise_id", "int"),
                Column("filed_date", "date"),
                Column("closed_date", "date", nullable=True),
                Column("amount", "float", min_value=0, max_value=1e10),
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
                Column("amount", "float", min_value=0, max_value=1e9, description="CNY, always positive"),
                Column("direction", "str", categories=DIRECTIONS),
                Column("channel", "str", categories=CHANNELS),
                Column("counterparty", "int", min_value=0, description="pseudonymised counterparty id"),
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
                Column("revenue", "float", min_value=0, max_value=1e10),
                Column("assets", "float", min_value=0, max_value=1e10),
                Column("liabilities", "float", min_value=0, max_value=1e10),
                Column("inventory", "float", min_value=0, max_value=1e10),
                Column("receivables", "float", min_value=0, max_value=1e10),
                Column("net_profit", "float", min_value=-1e10, max_value=1e10),
            ),
            key=("enterprise_id", "period_end"),
            foreign_keys={"enterprise_id": _ENT},
            event_date="period_end",
            required=False,
        ),
        Table(
            "loans",
            (
                Column("loan_id", "int", min_value=0),
                Column("enterprise_id", "int"),
                Column("application_date", "date", description="the decision date of the loan"),
                Column("product", "str", categories=PRODUCTS),
                Column("guarantee_type", "str", categories=GUARANTEE_TYPES),
                Column("amount", "float", min_value=1, max_value=5e6,
                       description="CNY; the unit approves up to 5 million"),
                Column("term_months", "int", min_value=1, max_value=120),
                Column("rate", "float", nullable=True, min_value=0, max_value=0.36,
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
                Column("days_past_due", "int", min_value=0, max_value=3650),
            ),
            key=("loan_id", "date"),
            foreign_keys={"loan_id": "loans.loan_id"},
            event_date="date",
        ),
    )
}

REQUIRED_TABLES = tuple(name for name, t in TABLES.items() if t.required)
OPTIONAL_TABLES = tuple(name for name, t in TABLES.items() if not t.required)
