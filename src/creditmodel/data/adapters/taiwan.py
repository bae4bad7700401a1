"""The Taiwan credit-card clients data (UCI 350, Yeh & Lien 2009) mapped into the canonical tables.

Source: ``UCI_Credit_Card.csv``, 30,000 card holders observed April-September 2005 (month 1 =
September = ``PAY_0`` / ``BILL_AMT1`` / ``PAY_AMT1``, month 6 = April = ``PAY_6`` / ``BILL_AMT6`` /
``PAY_AMT6``), with ``default.payment.next.month`` as the outcome. The data set describes
consumers with a card, not firms with loans; the mapping below re-expresses it in the canonical
(SME lending) schema so the kit's feature pipeline and models can be exercised on real
behavioural data. Amounts stay in the source currency (NT$) although the schema says CNY.

Mapping (A = an assumption or a placeholder, not information in the source):

enterprises, one row per client
    enterprise_id = ID; owner_birth_year = 2005 - AGE (so the owner's age at the 2005 decision
    equals AGE). A: legal_form "sole_trader", industry "commerce_trade", county the fixed code
    ``COUNTY``, registered_capital null, registration_date the fixed ``REGISTRATION_DATE``
    (2000-01-01): firm age therefore carries no information. SEX, EDUCATION and MARRIAGE have
    no canonical column and are dropped.

loans, two per client (loan_id unique across both kinds)
    prior loan: the card account, loan_id = ID, applied ``PRIOR_APPLICATION_DATE`` (2005-03-01).
    scored loan: the application being decided, loan_id = ID + ``SCORED_LOAN_OFFSET``, applied
    ``DECISION_DATE`` (2005-10-01, after the September statement).
    Both: amount = LIMIT_BAL clipped into the schema range; rate and group_id null. A: product
    "micro", guarantee_type "unsecured", term_months 12, the 2005-03-01 start of the card account.

repayments
    prior loan: one row per month April..September 2005, dated the month end (30 April ...
    30 September; month end, not the 1st of the next month, so that September's status is dated
    strictly before the 1 October decision and is seen by the as-of features), days_past_due =
    max(PAY_x, 0) * 30 (-2/-1/0 = paid duly = 0; A: one month of delay = 30 days).
    scored loan, built from the label (A: the source gives only the flag, not a path):
    default 1 -> days_past_due 30, 60, 90 on 2005-11-01, 2005-12-01, 2006-01-01 and no row after;
    default 0 -> twelve rows of 0 on the 1st of each month 2005-11-01 .. 2006-10-01.
    With ``EXTRACTION_DATE`` = 2006-10-01 every scored loan's 12-month window is complete and the
    canonical label (90+ DPD within 12 months) equals ``default.payment.next.month``.

transactions, one row per client-month with a positive amount, stamped ``TXN_DAY`` of the month
    PAY_AMT (amount paid that month) -> direction "in", channel "transfer";
    BILL_AMT, positive part (the statement balance) -> direction "out", channel "pos".
    A: the day inside the month, the channels and the single counterparty id ``COUNTERPARTY``;
    reading repayments of a card as receipts and the bill as spending is an analogy only.

absent: registration_events, court_cases, environment_checks, financial_statements (the source
has none); the pipeline skips their features and reports the sources as missing.

Caveat: the prior loans' 12-month windows (to 2006-03-01) also end before ``EXTRACTION_DATE``,
so ``default_labels`` labels them too (1 when any PAY_x >= 3), although only six months of them
are observed; a pipeline run on these tables models both loan kinds unless it restricts itself
to the scored loans (``scored_loan_ids``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from creditmodel.data.contracts import validate_tables
from creditmodel.data.io import write_tables
from creditmodel.data.schema import TABLES
from creditmodel.exceptions import DataContractError, first_line

__all__ = [
    "EXTRACTION_DATE",
    "DECISION_DATE",
    "SCORED_LOAN_OFFSET",
    "taiwan_tables",
    "write_taiwan",
    "scored_loan_ids",
]

EXTRACTION_DATE = pd.Timestamp("2006-10-01")
DECISION_DATE = pd.Timestamp("2005-10-01")
PRIOR_APPLICATION_DATE = pd.Timestamp("2005-03-01")
REGISTRATION_DATE = pd.Timestamp("2000-01-01")
SCORED_LOAN_OFFSET = 1_000_000
COUNTY = "TW"
COUNTERPARTY = 1
TXN_DAY = 15
TERM_MONTHS = 12
LABEL = "default.payment.next.month"

# Month k (1 = September 2005 ... 6 = April 2005) and its source columns.
_MONTHS = pd.period_range("2005-04", "2005-09", freq="M")[::-1]
_PAY = ["PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6"]
_BILL = [f"BILL_AMT{k}" for k in range(1, 7)]
_PAID = [f"PAY_AMT{k}" for k in range(1, 7)]
_REQUIRED = ["ID", "LIMIT_BAL", "AGE", *_PAY, *_BILL, *_PAID, LABEL]


def _read(csv_path: str | Path) -> pd.DataFrame:
    path = Path(csv_path)
    if path.is_dir():
        raise DataContractError.of("error.taiwan.is_dir", path=str(path))
    if not path.is_file():
        raise DataContractError.of("error.taiwan.not_found", path=str(path))
    try:
        raw = pd.read_csv(path)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError) as exc:
        raise DataContractError.of("error.taiwan.unreadable", path=str(path), kind=type(exc).__name__,
                                   detail=first_line(exc)) from None
    missing = [c for c in _REQUIRED if c not in raw.columns]
    if missing:
        raise DataContractError.of("error.taiwan.not_taiwan", path=str(path),
                                   missing=", ".join(missing[:8]) + (", ..." if len(missing) > 8 else ""),
                                   found=", ".join(str(c) for c in raw.columns[:8]))
    bad = [c for c in _REQUIRED if not pd.api.types.is_numeric_dtype(raw[c])]
    if bad:
        raise DataContractError.of("error.taiwan.not_numeric", path=str(path), column=bad[0],
                                   example=raw[bad[0]].iloc[0])
    return raw.sort_values("ID", kind="stable").reset_index(drop=True)


def _long(raw: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ID, month index 0..5 = Sep..Apr, value) for every client-month, client-major order."""
    values = raw[columns].to_numpy(dtype="float64")
    n, m = values.shape
    return np.repeat(raw["ID"].to_numpy(), m), np.tile(np.arange(m), n), values.ravel()


def _month_starts() -> np.ndarray:
    return np.array([p.to_timestamp(how="start") for p in _MONTHS], dtype="datetime64[ns]")


def _month_ends() -> np.ndarray:
    return np.array([p.to_timestamp(how="end").normalize() for p in _MONTHS], dtype="datetime64[ns]")


def _transactions(raw: pd.DataFrame) -> pd.DataFrame:
    stamp = _month_starts() + np.timedelta64(TXN_DAY - 1, "D") + np.timedelta64(12, "h")
    parts = []
    for columns, direction, channel in ((_PAID, "in", "transfer"), (_BILL, "out", "pos")):
        ids, month, amount = _long(raw, columns)
        keep = amount > 0
        parts.append(pd.DataFrame({
            "enterprise_id": ids[keep],
            "ts": stamp[month[keep]],
            "amount": amount[keep],
            "direction": direction,
            "channel": channel,
            "counterparty": COUNTERPARTY,
        }))
    txn = pd.concat(parts, ignore_index=True)
    return txn.sort_values(["enterprise_id", "ts", "direction"], kind="stable").reset_index(drop=True)


def _scored_repayments(raw: pd.DataFrame) -> pd.DataFrame:
    dates = pd.date_range(DECISION_DATE + pd.DateOffset(months=1), periods=TERM_MONTHS, freq="MS").to_numpy()
    bad = raw[LABEL].to_numpy() == 1
    loan = raw["ID"].to_numpy() + SCORED_LOAN_OFFSET
    n_rows = np.where(bad, 3, TERM_MONTHS)
    loan_id = np.repeat(loan, n_rows)
    # position of each row inside its loan: 0, 1, 2, ...
    step = np.arange(n_rows.sum()) - np.repeat(np.cumsum(n_rows) - n_rows, n_rows)
    dpd = np.where(np.repeat(bad, n_rows), 30 * (step + 1), 0)
    return pd.DataFrame({"loan_id": loan_id, "date": dates[step], "days_past_due": dpd.astype("int64")})


def taiwan_tables(csv_path: str | Path) -> dict[str, pd.DataFrame]:
    """The canonical tables of the Taiwan data (see the module docstring), validated."""
    raw = _read(csv_path)
    ids = raw["ID"].to_numpy(dtype="int64")
    n = len(raw)
    amount_col = TABLES["loans"].column("amount")
    amount = raw["LIMIT_BAL"].astype("float64").clip(amount_col.min_value, amount_col.max_value).to_numpy()

    enterprises = pd.DataFrame({
        "enterprise_id": ids,
        "registration_date": np.full(n, REGISTRATION_DATE.to_datetime64()),
        "legal_form": "sole_trader",
        "industry": "commerce_trade",
        "county": COUNTY,
        "registered_capital": np.full(n, np.nan),
        "owner_birth_year": 2005 - raw["AGE"].to_numpy(dtype="int64"),
    })

    def loans_of(loan_id: np.ndarray, date: pd.Timestamp) -> pd.DataFrame:
        return pd.DataFrame({
            "loan_id": loan_id,
            "enterprise_id": ids,
            "application_date": np.full(n, date.to_datetime64()),
            "product": "micro",
            "guarantee_type": "unsecured",
            "amount": amount,
            "term_months": TERM_MONTHS,
            "rate": np.full(n, np.nan),
            "group_id": pd.array([pd.NA] * n, dtype="Int64"),
        })

    loans = pd.concat([loans_of(ids, PRIOR_APPLICATION_DATE), loans_of(ids + SCORED_LOAN_OFFSET, DECISION_DATE)],
                      ignore_index=True)

    loan, month, status = _long(raw, _PAY)
    prior = pd.DataFrame({
        "loan_id": loan,
        "date": _month_ends()[month],
        "days_past_due": (np.maximum(status, 0) * 30).astype("int64"),
    }).sort_values(["loan_id", "date"], kind="stable")
    repayments = pd.concat([prior, _scored_repayments(raw)], ignore_index=True)

    tables = {"enterprises": enterprises, "loans": loans, "repayments": repayments,
              "transactions": _transactions(raw)}
    return validate_tables(tables, extraction_date=EXTRACTION_DATE)


def scored_loan_ids(tables: dict[str, pd.DataFrame]) -> pd.Series:
    """The loan_ids of the scored applications (decided on ``DECISION_DATE``)."""
    loans = tables["loans"]
    return loans.loc[loans["loan_id"] >= SCORED_LOAN_OFFSET, "loan_id"].reset_index(drop=True)


def write_taiwan(csv_path: str | Path, out_dir: str | Path, *, force: bool = False) -> Path:
    """Write the canonical tables of the Taiwan data to ``out_dir`` (parquet, all or nothing)."""
    return write_tables(taiwan_tables(csv_path), out_dir, extraction_date=EXTRACTION_DATE, force=force)
