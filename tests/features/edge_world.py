"""The edge-case world of the engine parity tests (DuckDB = Spark = PostgreSQL): a small synthetic world
merged with hand-made edge tables (rows exactly on the decision date, exactly at each window start and one
second / one day before it, at 00:00:00 and 23:59:59 the day before, empty windows, borrowers with no rows
at all or only rows outside every window, leap day and month ends)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from creditmodel.data.dictionary import default_dictionary
from creditmodel.data.schema import TABLES
from creditmodel.data.synthetic import generate_world
from creditmodel.features.catalogue import CATALOGUE

CHANNELS = default_dictionary().vocabulary("channel")
EDGE_ID = 1_000_000  # edge enterprises and loans are numbered from here, apart from the synthetic world
DAY = pd.Timedelta(days=1)
SECOND = pd.Timedelta(seconds=1)


def windows() -> list[int]:
    """Every window of the catalogue in days, and the month-like windows a future entry may use."""
    declared = {getattr(f, "window_days", None) for f in CATALOGUE}
    return sorted({w for w in declared if w} | {30, 90, 180, 365, 730, 1095})


def edge_times(d: pd.Timestamp) -> list[pd.Timestamp]:
    """Timestamps at every edge of every window before decision date `d` (and a few past it)."""
    out = [d, d + 10 * DAY, d - SECOND, d - DAY, d - DAY + pd.Timedelta(hours=23, minutes=59, seconds=59)]
    for w in windows():
        start = d - w * DAY
        out += [start, start - SECOND, start - DAY, start + DAY - SECOND, start + DAY]
    for months in (1, 3, 6, 12, 24, 36):  # calendar-month edges (month ends clamp: 31 Mar - 1 month)
        start = d - pd.DateOffset(months=months)
        out += [start, start - SECOND]
    return sorted(set(out))


def edge_tables() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(2024)
    e = EDGE_ID
    # enterprise -> decision dates of its loans (the first loan of each is also history for the next)
    plan = {
        e + 1: ["2024-03-31", "2024-06-30"],  # month ends, rows at every edge, a later loan with history
        e + 2: ["2024-02-29"],  # leap day, sparse receipts with long gaps
        e + 3: ["2024-07-15"],  # nothing at all in any table: every window empty
        e + 4: ["2023-01-01"],  # rows only on/after the decision date or older than every window
        e + 5: ["2024-01-31", "2024-03-31"],  # guarantee-group member of e+1, second loan same day as e+1's
    }
    enterprises = pd.DataFrame({
        "enterprise_id": list(plan), "registration_date": pd.to_datetime(
            ["2015-02-28", "2016-02-29", "2024-07-14", "2022-12-31", "2010-01-01"]),
        "legal_form": pd.array(["sole_trader", "limited_company", "farmer_household", "sole_trader",
                                "limited_company"], dtype="str"),
        "industry": pd.array(["furniture", "livestock", "forestry", "vegetables", "commerce_trade"], dtype="str"),
        "county": pd.array(["A", "B", "C", "D", "E"], dtype="str"),
        "registered_capital": [1e5, np.nan, 5e4, 0.0, 2.5e6],
        "owner_birth_year": pd.array([1970, None, 1990, 1985, 1960], dtype="Int64"),
    })
    loans, txn, reg, court, env, fs, rep = [], [], [], [], [], [], []
    loan_id = e
    for ent, dates in plan.items():
        for k, day in enumerate(dates):
            loan_id += 1
            d = pd.Timestamp(day)
            loans.append({"loan_id": loan_id, "enterprise_id": ent, "application_date": d,
                          "product": ["micro", "growth", "joint_guarantee_group"][k % 3],
                          "guarantee_type": ["unsecured", "joint_group", "collateral"][k % 3],
                          "amount": 100_000.0 + 12_345.5 * k, "term_months": 12 + 12 * k, "rate": 0.08,
                          "group_id": 77 if ent in (e + 1, e + 5) else None})
            # repayments of this loan, at the edges of the next decision dates of the enterprise
            later = [pd.Timestamp(x) for x in dates[k + 1:]] + [pd.Timestamp("2024-03-31")]
            for j, t in enumerate(sorted({t.normalize() for n in later for t in edge_times(n)} - {d})):
                if t > d:
                    rep.append({"loan_id": loan_id, "date": t, "days_past_due": [0, 0, 15, 30, 95, 0][j % 6]})
    ent_dates = {ent: pd.Timestamp(dates[0]) for ent, dates in plan.items()}
    for ent, d in ent_dates.items():
        if ent == e + 3:
            continue
        times = edge_times(d)
        if ent == e + 4:  # only rows outside every window
            times = [d, d + DAY, d + 10 * DAY, d - 4000 * DAY]
        if ent == e + 1:  # plus a dense year: a receipt every day, at 00:00:00 and at 23:59:59
            dense = pd.date_range(d - 400 * DAY, d - DAY, freq="D")
            times += list(dense) + list(dense + pd.Timedelta(hours=23, minutes=59, seconds=59))
        for i, t in enumerate(times):
            direction = "out" if (ent == e + 4 or i % 3 == 2) else "in"
            if ent == e + 2 and i % 4 != 0:
                continue  # sparse: long gaps between receipts
            txn.append({"enterprise_id": ent, "ts": t, "amount": round(float(rng.uniform(10, 80_000)), 2),
                        "direction": direction, "channel": CHANNELS[i % len(CHANNELS)], "counterparty": i % 7})
        days = sorted({t.normalize() for t in times})
        for i, t in enumerate(days):
            kind = ("legal_rep_change", "abnormal_listing", "abnormal_removal", "penalty")[i % 4]
            reg.append({"enterprise_id": ent, "event_date": t, "kind": kind,
                        "amount": float(100 * (i + 1)) if kind == "penalty" else np.nan})
            closed = [None, d, d - DAY, d + 10 * DAY, t + 30 * DAY][i % 5]
            court.append({"case_id": len(court) + e, "enterprise_id": ent, "filed_date": t, "closed_date": closed,
                          "amount": float(1000 * (i + 1)), "dishonest_debtor": i % 6 == 5})
            env.append({"enterprise_id": ent, "check_date": t, "passed": i % 3 != 1})
        # statements usable `lag` days after the period end: edges of the lag and of the window
        lag = 90
        ends = {d - (lag * DAY), d - (lag + 1) * DAY, d - 1095 * DAY, d - 1096 * DAY, d - (lag + 366) * DAY,
                d - (lag + 730) * DAY, d + DAY} if ent != e + 4 else {d, d - 4000 * DAY}
        for i, p in enumerate(sorted(ends)):
            fs.append({"enterprise_id": ent, "period_end": p.normalize(), "revenue": [1e6, 0.0, 5e5, 2e6][i % 4],
                       "assets": [2e6, 1e6, 0.0, 3e6][i % 4], "liabilities": 1e6 + 1e5 * i,
                       "inventory": 1e5 * (i + 1), "receivables": 5e4 * (i + 1), "net_profit": 1e5 - 5e4 * i})
    frames = {
        "enterprises": enterprises,
        "loans": pd.DataFrame(loans),
        "transactions": pd.DataFrame(txn),
        "registration_events": pd.DataFrame(reg),
        "court_cases": pd.DataFrame(court),
        "environment_checks": pd.DataFrame(env),
        "financial_statements": pd.DataFrame(fs).drop_duplicates(["enterprise_id", "period_end"]),
        "repayments": pd.DataFrame(rep).drop_duplicates(["loan_id", "date"]),
    }
    return {name: canonical(name, df) for name, df in frames.items()}


def canonical(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Cast a hand-made frame to the dtypes the synthetic world uses for the same table."""
    out = {}
    for c in TABLES[name].columns:
        col = df[c.name]
        if c.kind in ("date", "timestamp"):
            col = pd.to_datetime(col).astype("datetime64[ns]")
        elif c.kind == "int":
            col = col.astype("Int64") if c.nullable else col.astype(np.int64)
        elif c.kind == "float":
            col = col.astype(np.float64)
        elif c.kind == "str":
            col = col.astype("str")
        elif c.kind == "bool":
            col = col.astype(bool)
        out[c.name] = col
    return pd.DataFrame(out)


def merged_tables(edge_tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """A small synthetic world and the edge tables, side by side (disjoint ids)."""
    world = generate_world(150, seed=5).tables
    merged = {}
    for name in TABLES:
        if name not in edge_tables:  # tables no feature reads (security, life after the loan)
            continue
        synthetic = world[name].astype({c: t for c, t in edge_tables[name].dtypes.items()})
        merged[name] = pd.concat([synthetic, edge_tables[name]], ignore_index=True)
    return merged


def online_rows(online, loans: pd.DataFrame) -> pd.DataFrame:
    """The decision-time features of each loan (its own terms, group and application date) from an online
    feature source, one application at a time, with the loan's id: rows to compare with the offline matrix."""
    rows = []
    for loan in loans.itertuples():
        rows.append(online.features(
            loan.enterprise_id, loan.application_date, amount=loan.amount, term_months=loan.term_months,
            product=loan.product, guarantee_type=loan.guarantee_type,
            group_id=None if pd.isna(loan.group_id) else int(loan.group_id)).assign(loan_id=loan.loan_id))
    return pd.concat(rows, ignore_index=True)
