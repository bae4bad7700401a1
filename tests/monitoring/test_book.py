"""The live book, NPL against the 1% tolerance and EVA: sums reconcile to the loans to the cent."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from creditmodel.config import PricingConfig
from creditmodel.exceptions import DataContractError
from creditmodel.monitoring import eva_by, live_book, loan_eva, npl_by, npl_per_year

AS_OF = "2023-09-30"


@pytest.fixture(scope="module")
def book(small_world):
    return live_book(small_world.tables, AS_OF)


def test_live_book_is_the_loans_open_on_the_date(small_world, book):
    t = small_world.tables
    as_of = pd.Timestamp(AS_OF)
    assert book["loan_id"].is_unique and (book["application_date"] <= as_of).all()
    assert (book["balance"] > 0).all() and (book["record_date"].isna() | (book["record_date"] <= as_of)).all()
    # independent reference: the last balance on or before the date, by a plain loop over a few loans
    bal = t["balances"]
    for loan_id in book["loan_id"].iloc[:25]:
        rows = bal[(bal.loan_id == loan_id) & (bal.date <= as_of)]
        row = book.set_index("loan_id").loc[loan_id]
        expected = rows["balance"].iloc[-1] if len(rows) else t["loans"].set_index("loan_id").loc[loan_id, "amount"]
        assert row["balance"] == expected
    closed = set(t["loans"].loan_id[t["loans"].application_date <= as_of]) - set(book.loan_id)
    assert closed  # repaid or written-off loans are not in the book


def test_every_loans_record_is_its_last_on_or_before_each_date(small_world):
    """live_books picks each loan's last schedule record by masks over the whole schedule: against a
    groupby of the schedule cut at each date, for every loan of every book (balance, days past due)."""
    from creditmodel.monitoring.book import live_books

    t = small_world.tables
    days = [pd.Timestamp(x) for x in ("2020-12-31", "2021-06-15", "2022-12-31", AS_OF)]
    sched = t["balances"].merge(t["repayments"][["loan_id", "date", "days_past_due"]], on=["loan_id", "date"])
    for day, got in zip(days, live_books(t, days)):
        cut = sched[sched["date"] <= day].sort_values(["loan_id", "date"]).groupby("loan_id").tail(1)
        ref = cut.set_index("loan_id").reindex(got["loan_id"])
        has = ref["date"].notna().to_numpy()
        assert has.sum() > 0.5 * len(got)
        assert (got["record_date"].to_numpy()[has] == ref["date"].to_numpy()[has]).all()
        assert (got["balance"].to_numpy()[has] == ref["balance"].to_numpy()[has]).all()
        assert (got["days_past_due"].to_numpy()[has] == ref["days_past_due"].to_numpy()[has]).all()
        assert got["record_date"].isna().to_numpy()[~has].all()


def test_npl_per_team_and_officer_reconciles_to_the_loans_to_the_cent(book):
    def cents(x) -> int:
        return int(Decimal(str(x)).scaleb(2).to_integral_value())

    total_bal = sum(cents(b) for b in book["balance"])
    total_npl = sum(cents(b) for b, d in zip(book["balance"], book["days_past_due"]) if d >= 90)
    for by in ("team", "officer_id"):
        part = npl_by(book, by)
        assert sum(cents(x) for x in part["balance"]) == total_bal
        assert sum(cents(x) for x in part["npl_balance"]) == total_npl
        assert ((part["npl_ratio"] <= 0.01) == part["within_tolerance"]).all()
    whole = npl_by(book).iloc[0]
    assert cents(whole["npl_balance"]) == total_npl and whole["npl_ratio"] == pytest.approx(total_npl / total_bal)
    assert total_npl > 0  # the downturn year has non-performing loans


def test_npl_per_year_is_the_year_end_book(small_world):
    years = npl_per_year(small_world.tables, [2021, 2023])
    assert list(years["year"]) == [2021, 2023]
    year_end = npl_by(live_book(small_world.tables, "2023-12-31")).iloc[0]
    assert years.iloc[1]["npl_ratio"] == year_end["npl_ratio"]


def test_eva_per_loan_is_the_pricing_formula_and_sums_to_the_cent(book):
    config = PricingConfig()
    pd_ = np.linspace(0.005, 0.2, len(book))
    eva = loan_eva(book, pd_, config)
    # independent reference for one retail loan: Basel other-retail K, then the EVA definition
    i = int(np.argmax(book["balance"].to_numpy() < 1e6))
    p, lgd, ead, rate = pd_[i], config.lgd[book["guarantee_type"].iloc[i]], book["balance"].iloc[i], book["rate"].iloc[i]
    w = (1 - np.exp(-35 * p)) / (1 - np.exp(-35))
    r = 0.03 * w + 0.16 * (1 - w)
    k = lgd * (norm.cdf((norm.ppf(p) + np.sqrt(r) * norm.ppf(0.999)) / np.sqrt(1 - r)) - p)
    expected = (rate - config.funding_cost - config.operating_cost - p * lgd) * ead - config.hurdle_rate * k * ead
    assert eva["eva"].iloc[i] == pytest.approx(round(expected, 2), abs=0.005)
    total = sum(round(x * 100) for x in eva["eva"])
    for by in ("officer_id", "team"):
        assert sum(round(x * 100) for x in eva_by(eva, by)["eva"]) == total


def test_bad_input_is_one_line(small_world):
    t = small_world.tables
    cases = [
        ({**t}, "1990-01-01", r"--as-of 1990-01-01: outside the data"),
        ({**t}, "2031-01-01", r"--as-of 2031-01-01: outside the data"),
        ({k: v for k, v in t.items() if k != "balances"}, AS_OF, r"table balances: missing"),
        ({**t, "officers": t["officers"].iloc[1:]}, AS_OF, r"officer_id 1 is not in table officers"),
        ({**t, "balances": t["balances"][t["balances"].loan_id != t["loans"].loan_id.iloc[0]]}, "2025-01-01",
         r"table balances: loan_id \d+ has no balances"),
    ]
    for tables, as_of, match in cases:
        with pytest.raises(DataContractError, match=match) as err:
            live_book(tables, as_of)
        assert "\n" not in str(err.value)
    with pytest.raises(DataContractError, match=r"PD: expected one value in \[0, 1\] per loan"):
        loan_eva(live_book(t, AS_OF), [0.1])
    odd = live_book(t, AS_OF)
    odd.loc[odd.index[[3, 5]], "guarantee_type"] = ["pledge_of_pigs", "bamboo_rights"]
    with pytest.raises(DataContractError, match=r"loans.guarantee_type 'bamboo_rights': no LGD in \[pricing\] lgd; "
                                                r"expected one of \w+") as err:
        loan_eva(odd, np.full(len(odd), 0.01))
    assert "\n" not in str(err.value)


def test_the_schedule_lines_up_without_a_join_and_equals_the_join(small_world):
    """Balances and repayments of one schedule line up row by row once ordered (no 25M x 25M join on a
    large book); in any order, or when they differ, the result is the plain join's."""
    from creditmodel.monitoring.book import _last_per_loan, _schedule

    t = small_world.tables
    bal, rep = t["balances"], t["repayments"]
    joined = bal.merge(rep, on=["loan_id", "date"], how="left").sort_values(["loan_id", "date"]).reset_index(drop=True)
    rng = np.random.default_rng(0)
    for b, r in ((bal, rep), (bal.sample(frac=1, random_state=1), rep.sample(frac=1, random_state=2)),
                 (bal, rep.drop(index=rep.index[rng.choice(len(rep), 5, replace=False)]))):
        expected = b.merge(r, on=["loan_id", "date"], how="left").sort_values(["loan_id", "date"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(_schedule(b, r)[0], expected, check_exact=True)
    assert _schedule(bal, rep)[1] and not _schedule(bal, rep.iloc[5:])[1] and len(_schedule(bal, rep)[0]) == len(joined)
    cut = joined[joined["date"] <= pd.Timestamp(AS_OF)]
    reference = cut.groupby("loan_id").tail(1)  # the last record of each loan by date
    pd.testing.assert_frame_equal(_last_per_loan(cut).reset_index(drop=True), reference.reset_index(drop=True))


def test_each_days_records_are_picked_from_the_whole_schedule_as_the_cut_join_gives_them(small_world):
    """Lined-up schedules give each day's last records by position in the whole tables (no copy of the
    rows up to the day); they equal the last record per loan of the join cut at the day, and so does
    the join path that tables which do not line up take (here: repayments missing rows after the
    last day, so only the cut tables line up)."""
    from creditmodel.monitoring.book import _last_records

    t = small_world.tables
    bal, rep = t["balances"], t["repayments"]
    days = [pd.Timestamp("2021-12-31"), pd.Timestamp("2022-12-31"), pd.Timestamp(AS_OF)]
    joined = bal.merge(rep, on=["loan_id", "date"], how="left").sort_values(["loan_id", "date"], kind="mergesort")
    later = rep.index[(rep["date"] > days[-1]).to_numpy()][:5]
    assert len(later) == 5
    for b, r in ((bal, rep), (bal.sample(frac=1, random_state=3), rep.sample(frac=1, random_state=4)),
                 (bal, rep.drop(index=later))):
        for day, got in zip(days, _last_records(b, r, days)):
            expected = joined[joined["date"] <= day].groupby("loan_id").tail(1)
            pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True), check_exact=True)
    broken = rep.copy()
    broken.loc[broken.index[(broken["date"] <= days[0]).to_numpy()][7], "days_past_due"] = np.nan
    with pytest.raises(DataContractError, match=r"table balances: loan_id \d+ on \d{4}-\d\d-\d\d has no repayments row"):
        _last_records(bal, broken, days)


def test_the_as_of_cut_keeps_the_rows_and_labels_a_mask_keeps(small_world):
    from creditmodel.data.schema import TABLES
    from creditmodel.monitoring.rerate import as_of_tables

    as_of = pd.Timestamp("2022-06-30")
    cut = as_of_tables(small_world.tables, as_of)
    checked = 0
    for name, df in small_world.tables.items():
        day = TABLES[name].event_date if name in TABLES else None
        if day is None:
            assert cut[name] is df
            continue
        expected = df[df[day] < as_of + pd.Timedelta(days=1)]
        pd.testing.assert_frame_equal(cut[name], expected, check_exact=True)
        checked += len(expected) < len(df)
    assert checked >= 3


def test_quarters_are_written_as_a_quarterly_period_writes_them():
    from creditmodel.monitoring.backtest import quarters

    rng = np.random.default_rng(3)
    days = pd.Series(pd.to_datetime("1999-12-31") + pd.to_timedelta(rng.integers(0, 12_000, 5_000), unit="D"))
    edges = pd.Series(pd.to_datetime(["2023-01-01", "2023-03-31 23:59:59", "2023-04-01", "2023-12-31", "2024-01-01"],
                                     format="ISO8601"))
    for dates in (days, edges, days.iloc[:0]):
        expected = dates.dt.to_period("Q").astype(str).to_numpy()
        assert quarters(dates).tolist() == expected.tolist()
