"""A seeded synthetic SME lending world in the canonical schema, with its ground truth kept apart.

The world imitates the SME unit of a county rural cooperative bank (see DOMAIN.md): sole traders,
farmer households and small limited companies in a handful of county trades, observed through
business-registration events, court cases, environmental checks, account flows, officer-compiled
statements, loans and their repayments.

Mechanics, in one place:

* every enterprise carries a latent monthly risk ``r_i(m) = z_i + offsets + u_i(m) + macro(m)``
  with ``z_i ~ N(0, 1)``, industry / legal-form / firm-age / owner-age offsets, an AR(1)
  ``u_i`` (phi 0.9, innovation sd 0.3) and a downturn in calendar 2023 that hits some industries
  harder than others;
* risk drives what the bank can see: fewer, smaller and more volatile inflows, more cash and
  fewer POS / direct-link receipts, outflows closer to (or above) inflows, more registration
  events, court cases and failed environmental checks, higher leverage and lower margins;
* a loan's true PD is ``sigmoid(a + b * r_i(application month) + product + guarantee +
  joint-group shock + downturn)``, with ``a`` solved so that the mean PD over all loans (of a
  block, see below) is ``TARGET_MEAN_PD``; the outcome is a Bernoulli draw of it and shows in
  the repayments as days past due reaching 90 within 12 months of the application date.

Enterprises are drawn in independent *blocks* of about ``BLOCK_ENTERPRISES`` (a world of ``n``
enterprises has ``max(1, round(n / BLOCK_ENTERPRISES))`` blocks of equal size, +-1).  Within a block
everything is drawn from one generator in a fixed order; block 0 uses ``np.random.default_rng(seed)``
itself and block ``b >= 1`` the ``b``-th child of ``np.random.SeedSequence(seed)`` (``spawn_key=(b,)``),
so a seed gives the same frames bit for bit, and a world of fewer than 1.5 blocks is exactly what
the single-stream generator drew before blocks existed.  A block is self-contained (its loans'
intercept ``a`` is solved on its own loans, joint-guarantee groups stay inside it); only the ids
run on from block to block (enterprise, loan, case, group and counterparty ids are globally
unique).  ``generate_world`` concatenates the blocks in memory; ``write_world_partitioned`` writes
them chunk by chunk to parquet with memory bounded by about two blocks; both give the same world.

The truth table (``loan_id, true_pd, defaulted``) is returned and written apart from the canonical
tables so that no loader or feature reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from creditmodel.data.dictionary import default_dictionary
from creditmodel.data.io import write_dataset_info
from creditmodel.data.schema import TABLES
from creditmodel.exceptions import ConfigError
from creditmodel.outputs import Output
from creditmodel.texts import Phrase

__all__ = [
    "World",
    "generate_world",
    "write_world",
    "write_world_partitioned",
    "TRUTH_DIR",
    "TRUTH_FILE",
    "DOWNTURN_YEAR",
    "BLOCK_ENTERPRISES",
    "PARTITIONED_TABLES",
]

TRUTH_DIR = "_truth"
TRUTH_FILE = "loan_truth.parquet"
DOWNTURN_YEAR = 2023
TARGET_MEAN_PD = 0.04  # mean true PD over all loans of a block; realised default rate follows it
PERFORMANCE_MONTHS = 12
MIN_ENTERPRISES = 50
BLOCK_ENTERPRISES = 10_000  # enterprises per independent random block (part of the world's definition)
PARTITIONED_TABLES = ("transactions", "repayments")  # written as <table>/part-NNNNN.parquet
PART_FILE = "part-{:05d}.parquet"
_ROW_GROUP_ROWS = 1 << 20  # rows buffered per table before a parquet row group is written

# --- world parameters ---------------------------------------------------------------------------

# legal form: share, risk offset, log-size offset, P(has statements), P(capital null), log capital
_LEGAL = {
    "sole_trader": (0.50, 0.10, 0.0, 0.50, 0.40, np.log(1.0e5)),
    "farmer_household": (0.25, 0.20, -0.3, 0.45, 0.40, np.log(5.0e4)),
    "limited_company": (0.25, -0.25, 0.8, 0.90, 0.00, np.log(1.0e6)),
}
# industry: share, risk offset, downturn sensitivity, log-size offset,
#           seasonal amplitude, seasonal peak month, cycles per year, inspected (manufacturing /
#           processing), inventory / revenue
_INDUSTRY = {
    "bamboo_products": (0.22, 0.00, 0.8, 0.1, 0.25, 4, 2, True, 0.25),  # spring shoots + autumn
    "furniture": (0.16, 0.10, 1.4, 0.3, 0.15, 10, 1, True, 0.30),
    "agri_processing": (0.14, 0.05, 0.7, 0.2, 0.35, 10, 1, True, 0.30),  # harvest
    "commerce_trade": (0.18, 0.15, 1.1, 0.0, 0.20, 1, 1, False, 0.20),  # spring festival
    "livestock": (0.06, 0.30, 0.6, -0.1, 0.10, 1, 1, True, 0.20),
    "forestry": (0.05, -0.10, 0.5, 0.0, 0.20, 11, 1, False, 0.15),
    "horticulture": (0.05, 0.10, 0.5, -0.3, 0.30, 4, 1, False, 0.10),
    "medicinal_herbs": (0.04, 0.20, 0.4, -0.2, 0.30, 9, 1, False, 0.20),
    "vegetables": (0.05, 0.20, 0.4, -0.4, 0.25, 6, 1, False, 0.05),
    "grain_oil": (0.05, 0.00, 0.5, 0.1, 0.35, 7, 2, False, 0.40),  # summer and autumn purchase
}
# The world is the seed bank's: its names come from the shipped default data dictionary, in the
# dictionary's order (which fixes the random draws), and every name has its parameters above.
_VOCABULARY = default_dictionary().vocabularies
LEGAL_FORMS = _VOCABULARY["legal_form"]
INDUSTRIES = _VOCABULARY["industry"]
REGISTRATION_EVENT_KINDS = _VOCABULARY["registration_event_kind"]
DIRECTIONS = _VOCABULARY["direction"]
CHANNELS = _VOCABULARY["channel"]
PRODUCTS = _VOCABULARY["product"]
GUARANTEE_TYPES = _VOCABULARY["guarantee_type"]
COLLATERAL_TYPES = _VOCABULARY["collateral_type"]
_COLLATERAL_P = {"land_use_right": 0.25, "building": 0.35, "equipment": 0.20, "deposit_pledge": 0.10,
                 "forest_right": 0.10}
TEAMS = _VOCABULARY["industry_team"]
_TEAM_OF = default_dictionary().industry_teams  # industry -> team (the dictionary's, not hard-coded)
ENTERPRISES_PER_OFFICER = 180
_WRITE_OFF_MONTHS = 6  # a loan 90+ DPD is written off six months later ...
_RECOVERY_MONTHS = 6  # ... and what is recovered (guarantor, collateral) comes in six months after that
_RECOVERY_RATE = {"unsecured": 0.10, "third_party": 0.35, "collateral": 0.55, "joint_group": 0.30}
_COUNTIES = (("330523", 0.70), ("330522", 0.20), ("330521", 0.10))

_AR_PHI = 0.9
_AR_SIGMA = 0.3
_MACRO_SHIFT = 0.7  # downturn shift of r (times the industry sensitivity)
_PD_SLOPE = 1.0  # b
_PD_DOWNTURN = 0.4  # extra logit in the downturn, on top of its effect through r

# product mix by legal form (order of PRODUCTS)
_PRODUCT_P = {
    "sole_trader": (0.35, 0.30, 0.15, 0.05, 0.15),
    "farmer_household": (0.35, 0.15, 0.30, 0.02, 0.18),
    "limited_company": (0.10, 0.40, 0.05, 0.25, 0.20),
}
# guarantee mix (unsecured, third_party, collateral) for products other than joint groups
_GUARANTEE_P = {
    "micro": (0.70, 0.20, 0.10),
    "working_capital": (0.35, 0.35, 0.30),
    "growth": (0.15, 0.30, 0.55),
    "preferential": (0.30, 0.35, 0.35),
}
_TERMS = {
    "micro": ((6, 12), (0.6, 0.4)),
    "working_capital": ((6, 12, 24), (0.3, 0.6, 0.1)),
    "joint_guarantee_group": ((12, 24), (0.7, 0.3)),
    "growth": ((12, 24, 36), (0.2, 0.4, 0.4)),
    "preferential": ((12, 24, 36), (0.4, 0.4, 0.2)),
}
_PRODUCT_AMOUNT = {"micro": -0.7, "working_capital": 0.0, "joint_guarantee_group": -0.4,
                   "growth": 0.8, "preferential": 0.1}
_PRODUCT_LOGIT = {"micro": 0.10, "working_capital": 0.0, "joint_guarantee_group": 0.0,
                  "growth": -0.10, "preferential": -0.10}
_GUARANTEE_LOGIT = {"unsecured": 0.35, "third_party": 0.0, "collateral": -0.50, "joint_group": 0.10}
_GUARANTEE_RATE = {"unsecured": 0.010, "third_party": 0.004, "collateral": -0.004, "joint_group": 0.002}
for _names, _params in ((LEGAL_FORMS, _LEGAL), (INDUSTRIES, _INDUSTRY), (PRODUCTS, _PRODUCT_AMOUNT),
                        (GUARANTEE_TYPES, _GUARANTEE_RATE), (GUARANTEE_TYPES, _RECOVERY_RATE)):
    if set(_names) != set(_params):  # the shipped default dictionary and the world's parameters disagree
        raise RuntimeError(f"synthetic world: parameters for {sorted(_params)}, dictionary names {list(_names)}")
_GROUP_SHOCK_SD = 0.8


@dataclass
class World:
    """A generated world: the canonical tables, the loans' ground truth and the extraction date."""

    tables: dict[str, pd.DataFrame]
    truth: pd.DataFrame  # loan_id, true_pd, defaulted (90+ DPD within 12 months of application)
    extraction_date: pd.Timestamp


# --- small vectorised helpers -------------------------------------------------------------------

_STR_DTYPE = pd.Series(["x"]).dtype


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _strings(codes: np.ndarray, categories: tuple[str, ...]) -> pd.api.extensions.ExtensionArray:
    """Category codes -> pandas' default string array, without a Python object per row."""
    arrow = pa.DictionaryArray.from_arrays(
        pa.array(np.asarray(codes, dtype=np.int32)), pa.array(list(categories), pa.large_string())
    ).cast(pa.large_string())
    return pd.array(arrow, dtype=_STR_DTYPE)


def _choice(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One categorical draw per row of the probability matrix ``p`` (rows sum to 1)."""
    cum = np.cumsum(p, axis=1)
    u = rng.random(size=int(p.shape[0]))
    return np.minimum((u[:, None] > cum[:, :-1]).sum(axis=1), p.shape[1] - 1)


def _add_months(days: np.ndarray, k: np.ndarray | int) -> np.ndarray:
    """``date + k months`` (day clipped to the month's end, as pd.DateOffset) on datetime64[D]."""
    month = days.astype("M8[M]")
    day0 = (days - month.astype("M8[D]")).astype(np.int64)
    target = month + k
    month_len = ((target + 1).astype("M8[D]") - target.astype("M8[D]")).astype(np.int64)
    return target.astype("M8[D]") + np.minimum(day0, month_len - 1)


def _ns(days: np.ndarray) -> np.ndarray:
    return np.asarray(days).astype("M8[ns]")


def _nullable_int(values: np.ndarray, null: np.ndarray) -> pd.api.extensions.ExtensionArray:
    return pd.arrays.IntegerArray(np.where(null, 0, values).astype(np.int64), null.astype(bool))


def _frame(name: str, columns: dict[str, object]) -> pd.DataFrame:
    df = pd.DataFrame(columns, copy=False)  # no consolidation copy of the numpy columns
    expected = TABLES[name].column_names
    if list(df.columns) != expected:  # pragma: no cover - guards this module against the schema
        raise AssertionError(f"synthetic {name} columns {list(df.columns)} != schema {expected}")
    return df


def _config_error(parameter: str, value: object, expected: str, **fields: object) -> ConfigError:
    """`parameter`=`value` is refused: it must be the text ``error.synthetic.expect.<expected>`` (with `fields`)."""
    return ConfigError.of("error.synthetic.invalid", parameter=parameter, value=value,
                          expected=Phrase(f"error.synthetic.expect.{expected}", fields))


def _parse_date(parameter: str, value: object) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise _config_error(parameter, value, "date") from exc
    if ts is pd.NaT or pd.isna(ts):
        raise _config_error(parameter, value, "date")
    if ts.tzinfo is not None:
        raise _config_error(parameter, value, "date_naive")
    return ts.normalize()


# --- the generator ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Offsets:
    """Where a block's ids start: the counts of everything the blocks before it drew."""

    enterprise: int = 0
    loan: int = 0
    case: int = 0
    group: int = 0
    counterparty: int = 0


@dataclass(frozen=True)
class _Plan:
    """Checked arguments of one world and its split into random blocks."""

    n: int
    seed: int
    start: pd.Timestamp
    extraction: pd.Timestamp
    last_application: pd.Timestamp
    block_sizes: tuple[int, ...]
    transaction_density: float = 1.0

    def blocks(self) -> Iterator[tuple[dict[str, pd.DataFrame], pd.DataFrame]]:
        """(tables, truth) of each block in order; ids run on from block to block."""
        offsets = _Offsets()
        for b, size in enumerate(self.block_sizes):
            tables, truth, offsets = _run_block(self, b, size, offsets)
            yield tables, truth
            del tables, truth  # not held while the next block is drawn


def _block_sizes(n: int, block: int) -> tuple[int, ...]:
    """``max(1, round(n / block))`` blocks whose sizes differ by at most one."""
    k = max(1, (n + block // 2) // block)
    base, extra = divmod(n, k)
    return tuple(base + (1 if i < extra else 0) for i in range(k))


def _block_rng(seed: int, b: int) -> np.random.Generator:
    """Block 0 draws from the seed itself (as the single-stream generator did), block b from child b."""
    if b == 0:
        return np.random.default_rng(seed)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(b,)))


def _servicing_rng(seed: int, b: int) -> np.random.Generator:
    """The draws of life after the loan (officers, recoveries) come from their own stream, so the
    tables drawn before they existed stay bit-identical."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(b, 1)))


def _officer_roster(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(officer_id, team code) of the unit's loan officers: about one per ``ENTERPRISES_PER_OFFICER``
    enterprises (the seed unit: 12-18 officers for a few thousand borrowers), at least one per team,
    shared out between the teams by the world's industry mix.  Depends on ``n`` only."""
    share = np.zeros(len(TEAMS))
    for industry, params in _INDUSTRY.items():
        team_name = _TEAM_OF.get(industry)
        if team_name is not None:
            share[TEAMS.index(team_name)] += params[0]
    share = share / share.sum() if share.sum() > 0 else np.full(len(TEAMS), 1 / len(TEAMS))
    total = max(len(TEAMS), round(n / ENTERPRISES_PER_OFFICER))
    per_team = np.maximum(1, np.round(share * total)).astype(np.int64)
    team = np.repeat(np.arange(len(TEAMS)), per_team)
    return np.arange(1, team.size + 1, dtype=np.int64), team


def _officers_frame(n: int) -> pd.DataFrame:
    officer_id, team = _officer_roster(n)
    return _frame("officers", {"officer_id": officer_id, "team": _strings(team, TEAMS)})


def _run_block(plan: _Plan, b: int, size: int, offsets: _Offsets
               ) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, _Offsets]:
    gen = _Generator(size, _block_rng(plan.seed, b), plan.start, plan.extraction,
                     plan.last_application, offsets, plan.transaction_density,
                     servicing_rng=_servicing_rng(plan.seed, b), roster=_officer_roster(plan.n))
    # security (collateral, guarantors) from a stream of its own, so every other table stays as it was
    gen.security_rng = np.random.default_rng(np.random.SeedSequence(plan.seed, spawn_key=(b, 2)))
    tables, truth = gen.run()
    return tables, truth, gen.next_offsets  # the generator's grids are freed on return


def _plan(n_enterprises: object, seed: object, start: object, extraction_date: object,
          transaction_density: object = 1.0) -> _Plan:
    if isinstance(n_enterprises, bool) or not isinstance(n_enterprises, (int, np.integer)):
        raise _config_error("n_enterprises", n_enterprises, "n_enterprises", least=MIN_ENTERPRISES)
    if n_enterprises < MIN_ENTERPRISES:
        raise _config_error("n_enterprises", n_enterprises, "n_enterprises", least=MIN_ENTERPRISES)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise _config_error("seed", seed, "seed")
    start_ts = _parse_date("start", start)
    extraction_ts = _parse_date("extraction_date", extraction_date)
    if not start_ts < extraction_ts:
        raise _config_error("start", str(start_ts.date()), "start", date=str(extraction_ts.date()))
    last_application = extraction_ts - pd.DateOffset(months=1)
    if not start_ts < last_application:
        raise _config_error("extraction_date", str(extraction_ts.date()), "extraction_date",
                            date=str(start_ts.date()))
    if (isinstance(transaction_density, bool) or not isinstance(transaction_density, (int, float))
            or not 0.01 <= transaction_density <= 10):
        raise _config_error("transaction_density", transaction_density, "density")
    n = int(n_enterprises)
    return _Plan(n, int(seed), start_ts, extraction_ts, last_application,
                 _block_sizes(n, BLOCK_ENTERPRISES), float(transaction_density))


def generate_world(
    n_enterprises: int = 2000,
    seed: int = 0,
    *,
    start: str = "2019-01-01",
    extraction_date: str = "2025-06-30",
    transaction_density: float = 1.0,
) -> World:
    """Generate a synthetic SME lending world in memory.

    ``start`` is the first possible loan application date; account flows and events begin
    12 months earlier so that the first loans have a history.  ``extraction_date`` is the day
    the data were pulled: nothing is dated after it, and loans are applied for up to one month
    before it (the last 12 months' loans have no complete performance window).
    ``transaction_density`` scales the monthly rate of account transactions (1.0: about 20 a
    month per enterprise, some 1,770 over the default 7.5 years, as a busy county trader; 0.14
    gives about 250, the sparser books of a typical micro-enterprise).

    The world is the concatenation of independent blocks of about ``BLOCK_ENTERPRISES``
    enterprises (see the module docstring); ``write_world_partitioned`` writes the same world
    without holding it in memory.
    """
    plan = _plan(n_enterprises, seed, start, extraction_date, transaction_density)
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in TABLES}
    truths: list[pd.DataFrame] = []
    for tables, truth in plan.blocks():
        for name in TABLES:
            if name != "officers":
                parts[name].append(tables[name])
        truths.append(truth)
    parts["officers"] = [_officers_frame(plan.n)]
    if len(truths) == 1:
        joined = {name: frames[0] for name, frames in parts.items()}
        truth = truths[0]
    else:
        joined = {name: pd.concat(frames, ignore_index=True) for name, frames in parts.items()}
        truth = pd.concat(truths, ignore_index=True)
    return World(tables=joined, truth=truth, extraction_date=plan.extraction)


class _Generator:
    """Holds the shared state (enterprises, risk grid) while the tables are drawn in order."""

    security_rng: np.random.Generator | None = None  # collateral and guarantors: a stream of their own

    def __init__(self, n: int, rng: np.random.Generator, start: pd.Timestamp,
                 extraction: pd.Timestamp, last_application: pd.Timestamp,
                 offsets: _Offsets = _Offsets(), transaction_density: float = 1.0, *,
                 servicing_rng: np.random.Generator | None = None,
                 roster: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.n = n
        self.servicing_rng = servicing_rng if servicing_rng is not None else np.random.default_rng(0)
        self.roster = roster if roster is not None else _officer_roster(n)
        self.transaction_density = transaction_density
        self.rng = rng
        self.offsets = offsets
        self.next_offsets = offsets  # advanced by run()
        self.start = start
        self.extraction = extraction
        self.extraction_d = np.datetime64(extraction.date(), "D")
        self.last_application_d = np.datetime64(last_application.date(), "D")
        # monthly grid: 12 months before the start's month up to the extraction month
        g0 = np.datetime64(start.strftime("%Y-%m"), "M") - 12
        g1 = np.datetime64(extraction.strftime("%Y-%m"), "M")
        self.months = np.arange(g0, g1 + 1)
        self.n_months = len(self.months)
        self.month_start_d = self.months.astype("M8[D]")
        self.month_len_d = ((self.months + 1).astype("M8[D]") - self.month_start_d).astype(np.int64)
        # days of each month up to and including the extraction date (events are dated by day)
        self.avail_days = np.minimum(
            self.month_len_d, np.asarray(self.extraction_d - self.month_start_d).astype(np.int64) + 1
        )
        self.month_of_year = (self.months.astype(np.int64) % 12) + 1
        self.year = self.months.astype(np.int64) // 12 + 1970
        self.macro = self._macro_path()

    # ---- driver ------------------------------------------------------------------------------
    def run(self) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
        enterprises = self._enterprises()
        self._risk()
        transactions = self._transactions()
        registration_events = self._registration_events()
        court_cases = self._court_cases()
        environment_checks = self._environment_checks()
        statements = self._financial_statements()
        loans, truth, loan_state = self._loans()
        repayments = self._repayments(loan_state)
        collateral, guarantees = self._security(loans)
        loan_accounts, balances = self._servicing(loan_state, enterprises)
        tables = {
            "enterprises": enterprises,
            "registration_events": registration_events,
            "court_cases": court_cases,
            "environment_checks": environment_checks,
            "transactions": transactions,
            "financial_statements": statements,
            "loans": loans,
            "repayments": repayments,
            "collateral": collateral,
            "guarantees": guarantees,
            "loan_accounts": loan_accounts,
            "balances": balances,
        }
        tables = {name: tables[name] for name in TABLES if name in tables}  # officers: world-wide
        self.next_offsets = replace(
            self.offsets,
            enterprise=self.offsets.enterprise + self.n,
            loan=self.offsets.loan + len(loans),
            case=self.offsets.case + len(court_cases),
            group=self.offsets.group + self.n_groups,
            counterparty=self.offsets.counterparty + self.pool_total,
        )
        return tables, truth

    # ---- macro and risk ----------------------------------------------------------------------
    def _macro_path(self) -> np.ndarray:
        """1 in the downturn year, ramping in over the prior quarter and out over the next half."""
        macro = np.zeros(self.n_months)
        macro[self.year == DOWNTURN_YEAR] = 1.0
        before = (self.year == DOWNTURN_YEAR - 1) & (self.month_of_year >= 10)
        macro[before] = (self.month_of_year[before] - 9) / 4.0
        after = (self.year == DOWNTURN_YEAR + 1) & (self.month_of_year <= 6)
        macro[after] = 1.0 - self.month_of_year[after] / 7.0
        return macro

    def _enterprises(self) -> pd.DataFrame:
        rng, n = self.rng, self.n
        legal_p = np.array([_LEGAL[f][0] for f in LEGAL_FORMS])
        ind_p = np.array([_INDUSTRY[i][0] for i in INDUSTRIES])
        self.lf = rng.choice(len(LEGAL_FORMS), size=n, p=legal_p / legal_p.sum())
        self.ind = rng.choice(len(INDUSTRIES), size=n, p=ind_p / ind_p.sum())

        reg_hi = np.datetime64((self.start - pd.DateOffset(years=1)).date(), "D")
        reg_lo = min(np.datetime64("1998-01-01", "D"), reg_hi - 3650)
        span = int(np.asarray(reg_hi - reg_lo).astype(np.int64))
        reg = reg_lo + np.floor(span * rng.random(n) ** 0.8).astype(np.int64)
        age_years = np.asarray(np.datetime64(self.start.date(), "D") - reg).astype(np.int64) / 365.25

        county_codes = tuple(c for c, _ in _COUNTIES)
        county = rng.choice(len(county_codes), size=n, p=[p for _, p in _COUNTIES])

        lf_size = np.array([_LEGAL[f][2] for f in LEGAL_FORMS])[self.lf]
        ind_size = np.array([_INDUSTRY[i][3] for i in INDUSTRIES])[self.ind]
        self.size = lf_size + ind_size + rng.normal(0.0, 0.6, n)

        cap_log = np.array([_LEGAL[f][5] for f in LEGAL_FORMS])[self.lf]
        capital = np.exp(cap_log + 0.5 * self.size + rng.normal(0.0, 0.9, n))
        capital = np.round(np.minimum(capital, 1e10), -3)
        cap_null_p = np.array([_LEGAL[f][4] for f in LEGAL_FORMS])[self.lf]
        capital = np.where(rng.random(n) < cap_null_p, np.nan, capital)

        birth = rng.integers(1955, 1999, size=n)
        birth_null = rng.random(n) < 0.05

        lf_risk = np.array([_LEGAL[f][1] for f in LEGAL_FORMS])[self.lf]
        ind_risk = np.array([_INDUSTRY[i][1] for i in INDUSTRIES])[self.ind]
        age_risk = -0.25 * (np.clip(age_years, 0, 25) - 10) / 7
        owner_risk = np.where(birth_null, 0.0, 0.10 * (birth - 1975) / 12)
        self.z = rng.normal(0.0, 1.0, n)
        self.base_risk = self.z + lf_risk + ind_risk + age_risk + owner_risk
        self.enterprise_id = self.offsets.enterprise + np.arange(1, n + 1, dtype=np.int64)

        return _frame("enterprises", {
            "enterprise_id": self.enterprise_id,
            "registration_date": _ns(reg),
            "legal_form": _strings(self.lf, LEGAL_FORMS),
            "industry": _strings(self.ind, INDUSTRIES),
            "county": _strings(county, county_codes),
            "registered_capital": capital.astype(np.float64),
            "owner_birth_year": _nullable_int(birth, birth_null),
        })

    def _risk(self) -> None:
        rng, n, m = self.rng, self.n, self.n_months
        shocks = rng.normal(0.0, _AR_SIGMA, (n, m))
        u = np.empty((n, m))
        u[:, 0] = shocks[:, 0] / np.sqrt(1.0 - _AR_PHI**2)
        for t in range(1, m):
            u[:, t] = _AR_PHI * u[:, t - 1] + shocks[:, t]
        sens = np.array([_INDUSTRY[i][2] for i in INDUSTRIES])[self.ind]
        self.risk = self.base_risk[:, None] + u + _MACRO_SHIFT * sens[:, None] * self.macro[None, :]

        amp = np.array([_INDUSTRY[i][4] for i in INDUSTRIES])
        peak = np.array([_INDUSTRY[i][5] for i in INDUSTRIES])
        cycles = np.array([_INDUSTRY[i][6] for i in INDUSTRIES])
        moy = self.month_of_year[None, :]
        season = amp[:, None] * np.cos(2 * np.pi * cycles[:, None] * (moy - peak[:, None]) / 12)
        self.season = season[self.ind]  # (n, months), log multiplier

    # ---- account flows -----------------------------------------------------------------------
    def _transactions(self) -> pd.DataFrame:
        rng = self.rng
        month_start_ns = _ns(self.month_start_d).astype(np.int64)
        extraction_ns = np.datetime64(self.extraction, "ns").astype(np.int64)
        month_end_ns = _ns((self.months + 1).astype("M8[D]")).astype(np.int64)
        tx_months = int(np.sum(month_start_ns < extraction_ns))
        span_ns = np.minimum(month_end_ns, extraction_ns)[:tx_months] - month_start_ns[:tx_months]
        frac = span_ns / (month_end_ns - month_start_ns)[:tx_months]

        r = self.risk[:, :tx_months]
        season = self.season[:, :tx_months]
        size = self.size[:, None]
        lam_in = 11.0 * np.exp(0.35 * size - 0.18 * r + 0.5 * season)
        lam_in = np.clip(lam_in, 1.0, 60.0) * frac[None, :] * self.transaction_density
        lam_out = 0.6 * lam_in * np.exp(0.08 * r)
        sd_in = 0.7 + 0.15 * _sigmoid(r)
        level = rng.normal(0.0, 1.0, r.shape) * (0.12 + 0.35 * _sigmoid(r - 0.5))
        mu_in = np.log(9000.0) + 0.6 * size - 0.25 * r + season + level
        inflow_volume = lam_in * np.exp(mu_in + sd_in**2 / 2)  # expected receipts of the month
        self.inflow_volume = inflow_volume  # used by the officer's statements
        sd_out = 0.9
        ratio = np.exp(-0.12 + 0.12 * r + rng.normal(0.0, 0.08, r.shape))
        mu_out = np.log(ratio * inflow_volume / lam_out) - sd_out**2 / 2

        # channel mix of receipts and payments (order of CHANNELS: pos, transfer, cash, direct_link)
        limited = (self.lf == LEGAL_FORMS.index("limited_company")).astype(float)[:, None]
        farmer = (self.lf == LEGAL_FORMS.index("farmer_household")).astype(float)[:, None]
        logit_in = np.stack([
            0.3 - 0.35 * r - 0.3 * farmer,
            0.8 + 0.0 * r + 0.3 * limited,
            0.0 + 0.50 * r + 0.6 * farmer - 0.5 * limited,
            -0.5 - 0.40 * r + 0.8 * limited,
        ], axis=-1)
        logit_out = np.stack([
            -3.5 + 0.0 * r,
            1.0 + 0.0 * r + 0.2 * limited,
            0.2 + 0.30 * r + 0.5 * farmer - 0.4 * limited,
            -0.3 - 0.30 * r + 0.7 * limited,
        ], axis=-1)

        def cumulative(logits: np.ndarray) -> np.ndarray:
            p = np.exp(logits - logits.max(axis=-1, keepdims=True))
            return (np.cumsum(p, axis=-1) / p.sum(axis=-1, keepdims=True)).reshape(-1, 4)

        cum_in, cum_out = cumulative(logit_in), cumulative(logit_out)
        p_in = (lam_in / (lam_in + lam_out)).ravel()

        # one Poisson count per enterprise-month; directions by thinning (= independent Poissons)
        counts = rng.poisson((lam_in + lam_out).ravel())
        cell = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
        rows = cell.size
        ent = cell // tx_months
        month = cell % tx_months

        # ordered uniform times within each cell from exponential spacings
        gaps = rng.standard_exponential(rows)
        tail = rng.standard_exponential(counts.size)
        csum = np.cumsum(gaps)
        ends = np.cumsum(counts)
        before = np.concatenate(([0.0], csum))[ends - counts]  # cumulative sum before each cell
        within = csum - np.repeat(before, counts)
        total = np.concatenate(([0.0], csum))[ends] - before + tail
        frac_in_month = within / np.repeat(total, counts)
        del gaps, csum, within
        ts = month_start_ns[month] + (frac_in_month * span_ns[month]).astype(np.int64)
        ts -= ts % 1_000_000_000  # whole seconds, as a core-banking system records them
        del frac_in_month

        is_in = rng.random(rows) < p_in[cell]
        u = rng.random(rows)
        channel = np.zeros(rows, dtype=np.int8)
        for j in range(3):
            channel += u > np.where(is_in, cum_in[cell, j], cum_out[cell, j])
        del u

        z = rng.standard_normal(rows)
        log_amount = np.where(is_in, mu_in.ravel()[cell] + sd_in.ravel()[cell] * z,
                              mu_out.ravel()[cell] + sd_out * z)
        del z
        amount = np.round(np.clip(np.exp(log_amount), 1.0, 1e9), 2)
        del log_amount

        pool = np.clip(np.round(25 * np.exp(0.6 * self.size)), 8, 400).astype(np.int64)
        pool_base = 1_000_000 + self.offsets.counterparty + np.cumsum(pool) - pool
        self.pool_total = int(pool.sum())
        counterparty = pool_base[ent] + np.floor(pool[ent] * rng.random(rows) ** 2).astype(np.int64)

        direction = np.where(is_in, 0, 1).astype(np.int8)
        return _frame("transactions", {
            "enterprise_id": self.enterprise_id[ent],
            "ts": ts.view("M8[ns]"),
            "amount": amount,
            "direction": _strings(direction, DIRECTIONS),
            "channel": _strings(channel, CHANNELS),
            "counterparty": counterparty,
        })

    # ---- public records ------------------------------------------------------------------
    def _event_cells(self, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Bernoulli events per enterprise-month (rate per full month): (enterprise, month, day)."""
        frac = self.avail_days / self.month_len_d
        hit = self.rng.random(rate.shape) < np.minimum(rate * frac[None, :], 1.0)
        ent, month = np.nonzero(hit)
        days = self.month_start_d[month] + np.floor(
            self.rng.random(ent.size) * self.avail_days[month]).astype(np.int64)
        return ent, month, days

    def _registration_events(self) -> pd.DataFrame:
        rng, r = self.rng, self.risk
        parts = []
        rep_ent, _, rep_day = self._event_cells(0.0025 * np.exp(0.35 * r))
        parts.append((rep_ent, rep_day, np.full(rep_ent.size, 0), np.full(rep_ent.size, np.nan)))
        lst_ent, _, lst_day = self._event_cells(0.0008 * np.exp(0.9 * r))
        parts.append((lst_ent, lst_day, np.full(lst_ent.size, 1), np.full(lst_ent.size, np.nan)))
        removed = rng.random(lst_ent.size) < 0.55
        rem_day = lst_day + rng.integers(60, 541, lst_ent.size)
        keep = removed & (rem_day <= self.extraction_d)
        parts.append((lst_ent[keep], rem_day[keep], np.full(int(keep.sum()), 2),
                      np.full(int(keep.sum()), np.nan)))
        pen_ent, _, pen_day = self._event_cells(0.0012 * np.exp(0.6 * r))
        pen_amt = np.round(np.clip(np.exp(np.log(5000.0) + 0.3 * self.size[pen_ent]
                                          + rng.normal(0.0, 1.0, pen_ent.size)), 100.0, 1e9), -1)
        parts.append((pen_ent, pen_day, np.full(pen_ent.size, 3), pen_amt))

        ent = np.concatenate([p[0] for p in parts])
        day = np.concatenate([p[1] for p in parts])
        kind = np.concatenate([p[2] for p in parts])
        amount = np.concatenate([p[3] for p in parts]).astype(np.float64)
        order = np.lexsort((kind, day, ent))
        return _frame("registration_events", {
            "enterprise_id": self.enterprise_id[ent[order]],
            "event_date": _ns(day[order]),
            "kind": _strings(kind[order], REGISTRATION_EVENT_KINDS),
            "amount": amount[order],
        })

    def _court_cases(self) -> pd.DataFrame:
        rng = self.rng
        ent, month, filed = self._event_cells(0.0014 * np.exp(0.8 * self.risk))
        r = self.risk[ent, month]
        amount = np.round(np.clip(np.exp(np.log(8.0e4) + 0.5 * self.size[ent]
                                         + rng.normal(0.0, 1.0, ent.size)), 500.0, 1e10), -1)
        dishonest = rng.random(ent.size) < _sigmoid(-2.8 + 0.9 * r)
        duration = np.maximum(1, np.round(np.exp(np.log(200.0) + rng.normal(0.0, 0.7, ent.size))))
        closed = filed + duration.astype(np.int64)
        open_ = closed > self.extraction_d
        order = np.lexsort((ent, filed))
        closed_ns = _ns(closed[order])
        closed_ns[open_[order]] = np.datetime64("NaT")
        return _frame("court_cases", {
            "case_id": self.offsets.case + np.arange(1, ent.size + 1, dtype=np.int64),
            "enterprise_id": self.enterprise_id[ent[order]],
            "filed_date": _ns(filed[order]),
            "closed_date": closed_ns,
            "amount": amount[order],
            "dishonest_debtor": dishonest[order],
        })

    def _environment_checks(self) -> pd.DataFrame:
        inspected = np.array([_INDUSTRY[i][7] for i in INDUSTRIES])[self.ind]
        rate = np.where(inspected, 0.12, 0.01)[:, None] * np.ones((1, self.n_months))
        ent, month, day = self._event_cells(rate)
        passed = self.rng.random(ent.size) < _sigmoid(2.2 - 0.9 * self.risk[ent, month])
        order = np.lexsort((day, ent))
        return _frame("environment_checks", {
            "enterprise_id": self.enterprise_id[ent[order]],
            "check_date": _ns(day[order]),
            "passed": passed[order],
        })

    # ---- officer-compiled statements ---------------------------------------------------------
    def _financial_statements(self) -> pd.DataFrame:
        rng, n = self.rng, self.n
        tx_months = self.inflow_volume.shape[1]
        years = []
        for year in np.unique(self.year[:tx_months]):
            idx = np.nonzero(self.year[:tx_months] == year)[0]
            if idx.size == 12 and np.datetime64(f"{year}-12-31", "D") <= self.extraction_d:
                years.append((int(year), idx))
        has_any = rng.random(n) < np.array([_LEGAL[f][3] for f in LEGAL_FORMS])[self.lf]
        inv_ratio = np.array([_INDUSTRY[i][8] for i in INDUSTRIES])[self.ind]
        cols: dict[str, list[np.ndarray]]
        ents, period, cols = [], [], {k: [] for k in ("revenue", "assets", "liabilities",
                                                     "inventory", "receivables", "net_profit")}
        for year, idx in years:
            present = has_any & (rng.random(n) < 0.85)
            e = np.nonzero(present)[0]
            k = e.size
            r_y = self.risk[e][:, idx].mean(axis=1)
            revenue = self.inflow_volume[e][:, idx].sum(axis=1) * np.exp(rng.normal(0.0, 0.25, k))
            assets = revenue * np.exp(np.log(0.9) + 0.1 * self.size[e] + rng.normal(0.0, 0.35, k))
            leverage = 1.25 * _sigmoid(-0.6 + 0.7 * r_y + rng.normal(0.0, 0.6, k))
            margin = 0.07 - 0.045 * r_y + rng.normal(0.0, 0.04, k)
            inventory = revenue * inv_ratio[e] * np.exp(rng.normal(0.0, 0.3, k))
            receivables = revenue * 0.12 * np.exp(0.1 * r_y + rng.normal(0.0, 0.35, k))
            ents.append(e)
            period.append(np.full(k, np.datetime64(f"{year}-12-31", "D")))
            cols["revenue"].append(revenue)
            cols["assets"].append(assets)
            cols["liabilities"].append(assets * leverage)
            cols["inventory"].append(inventory)
            cols["receivables"].append(receivables)
            cols["net_profit"].append(revenue * margin)
        e = np.concatenate(ents) if ents else np.zeros(0, dtype=np.int64)
        p = np.concatenate(period) if period else np.zeros(0, dtype="M8[D]")
        order = np.lexsort((p, e))
        out: dict[str, object] = {"enterprise_id": self.enterprise_id[e[order]], "period_end": _ns(p[order])}
        for name, parts in cols.items():
            v = np.concatenate(parts) if parts else np.zeros(0)
            lo = -1e10 if name == "net_profit" else 0.0
            out[name] = np.round(np.clip(v, lo, 1e10), -2)[order]
        return _frame("financial_statements", out)

    # ---- loans, truth and repayments ---------------------------------------------------------
    def _loans(self) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
        rng, n = self.rng, self.n
        per_ent = rng.poisson(2.0, n)
        ent = np.repeat(np.arange(n), per_ent)
        L = ent.size
        start_d = np.datetime64(self.start.date(), "D")
        window = int(np.asarray(self.last_application_d - start_d).astype(np.int64))
        app = start_d + rng.integers(0, window + 1, L)
        month = (app.astype("M8[M]") - self.months[0]).astype(np.int64)

        product_p = np.array([_PRODUCT_P[f] for f in LEGAL_FORMS])[self.lf[ent]]
        product = _choice(rng, product_p)
        joint_p = PRODUCTS.index("joint_guarantee_group")
        micro_p = PRODUCTS.index("micro")

        # joint-guarantee groups: 3-5 loans of different enterprises applied in the same month
        group = np.full(L, -1, dtype=np.int64)
        joint = np.nonzero(product == joint_p)[0]
        joint = joint[np.lexsort((rng.random(joint.size), month[joint]))]
        _, first = np.unique(ent[joint] * self.n_months + month[joint], return_index=True)
        single = np.zeros(joint.size, dtype=bool)
        single[first] = True
        product[joint[~single]] = micro_p  # one joint loan per enterprise and month
        joint = joint[single]
        joint = joint[np.lexsort((rng.random(joint.size), month[joint]))]
        next_group = 0
        bounds = np.flatnonzero(np.diff(month[joint])) + 1
        for members in np.split(joint, bounds):
            k = members.size
            if k < 3:
                product[members] = micro_p
                continue
            g = int(np.clip(round(k / 4), -(-k // 5), k // 3))
            extra = np.bincount(rng.permutation(np.repeat(np.arange(g), 2))[: k - 3 * g], minlength=g)
            sizes = 3 + extra
            group[members] = next_group + np.repeat(np.arange(g), sizes)
            next_group += g

        guarantee = np.empty(L, dtype=np.int64)
        is_joint = product == joint_p
        guarantee[is_joint] = GUARANTEE_TYPES.index("joint_group")
        other = np.nonzero(~is_joint)[0]
        g_p = np.array([_GUARANTEE_P.get(p, (1.0, 0.0, 0.0)) for p in PRODUCTS])[product[other]]
        guarantee[other] = _choice(rng, g_p)  # codes 0..2 = unsecured, third_party, collateral

        term = np.empty(L, dtype=np.int64)
        for code, name in enumerate(PRODUCTS):
            sel = np.nonzero(product == code)[0]
            choices, p = _TERMS[name]
            term[sel] = rng.choice(np.array(choices), size=sel.size, p=p)

        r_app = self.risk[ent, month]
        macro_app = self.macro[month]
        prod_amount = np.array([_PRODUCT_AMOUNT[p] for p in PRODUCTS])[product]
        amount = np.exp(np.log(3.0e5) + 0.9 * self.size[ent] + prod_amount + rng.normal(0.0, 0.6, L))
        amount = np.clip(np.round(amount, -3), 2.0e4, 5.0e6)

        perceived = 0.8 * (r_app + rng.normal(0.0, 0.6, L)) - 0.5
        rate = (0.045 + 0.07 * _sigmoid(perceived)
                + np.array([_GUARANTEE_RATE[g] for g in GUARANTEE_TYPES])[guarantee]
                - 0.012 * (product == PRODUCTS.index("preferential")))
        rate = np.round(np.clip(rate, 0.04, 0.12), 4)

        n_groups = next_group
        group_shock = rng.normal(0.0, _GROUP_SHOCK_SD, max(n_groups, 1))
        shock = np.where(group >= 0, group_shock[np.maximum(group, 0)], 0.0)
        logit_rest = (_PD_SLOPE * r_app
                      + np.array([_PRODUCT_LOGIT[p] for p in PRODUCTS])[product]
                      + np.array([_GUARANTEE_LOGIT[g] for g in GUARANTEE_TYPES])[guarantee]
                      + shock + _PD_DOWNTURN * macro_app)
        lo, hi = -20.0, 10.0  # solve mean(sigmoid(a + rest)) = TARGET_MEAN_PD by bisection
        for _ in range(80):
            mid = (lo + hi) / 2
            if _sigmoid(mid + logit_rest).mean() < TARGET_MEAN_PD:
                lo = mid
            else:
                hi = mid
        true_pd = _sigmoid((lo + hi) / 2 + logit_rest)
        defaulted = rng.random(L) < true_pd
        # month (after application) in which days past due reach 90
        month_90 = 3 + np.floor(rng.random(L) * (np.minimum(PERFORMANCE_MONTHS, term) - 2)).astype(np.int64)
        late_prone = rng.random(L) < _sigmoid(-1.8 + 0.6 * r_app)

        # loan ids in application order (within the block; blocks follow one another)
        order = np.lexsort((np.arange(L), ent, app))
        loan_id = self.offsets.loan + np.arange(1, L + 1, dtype=np.int64)
        g_sorted = group[order]
        has_group = g_sorted >= 0
        # renumber groups by first appearance in loan order
        uniq, first_pos = np.unique(g_sorted[has_group], return_index=True)
        rank = np.empty(uniq.size, dtype=np.int64)
        rank[np.argsort(first_pos)] = np.arange(1, uniq.size + 1)
        group_id = np.zeros(L, dtype=np.int64)
        group_id[has_group] = self.offsets.group + rank[np.searchsorted(uniq, g_sorted[has_group])]
        self.n_groups = int(uniq.size)

        loans = _frame("loans", {
            "loan_id": loan_id,
            "enterprise_id": self.enterprise_id[ent[order]],
            "application_date": _ns(app[order]),
            "product": _strings(product[order], PRODUCTS),
            "guarantee_type": _strings(guarantee[order], GUARANTEE_TYPES),
            "amount": amount[order].astype(np.float64),
            "term_months": term[order],
            "rate": rate[order].astype(np.float64),
            "group_id": _nullable_int(group_id, ~has_group),
        })
        truth = pd.DataFrame({
            "loan_id": loan_id,
            "true_pd": true_pd[order].astype(np.float64),
            "defaulted": defaulted[order].astype(bool),
        })
        state = {
            "loan_id": loan_id,
            "app": app[order],
            "term": term[order],
            "defaulted": defaulted[order],
            "month_90": month_90[order],
            "late_prone": late_prone[order],
            "amount": amount[order].astype(np.float64),
            "rate": rate[order].astype(np.float64),
            "guarantee": guarantee[order],
            "ent": ent[order],
        }
        return loans, truth, state

    def _security(self, loans: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Collateral items of the collateralised loans (1-2 items, together worth about 1.3x the amount)
        and the guarantor of each third-party-guaranteed loan: another enterprise of the block with a
        higher id, so guarantees never run in a circle (the last enterprise's loans go without one)."""
        rng = self.security_rng if self.security_rng is not None else np.random.default_rng(0)
        gt = loans["guarantee_type"].astype(object).to_numpy()
        sec = np.flatnonzero(gt == "collateral")
        items = 1 + (rng.random(sec.size) < 0.35).astype(np.int64)
        idx = np.repeat(sec, items)
        p = np.array([_COLLATERAL_P.get(c, 0.0) for c in COLLATERAL_TYPES])
        kind = _choice(rng, np.broadcast_to(p / p.sum(), (idx.size, p.size)))
        amount = loans["amount"].to_numpy()[idx]
        value = np.round(amount * np.exp(np.log(1.3) + rng.normal(0.0, 0.35, idx.size)) / items.repeat(items), -3)
        collateral = _frame("collateral", {
            "loan_id": loans["loan_id"].to_numpy()[idx],
            "collateral_type": _strings(kind, COLLATERAL_TYPES),
            "value": np.maximum(value, 1000.0).astype(np.float64),
        })
        third = np.flatnonzero(gt == "third_party")
        borrower = loans["enterprise_id"].to_numpy()[third] - self.offsets.enterprise - 1  # index in the block
        room = self.n - 1 - borrower
        has = room > 0
        third, borrower, room = third[has], borrower[has], room[has]
        guarantor = borrower + 1 + np.floor(rng.random(third.size) * room).astype(np.int64)
        guarantees = _frame("guarantees", {
            "loan_id": loans["loan_id"].to_numpy()[third],
            "guarantor_id": self.enterprise_id[guarantor],
        })
        return collateral, guarantees

    def _repayments(self, s: dict[str, Any]) -> pd.DataFrame:
        rng = self.rng
        # month_90 <= term, so every defaulted loan's schedule already reaches 90 DPD
        k_max = np.maximum(s["term"], np.where(s["defaulted"], s["month_90"], 0))
        idx = np.repeat(np.arange(k_max.size), k_max)
        k = np.arange(idx.size) - np.repeat(np.cumsum(k_max) - k_max, k_max) + 1
        date = _add_months(s["app"][idx], k)
        keep = date <= self.extraction_d
        idx, k, date = idx[keep], k[keep], date[keep]
        rows = idx.size
        small = rng.integers(1, 30, rows)
        dpd = np.where(s["late_prone"][idx] & (rng.random(rows) < 0.12), small, 0)
        delinquent_from = s["month_90"][idx] - 2  # 30 DPD, then 60, 90, 120, ...
        in_default = s["defaulted"][idx] & (k >= delinquent_from)
        dpd = np.where(in_default, 30 * (k - delinquent_from + 1), dpd)
        s["rows"] = (idx, k, date, dpd)  # the balances follow the same schedule, row for row
        return _frame("repayments", {
            "loan_id": s["loan_id"][idx],
            "date": _ns(date),
            "days_past_due": np.minimum(dpd, 3650).astype(np.int64),
        })


    def _servicing(self, s: dict[str, Any], enterprises: pd.DataFrame
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Officers of the loans, balances and interest per instalment, write-offs and recoveries.

        Principal is repaid in equal monthly parts (等额本金); a defaulting loan stops paying at its
        first missed instalment, accrues no interest once 90 DPD (non-accrual) and is written off
        ``_WRITE_OFF_MONTHS`` later, its balance then leaving the book; a share of it (by guarantee)
        is recovered ``_RECOVERY_MONTHS`` after that.  Interest of a month is the opening balance
        times the loan's own rate / 12 (the price of the day).  Draws come from ``servicing_rng``."""
        rng = self.servicing_rng
        officer_id, officer_team = self.roster
        # each enterprise is served by one officer of its industry's team (any officer if no team)
        team_of_ind = np.array([TEAMS.index(_TEAM_OF[i]) if _TEAM_OF.get(i) in TEAMS else -1
                                for i in INDUSTRIES])[self.ind]
        ent_officer = np.empty(self.n, dtype=np.int64)
        for t in range(-1, len(TEAMS)):
            members = np.nonzero(team_of_ind == t)[0]
            pool = officer_id if t < 0 else officer_id[officer_team == t]
            if members.size and pool.size:
                ent_officer[members] = pool[rng.integers(0, pool.size, members.size)]
        amount, rate, term = s["amount"], s["rate"], s["term"]
        idx, k, date, dpd = s["rows"]
        paid_through = np.where(s["defaulted"], s["month_90"] - 3, term)  # last instalment paid
        wo_k = np.where(s["defaulted"], s["month_90"] + _WRITE_OFF_MONTHS, np.iinfo(np.int64).max // 2)
        wo_date = _add_months(s["app"], np.where(s["defaulted"], wo_k, 0))
        written_off = s["defaulted"] & (wo_date <= self.extraction_d)
        principal = amount / term
        frozen = amount - principal * paid_through  # balance once payments stop
        opening = amount[idx] - principal[idx] * np.minimum(k - 1, paid_through[idx])
        balance = amount[idx] - principal[idx] * np.minimum(k, paid_through[idx])
        balance = np.where(written_off[idx] & (k >= wo_k[idx]), 0.0, np.maximum(balance, 0.0))
        interest = np.where(dpd >= 90, 0.0, opening * rate[idx] / 12.0)
        rec_rate = np.array([_RECOVERY_RATE[g] for g in GUARANTEE_TYPES])[s["guarantee"]]
        rec_rate = np.clip(rec_rate * rng.uniform(0.5, 1.5, rate.size), 0.0, 1.0)
        rec_date = _add_months(s["app"], np.where(s["defaulted"], wo_k + _RECOVERY_MONTHS, 0))
        recovered = written_off & (rec_date <= self.extraction_d)
        wo_amount = np.round(frozen, 2)
        accounts = _frame("loan_accounts", {
            "loan_id": s["loan_id"],
            "officer_id": ent_officer[s["ent"]],
            "written_off_date": pd.array(np.where(written_off, _ns(wo_date), np.datetime64("NaT", "ns"))),
            "written_off_amount": np.where(written_off, wo_amount, np.nan),
            "recovered_date": pd.array(np.where(recovered, _ns(rec_date), np.datetime64("NaT", "ns"))),
            "recovered_amount": np.where(recovered, np.round(wo_amount * rec_rate, 2), np.nan),
        })
        balances = _frame("balances", {
            "loan_id": s["loan_id"][idx],
            "date": _ns(date),
            "balance": np.round(balance, 2),
            "interest": np.round(interest, 2),
        })
        return accounts, balances


# --- writing ------------------------------------------------------------------------------------


def write_world(world: World, out_dir: str | Path, *, force: bool = False) -> Path:
    """Write ``<table>.parquet`` per canonical table, ``_truth/loan_truth.parquet`` and the declared
    extraction date ``_dataset.json``.

    Files are written into a staging directory beside ``out_dir`` which is then renamed, so a
    failure leaves nothing half-written.  ``out_dir`` must be absent, empty or an earlier output of
    creditmodel (``creditmodel.outputs``: anything else raises ConfigError and is left untouched).
    """
    missing = [name for name in TABLES if name not in world.tables]
    if missing:
        raise ValueError(f"world.tables lacks {missing}: expected every table of schema.TABLES")
    with Output(out_dir, kind="dir", command="synth", force=force, label="out_dir") as output:
        tmp = output.tmp
        for name in TABLES:
            world.tables[name].to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / TRUTH_DIR).mkdir()
        world.truth.to_parquet(tmp / TRUTH_DIR / TRUTH_FILE, index=False)
        write_dataset_info(tmp, world.extraction_date)
    return Path(out_dir)


class _ParquetSink:
    """One parquet file written a row group at a time; frames are buffered up to a row group.

    Frames are turned into arrow tables on the caller's thread; the parquet encoding and the
    file writes run through ``submit`` (one background thread, in submission order).
    """

    def __init__(self, path: Path, submit: Callable[..., Future]) -> None:
        self.path = path
        self.submit = submit
        self.schema: pa.Schema | None = None
        self.writer: pq.ParquetWriter | None = None
        self.buffer: list[pa.Table] = []
        self.buffered = 0

    def add(self, df: pd.DataFrame) -> list[Future]:
        table = pa.Table.from_pandas(df, schema=self.schema, preserve_index=False)
        if self.schema is None:
            self.schema = table.schema
        self.buffer.append(table)
        self.buffered += table.num_rows
        return self.flush() if self.buffered >= _ROW_GROUP_ROWS else []

    def flush(self) -> list[Future]:
        if not self.buffer:
            return []
        table = pa.concat_tables(self.buffer)
        self.buffer, self.buffered = [], 0
        return [self.submit(self._write, table)]

    def close(self) -> list[Future]:
        return [*self.flush(), self.submit(self._close)]

    def _write(self, table: pa.Table) -> None:
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.path, self.schema, compression="snappy")
        self.writer.write_table(table, row_group_size=_ROW_GROUP_ROWS)

    def _close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def write_world_partitioned(
    out_dir: str | Path,
    n_enterprises: int,
    seed: int = 0,
    *,
    chunk_enterprises: int = 50_000,
    start: str = "2019-01-01",
    extraction_date: str = "2025-06-30",
    transaction_density: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
    force: bool = False,
) -> Path:
    """Generate the world of ``generate_world(n_enterprises, seed, ...)`` straight to parquet.

    The world is generated block by block (``BLOCK_ENTERPRISES``) and never held whole: while
    one block is drawn, the previous one is encoded and written by a background thread, so
    memory is bounded by about two blocks of frames plus one chunk of the small tables, not by
    ``n_enterprises``.  Layout of ``out_dir``:

    * ``transactions/`` and ``repayments/`` (``PARTITIONED_TABLES``): ``part-00000.parquet``,
      ``part-00001.parquet``, ... one part per chunk of about ``chunk_enterprises`` enterprises
      (rounded down to whole blocks, at least one block);
    * every other canonical table as one ``<table>.parquet`` (a row group per chunk);
    * ``_truth/loan_truth.parquet``; ``_dataset.json`` (the extraction date).

    ``creditmodel.data.io.read_tables`` reads both forms.  Reading the directory back gives the
    frames of ``generate_world`` with the same arguments, whatever ``chunk_enterprises``.  Files
    are written into a staging directory beside ``out_dir`` which is renamed at the end, so a
    failure leaves nothing behind; ``out_dir`` must be absent, empty or an earlier output of
    creditmodel (see ``write_world``).
    ``progress(chunks_done, chunks_total)`` is called after each chunk when given.
    """
    plan = _plan(n_enterprises, seed, start, extraction_date, transaction_density)
    if (isinstance(chunk_enterprises, bool) or not isinstance(chunk_enterprises, (int, np.integer))
            or chunk_enterprises < 1):
        raise _config_error("chunk_enterprises", chunk_enterprises, "positive_integer")
    blocks_per_chunk = max(1, int(chunk_enterprises) // BLOCK_ENTERPRISES)
    n_blocks = len(plan.block_sizes)
    n_chunks = -(-n_blocks // blocks_per_chunk)

    output = Output(out_dir, kind="dir", command="synth", force=force, label="out_dir")
    tmp = output.tmp
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="write_world")
    single = {name: _ParquetSink(tmp / f"{name}.parquet", pool.submit) for name in TABLES
              if name not in PARTITIONED_TABLES}
    single["_truth"] = _ParquetSink(tmp / TRUTH_DIR / TRUTH_FILE, pool.submit)
    sinks = list(single.values())
    parts: dict[str, _ParquetSink] = {}
    pending: list[Future] = []  # writes of the previous block, overlapping this block's draws
    try:
        for name in PARTITIONED_TABLES:
            (tmp / name).mkdir()
        pending += single["officers"].add(_officers_frame(plan.n))  # the unit's roster, world-wide
        for b, (tables, truth) in enumerate(plan.blocks()):
            chunk = b // blocks_per_chunk
            if not parts:
                parts = {name: _ParquetSink(tmp / name / PART_FILE.format(chunk), pool.submit)
                         for name in PARTITIONED_TABLES}
                sinks.extend(parts.values())
            submitted: list[Future] = []
            for name, df in tables.items():
                submitted += (parts[name] if name in parts else single[name]).add(df)
            submitted += single["_truth"].add(truth)
            del tables, truth
            end_of_chunk = (b + 1) % blocks_per_chunk == 0 or b + 1 == n_blocks
            if end_of_chunk:
                for sink in parts.values():
                    submitted += sink.close()
                parts = {}
                for sink in single.values():
                    submitted += sink.flush()
            for future in pending:  # at most one block is being written while the next is drawn
                future.result()
            pending = submitted
            if end_of_chunk and progress is not None:
                for future in pending:  # report a chunk once it is on disk
                    future.result()
                progress(chunk + 1, n_chunks)
        for sink in single.values():
            pending += sink.close()
        for future in pending:
            future.result()
        write_dataset_info(tmp, plan.extraction)
        output.commit()
    except BaseException:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True)
        for sink in sinks:
            try:
                sink._close()
            except Exception:  # noqa: BLE001 - cleaning up after the real error
                pass
        output.discard()
        raise
    finally:
        pool.shutdown(wait=True)
    return Path(out_dir)
