"""What the application-endpoint tests share: a loan of the world as an application request, and a sample
of the loans whose offline features the run wrote."""

from __future__ import annotations

from typing import Any

import pandas as pd


def application_body(loan: Any, **over: Any) -> dict[str, Any]:
    """The request body of `loan` (a row of the loans table) applied for on its own date; `over` replaces fields."""
    body = {"id": f"loan-{loan.loan_id}", "enterprise_id": int(loan.enterprise_id), "amount": float(loan.amount),
            "term_months": int(loan.term_months), "product": loan.product, "guarantee_type": loan.guarantee_type,
            "decision_date": str(pd.Timestamp(loan.application_date).date())}
    if not pd.isna(loan.group_id):
        body["group_id"] = int(loan.group_id)
    return {**body, **over}


def sample_loans(served: dict[str, Any], n: int, seed: int) -> pd.DataFrame:
    """`n` loans of ``served["frame"]`` (the run's feature rows), as rows of the loans table."""
    ids = served["frame"]["loan_id"].sample(n, random_state=seed)
    return served["tables"]["loans"].set_index("loan_id").loc[ids].reset_index()
