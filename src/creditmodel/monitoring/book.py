"""The live book as of a date, its NPL ratio against the 1% tolerance and its EVA per loan.

NPL follows the regulator's balance-based definition: substandard + doubtful + loss, which in this
kit's terms is the outstanding balance of loans 90+ days past due, over the outstanding balance.
EVA per loan is the pricing module's formula (``pricing.raroc.eva``) on the loan's balance as EAD,
its own rate and a PD given per loan (e.g. the re-rated PD as of the date).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from creditmodel.config import PricingConfig
from creditmodel.data.dictionary import DataDictionary, default_dictionary
from creditmodel.exceptions import DataContractError
from creditmodel.pricing.capital import loan_capital
from creditmodel.pricing.raroc import eva
from creditmodel.texts import Phrase

__all__ = ["NPL_TOLERANCE", "eva_by", "live_book", "live_books", "loan_eva", "npl_by", "npl_per_year"]

NPL_TOLERANCE = 0.01  # the unit's annual tolerance: officers within it are not penalised
NPL_DPD = 90
UNASSIGNED = "unassigned"


def _need(tables: Mapping[str, pd.DataFrame], name: str, why: str) -> pd.DataFrame:
    """The table `name`; missing: a DataContractError saying what it is needed for (`why`: the id of a
    phrase ``error.book.for.*``)."""
    df = tables.get(name)
    if df is None:
        raise DataContractError.of("error.book.table_missing", name=name, why=Phrase(f"error.book.for.{why}"))
    return df


def live_book(tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp | dt.date | str,
              dictionary: DataDictionary | None = None) -> pd.DataFrame:
    """Every loan open on ``as_of``: its last instalment record on or before the date (balance,
    days past due, interest of that month), officer, team and industry. Nothing dated after
    ``as_of`` is read.

    A loan is open when applied for by ``as_of``, not written off by then and with a balance left
    (a loan before its first instalment has its full amount outstanding).
    """
    return live_books(tables, [as_of], dictionary)[0]


def live_books(tables: Mapping[str, pd.DataFrame], dates: Sequence[pd.Timestamp | dt.date | str],
               dictionary: DataDictionary | None = None) -> list[pd.DataFrame]:
    """:func:`live_book` at each of ``dates`` (in their order), the tables checked and the monthly
    schedule joined once for all of them: each date reads the joined schedule cut at it, the rows
    that joining the tables cut at it gives (a schedule row and its instalment share their date)."""
    d = dictionary or default_dictionary()
    days = [pd.Timestamp(x).normalize() for x in dates]
    loans = _need(tables, "loans", "live_book")
    repayments = _need(tables, "repayments", "dpd")
    balances = _need(tables, "balances", "npl")
    accounts = _need(tables, "loan_accounts", "officers")
    officers = _need(tables, "officers", "teams")
    enterprises = _need(tables, "enterprises", "industries")
    first, last = loans["application_date"].min(), balances["date"].max()
    for as_of in days:
        if pd.isna(first) or not first <= as_of <= last:
            raise DataContractError.of("error.book.outside_data", as_of=as_of.date(),
                                       first=pd.Timestamp(first).date(), last=pd.Timestamp(last).date())
    # hashed look-ups, not Python sets of every id: a million-loan book checks in milliseconds
    unknown = ~accounts["officer_id"].isin(officers["officer_id"]).to_numpy()
    if unknown.any():
        raise DataContractError.of("error.book.unknown_officer", officer=min(accounts["officer_id"][unknown]))
    no_officer = ~loans["loan_id"].isin(accounts["loan_id"]).to_numpy()
    if no_officer.any():
        raise DataContractError.of("error.book.no_officer", loan=min(loans["loan_id"][no_officer]))
    if not days:
        return []
    return [_book_at(as_of, loans, record, accounts, officers, enterprises, d)
            for as_of, record in zip(days, _last_records(balances, repayments, days))]


def _sorted_by_loan_and_date(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` ordered by (loan_id, date), as it is when already so (no copy then)."""
    ids, dates = df["loan_id"].to_numpy(), df["date"].to_numpy()
    ordered = len(df) < 2 or bool(np.all((ids[1:] > ids[:-1]) | ((ids[1:] == ids[:-1]) & (dates[1:] >= dates[:-1]))))
    return df if ordered else df.sort_values(["loan_id", "date"], kind="mergesort")


def _schedule(balances: pd.DataFrame, repayments: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """Each balances row with the days past due of the repayments row of the same loan and date (NaN
    where there is none), ordered by (loan_id, date), and whether the two lined up. Two tables of the
    same schedule line up row by row once ordered, with no join; any other pair is joined."""
    bal, rep = _sorted_by_loan_and_date(balances), _sorted_by_loan_and_date(repayments)
    if len(bal) == len(rep) and np.array_equal(bal["loan_id"].to_numpy(), rep["loan_id"].to_numpy()) \
            and np.array_equal(bal["date"].to_numpy(), rep["date"].to_numpy()):
        out = bal.reset_index(drop=True)
        extra = [c for c in rep.columns if c not in ("loan_id", "date")]
        return out.assign(**{c: rep[c].to_numpy() for c in extra}), True
    return bal.merge(rep, on=["loan_id", "date"], how="left").reset_index(drop=True), False


def _last_per_loan(sched: pd.DataFrame) -> pd.DataFrame:
    """The last row of each loan of ``sched`` (ordered by loan_id, date): its latest record."""
    return sched[_last_of_each(sched["loan_id"].to_numpy())]


def _last_records(balances: pd.DataFrame, repayments: pd.DataFrame,
                  days: Sequence[pd.Timestamp]) -> list[pd.DataFrame]:
    """For each of ``days``, every loan's last schedule record dated on or before it: its balances row
    with the days past due (and the rest) of the repayments row of the same loan and date.

    Two tables of the same schedule line up row by row once ordered: each day's records are then
    picked by position from the whole tables, without copying the rows up to the day (on a large book
    that copy took most of a monitoring run's live books). Any other pair is joined, cut at the
    latest day."""
    bal, rep = _sorted_by_loan_and_date(balances), _sorted_by_loan_and_date(repayments)
    ids, dates = bal["loan_id"].to_numpy(), bal["date"].to_numpy()
    if len(bal) == len(rep) and np.array_equal(ids, rep["loan_id"].to_numpy()) \
            and np.array_equal(dates, rep["date"].to_numpy()):
        extra = [c for c in rep.columns if c not in ("loan_id", "date")]
        no_dpd = rep["days_past_due"].isna().to_numpy() if "days_past_due" in rep else np.ones(len(rep), dtype=bool)
        ends = _last_of_each(ids)
        out = []
        for as_of in days:
            cut = dates <= as_of.to_datetime64()
            _no_dpd(bal, np.flatnonzero(cut & no_dpd))
            # a loan's records up to the day are the first of its rows (ordered by date): its last one is the
            # row in the cut whose next row is another loan's or after the day; masks, no index of the cut
            last_in_cut = cut.copy()
            last_in_cut[:-1] &= ends[:-1] | ~cut[1:]
            last = np.flatnonzero(last_in_cut)
            out.append(bal.iloc[last].reset_index(drop=True).assign(**{c: rep[c].to_numpy()[last] for c in extra}))
        return out
    latest = max(days)
    joined, aligned = _schedule(balances[balances["date"] <= latest], repayments[repayments["date"] <= latest])
    # lined up row by row once cut, every repayment record has its balance: nothing to look for then
    rep_ids, rep_dates = repayments["loan_id"].to_numpy(), repayments["date"].to_numpy()
    out = []
    for as_of in days:
        sched = joined if as_of == latest else joined[(joined["date"] <= as_of).to_numpy()]
        _no_dpd(sched, np.flatnonzero(sched["days_past_due"].isna().to_numpy()))
        if not aligned:
            missing = np.setdiff1d(pd.unique(rep_ids[rep_dates <= as_of.to_datetime64()]),
                                   pd.unique(sched["loan_id"].to_numpy()))
            if len(missing):
                raise DataContractError.of("error.book.no_balances", loan=missing[0])
        out.append(_last_per_loan(sched))
    return out


def _no_dpd(sched: pd.DataFrame, rows: np.ndarray) -> None:
    """One line for the first of ``rows`` (positions in ``sched``), balances without their repayments row."""
    if len(rows):
        bad = sched.iloc[int(rows[0])]
        raise DataContractError.of("error.book.no_repayment", loan=bad.loan_id, date=pd.Timestamp(bad.date).date())


def _last_of_each(ids: np.ndarray) -> np.ndarray:
    """Whether each position of ``ids`` (grouped, as ordered by loan) is the last of its loan."""
    last = np.ones(len(ids), dtype=bool)
    last[:-1] = ids[1:] != ids[:-1]
    return last


def _book_at(as_of: pd.Timestamp, loans: pd.DataFrame, last_row: pd.DataFrame, accounts: pd.DataFrame,
             officers: pd.DataFrame, enterprises: pd.DataFrame, d: DataDictionary) -> pd.DataFrame:
    live = loans[loans["application_date"] <= as_of]
    book = live.merge(last_row.rename(columns={"date": "record_date"}), on="loan_id", how="left")
    no_record = book["record_date"].isna()
    book["balance"] = book["balance"].where(~no_record, book["amount"])
    book["days_past_due"] = book["days_past_due"].fillna(0).astype(np.int64)
    book["interest"] = book["interest"].fillna(0.0)
    book = book.merge(accounts[["loan_id", "officer_id", "written_off_date"]], on="loan_id", how="left")
    written_off = book["written_off_date"].notna() & (book["written_off_date"] <= as_of)
    book = book[~written_off & (book["balance"] > 0)].drop(columns="written_off_date")
    book = book.merge(officers[["officer_id", "team"]], on="officer_id", how="left")
    book = book.merge(enterprises[["enterprise_id", "industry"]], on="enterprise_id", how="left")
    book["team"] = book["team"].fillna(UNASSIGNED).astype(str)
    teams = book["team"]
    book["team_zh"] = teams.map({t: d.label("industry_team", t, "zh") for t in pd.unique(teams)})  # what officers read
    book["npl"] = book["days_past_due"] >= NPL_DPD
    book["as_of"] = as_of
    return book.reset_index(drop=True)


def _cents(x: pd.Series) -> pd.Series:
    return (x.round(2) * 100).round().astype(np.int64)


def npl_by(book: pd.DataFrame, by: str | list[str] | None = None,
           tolerance: float = NPL_TOLERANCE) -> pd.DataFrame:
    """Outstanding and non-performing balance, NPL ratio and whether it is within ``tolerance``,
    per group (``by`` columns of the book) or for the whole book. Sums are exact in cents."""
    keys = [by] if isinstance(by, str) else list(by or [])
    df = book.assign(_all="all", _bal=_cents(book["balance"]),
                     _npl=np.where(book["npl"], _cents(book["balance"]), 0))
    g = df.groupby(keys or ["_all"], sort=True, observed=True)
    out = pd.DataFrame({"loans": g.size(), "balance": g["_bal"].sum() / 100,
                        "npl_balance": g["_npl"].sum() / 100})
    out["npl_ratio"] = out["npl_balance"] / out["balance"]
    out["within_tolerance"] = out["npl_ratio"] <= tolerance
    return out.reset_index().rename(columns={"_all": "book"})


def npl_per_year(tables: Mapping[str, pd.DataFrame], years: list[int], by: str | None = None,
                 dictionary: DataDictionary | None = None, tolerance: float = NPL_TOLERANCE) -> pd.DataFrame:
    """The NPL ratio at each year's end (the regulator's annual figure), per ``by`` or overall."""
    frames = []
    for y in years:
        book = live_book(tables, pd.Timestamp(year=y, month=12, day=31), dictionary)
        frames.append(npl_by(book, by, tolerance).assign(year=y))
    return pd.concat(frames, ignore_index=True)


def loan_eva(book: pd.DataFrame, pd_: pd.Series | np.ndarray, config: PricingConfig | None = None) -> pd.DataFrame:
    """EVA per year of each loan of the book (pricing.raroc.eva) rounded to the cent:
    EAD = outstanding balance, the loan's own rate, LGD by guarantee type, K from the IRB curve at
    the remaining maturity, ``pd_`` aligned with the book's rows."""
    config = config or PricingConfig()
    pd_ = np.asarray(pd_, dtype=np.float64)
    if pd_.shape[0] != len(book) or np.isnan(pd_).any() or (pd_ < 0).any() or (pd_ > 1).any():
        raise DataContractError.of("error.book.pd", n=len(book))
    unknown = sorted(set(pd.unique(book["guarantee_type"].to_numpy(object))) - set(config.lgd))
    if unknown:
        raise DataContractError.of("error.book.no_lgd", value=unknown[0], known=", ".join(config.lgd))
    lgd = book["guarantee_type"].map(config.lgd).to_numpy(np.float64)
    ead = book["balance"].to_numpy(np.float64)
    end = book["application_date"] + pd.to_timedelta(book["term_months"] * 30.4375, unit="D")
    maturity = np.clip(((end - book["as_of"]).dt.days / 365.25).to_numpy(np.float64), 1.0, 5.0)
    k, _, _ = loan_capital(pd_, lgd, ead, maturity, None, config)
    rate = book["rate"].fillna(0.0).to_numpy(np.float64)
    value = eva(rate, config.funding_cost, config.operating_cost, pd_ * lgd, k, ead, config)
    out = book[["loan_id", "officer_id", "team", "balance"]].copy()
    out["pd"], out["lgd"], out["capital"] = pd_, lgd, np.round(k * ead, 2)
    out["eva"] = np.round(value, 2)
    return out


def eva_by(loans: pd.DataFrame, by: str | list[str]) -> pd.DataFrame:
    """EVA summed per officer or team, exact in cents (the loan-level EVA is already in cents)."""
    keys = [by] if isinstance(by, str) else list(by)
    df = loans.assign(_eva=_cents(loans["eva"]), _bal=_cents(loans["balance"]))
    g = df.groupby(keys, sort=True, observed=True)
    return pd.DataFrame({"loans": g.size(), "balance": g["_bal"].sum() / 100,
                         "eva": g["_eva"].sum() / 100}).reset_index()
