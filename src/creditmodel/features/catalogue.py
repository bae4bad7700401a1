"""The feature catalogue: every feature declared as data (source, SQL, readable label, fill).

The builder compiles these declarations into one point-in-time DuckDB query. The label is what a
loan officer reads in a reason code, so it names the business fact, not the column.

SQL aliases available to a feature's expression:
``a`` the application (loan_id, enterprise_id, decision_date, amount, term_months, product,
guarantee_type); ``e`` the enterprise; ``s`` a row of the event source (only rows dated strictly
before ``a.decision_date`` and inside the block's look-back ever reach it); ``m`` a month bucket
(transactions_monthly); ``g`` an inflow gap (transaction_gaps); ``p`` a prior loan and ``r`` one of
its repayment records. ``derived`` features refer to other features by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from creditmodel.data.schema import GUARANTEE_TYPES, INDUSTRIES, LEGAL_FORMS, PRODUCTS


@dataclass(frozen=True)
class Feature:
    """One feature: where it comes from, how it is computed as of the decision date, how it reads."""

    name: str
    source: str
    sql: str
    label: str
    fmt: str = "float"  # int, pct, cny, days, months, years, ratio, flag, cat
    fill: float | None = None  # value when the borrower has no row in the source (0 for counts)
    categories: tuple[str, ...] | None = None

    @property
    def is_categorical(self) -> bool:
        return self.categories is not None


def _in(window: str | None = None, extra: str = "") -> str:
    cond = ["s.direction = 'in'"]
    if window:
        cond.append(window)
    if extra:
        cond.append(extra)
    return " AND ".join(cond)


_LAST3 = "s.ts >= a.decision_date - INTERVAL 3 MONTH"
_PREV3 = "s.ts < a.decision_date - INTERVAL 3 MONTH AND s.ts >= a.decision_date - INTERVAL 6 MONTH"
_INFLOW = f"sum(s.amount) FILTER (WHERE {_in()})"


def _share(channel: str) -> str:
    part = f"sum(s.amount) FILTER (WHERE {_in(extra=f's.channel = {chr(39)}{channel}{chr(39)}')})"
    return f"coalesce({part}, 0) / nullif({_INFLOW}, 0)"


_OPEN_CASE = "s.closed_date IS NULL OR s.closed_date >= a.decision_date"

CATALOGUE: tuple[Feature, ...] = (
    # --- the application itself
    Feature("loan_amount", "application", "a.amount", "Loan amount applied for", "cny"),
    Feature("term_months", "application", "a.term_months", "Loan term", "months"),
    Feature("product", "application", "a.product", "Product", "cat", categories=PRODUCTS),
    Feature("guarantee_type", "application", "a.guarantee_type", "Guarantee type", "cat",
            categories=GUARANTEE_TYPES),
    # --- business registration record
    Feature("firm_age_years", "enterprises", "date_diff('day', e.registration_date, a.decision_date) / 365.25",
            "Years since business registration", "years"),
    Feature("legal_form", "enterprises", "e.legal_form", "Legal form", "cat", categories=LEGAL_FORMS),
    Feature("industry", "enterprises", "e.industry", "Industry", "cat", categories=INDUSTRIES),
    Feature("registered_capital", "enterprises", "e.registered_capital", "Registered capital", "cny"),
    Feature("owner_age", "enterprises", "year(a.decision_date) - e.owner_birth_year", "Owner's age", "years"),
    # --- registration events (all history before the decision date)
    Feature("reg_legal_rep_changes_24m", "registration_events",
            "count(*) FILTER (WHERE s.kind = 'legal_rep_change' AND s.event_date >= a.decision_date - INTERVAL 24 MONTH)",
            "Legal-representative changes in the last 24 months", "int", fill=0),
    Feature("reg_abnormal_listings_ever", "registration_events",
            "count(*) FILTER (WHERE s.kind = 'abnormal_listing')",
            "Times listed as operating abnormally", "int", fill=0),
    Feature("reg_abnormal_listed_now", "registration_events",
            "CAST(count(*) FILTER (WHERE s.kind = 'abnormal_listing') > count(*) FILTER (WHERE s.kind = 'abnormal_removal') AS INTEGER)",
            "Currently listed as operating abnormally", "flag", fill=0),
    Feature("reg_penalties_24m", "registration_events",
            "count(*) FILTER (WHERE s.kind = 'penalty' AND s.event_date >= a.decision_date - INTERVAL 24 MONTH)",
            "Administrative penalties in the last 24 months", "int", fill=0),
    Feature("reg_penalty_amount_24m", "registration_events",
            "coalesce(sum(s.amount) FILTER (WHERE s.kind = 'penalty' AND s.event_date >= a.decision_date - INTERVAL 24 MONTH), 0)",
            "Administrative penalty amount in the last 24 months", "cny", fill=0),
    # --- court enforcement
    Feature("court_cases_36m", "court_cases",
            "count(*) FILTER (WHERE s.filed_date >= a.decision_date - INTERVAL 36 MONTH)",
            "Court cases filed in the last 36 months", "int", fill=0),
    Feature("court_open_cases", "court_cases", f"count(*) FILTER (WHERE {_OPEN_CASE})",
            "Court cases open at the decision date", "int", fill=0),
    Feature("court_open_amount", "court_cases", f"coalesce(sum(s.amount) FILTER (WHERE {_OPEN_CASE}), 0)",
            "Amount at stake in open court cases", "cny", fill=0),
    Feature("court_dishonest_debtor", "court_cases", "max(CAST(s.dishonest_debtor AS INTEGER))",
            "Listed as a dishonest judgment debtor", "flag", fill=0),
    # --- environmental compliance (last 36 months)
    Feature("env_checks_36m", "environment_checks", "count(*)", "Environmental inspections in the last 36 months",
            "int", fill=0),
    Feature("env_failed_36m", "environment_checks", "count(*) FILTER (WHERE NOT s.passed)",
            "Failed environmental inspections in the last 36 months", "int", fill=0),
    Feature("env_last_check_failed", "environment_checks", "CAST(NOT arg_max(s.passed, s.check_date) AS INTEGER)",
            "Last environmental inspection failed", "flag"),
    # --- account and settlement flows (last 12 months)
    Feature("txn_inflow_12m", "transactions", f"coalesce({_INFLOW}, 0)", "Receipts over the last 12 months", "cny",
            fill=0),
    Feature("txn_inflow_count_3m", "transactions", f"count(*) FILTER (WHERE {_in(_LAST3)})",
            "Number of receipts in the last 3 months", "int", fill=0),
    Feature("txn_inflow_trend_3m", "transactions",
            f"sum(s.amount) FILTER (WHERE {_in(_LAST3)}) / nullif(sum(s.amount) FILTER (WHERE {_in(_PREV3)}), 0)",
            "Receipts of the last 3 months relative to the 3 months before", "ratio"),
    Feature("txn_outflow_to_inflow_12m", "transactions",
            f"sum(s.amount) FILTER (WHERE s.direction = 'out') / nullif({_INFLOW}, 0)",
            "Payments out relative to receipts, last 12 months", "ratio"),
    Feature("txn_cash_share_12m", "transactions", _share("cash"), "Share of receipts taken in cash", "pct"),
    Feature("txn_pos_share_12m", "transactions", _share("pos"), "Share of receipts through POS acquiring", "pct"),
    Feature("txn_direct_link_share_12m", "transactions", _share("direct_link"),
            "Share of receipts through bank-enterprise direct link", "pct"),
    Feature("txn_counterparties_12m", "transactions", f"count(DISTINCT s.counterparty) FILTER (WHERE {_in()})",
            "Distinct paying counterparties in the last 12 months", "int", fill=0),
    Feature("txn_days_since_last_inflow", "transactions",
            f"date_diff('day', CAST(max(s.ts) FILTER (WHERE {_in()}) AS DATE), a.decision_date)",
            "Days since the last receipt", "days"),
    Feature("txn_avg_inflow_amount_12m", "transactions", f"avg(s.amount) FILTER (WHERE {_in()})",
            "Average receipt amount", "cny"),
    Feature("txn_inflow_cv_12m", "transactions_monthly",
            "sqrt(greatest(sum(m.inflow * m.inflow) / 12 - pow(sum(m.inflow) / 12, 2), 0)) / nullif(sum(m.inflow) / 12, 0)",
            "Month-to-month volatility of receipts (coefficient of variation)", "ratio"),
    Feature("txn_active_months_12m", "transactions_monthly", "count(*) FILTER (WHERE m.inflow > 0)",
            "Months with receipts in the last 12", "int", fill=0),
    Feature("txn_max_gap_days_12m", "transaction_gaps", "max(g.gap_days)",
            "Longest gap between receipts in the last 12 months", "days"),
    # --- simplified financial statement (latest before the decision date, at most 24 months old)
    Feature("fs_revenue", "financial_statements", "arg_max(s.revenue, s.period_end)", "Revenue (latest statement)",
            "cny"),
    Feature("fs_leverage", "financial_statements", "arg_max(s.liabilities / nullif(s.assets, 0), s.period_end)",
            "Liabilities to assets (latest statement)", "pct"),
    Feature("fs_profit_margin", "financial_statements",
            "arg_max(s.net_profit / nullif(s.revenue, 0), s.period_end)", "Net profit margin (latest statement)", "pct"),
    Feature("fs_inventory_to_revenue", "financial_statements",
            "arg_max(s.inventory / nullif(s.revenue, 0), s.period_end)", "Inventory to revenue (latest statement)",
            "ratio"),
    Feature("fs_receivables_to_revenue", "financial_statements",
            "arg_max(s.receivables / nullif(s.revenue, 0), s.period_end)",
            "Receivables to revenue (latest statement)", "ratio"),
    Feature("fs_months_since_statement", "financial_statements",
            "date_diff('month', max(s.period_end), a.decision_date)", "Months since the latest statement", "months"),
    # --- the bank's own history with the borrower
    Feature("hist_prior_loans", "loan_history", "count(*)", "Earlier loans with the bank", "int", fill=0),
    Feature("hist_months_since_first_loan", "loan_history",
            "date_diff('month', min(p.application_date), a.decision_date)", "Months since the first loan with the bank",
            "months"),
    Feature("hist_max_dpd_24m", "repayment_history",
            "max(r.days_past_due) FILTER (WHERE r.date >= a.decision_date - INTERVAL 24 MONTH)",
            "Worst days past due in the last 24 months", "days"),
    Feature("hist_delinquent_months_24m", "repayment_history",
            "count(*) FILTER (WHERE r.days_past_due > 0 AND r.date >= a.decision_date - INTERVAL 24 MONTH)",
            "Months in arrears in the last 24 months", "int"),
    Feature("hist_ever_90dpd", "repayment_history", "max(CAST(r.days_past_due >= 90 AS INTEGER))",
            "Ever 90+ days past due with the bank", "flag"),
    # --- across sources
    Feature("loan_to_inflow_12m", "derived", "loan_amount / nullif(txn_inflow_12m, 0)",
            "Loan amount relative to 12 months of receipts", "ratio"),
    Feature("loan_to_revenue", "derived", "loan_amount / nullif(fs_revenue, 0)",
            "Loan amount relative to revenue", "ratio"),
)

BY_NAME: dict[str, Feature] = {f.name: f for f in CATALOGUE}


def feature(name: str) -> Feature:
    """The catalogue entry of a feature, by name."""
    return BY_NAME[name]
