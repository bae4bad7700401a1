"""Re-rating the live book as of a date with a bundle's features: the training catalogue's SQL,
point in time, with the as-of date as every loan's decision date; grade migration since origination.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from creditmodel.data.dictionary import DataDictionary
from creditmodel.data.parquet_table import is_parquet_table
from creditmodel.data.schema import TABLES
from creditmodel.exceptions import DataContractError
from creditmodel.features.build import available_features, build_features, check_lanes
from creditmodel.features.catalogue import catalogue
from creditmodel.priority import lower_thread_priority
from creditmodel.texts import Phrase

__all__ = ["CHUNK_ROWS", "N_REASONS", "OriginationFeatures", "as_of_tables", "migration_matrix", "migration_summary",
           "rerate"]

N_REASONS = 3
REASONS = ("moves", "all")  # whose reason codes a re-rating gives: loans whose grade moved, or every loan


def as_of_tables(tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Every table restricted to rows dated on or before ``as_of`` (its event date): nothing later is read.
    A table with nothing later is passed on as it is (no copy), so a second cut costs one comparison; a
    :class:`~creditmodel.data.parquet_table.ParquetTable` is cut where DuckDB reads it."""
    out = {}
    for name, df in tables.items():
        spec = TABLES.get(name)
        if df is None or spec is None or spec.event_date is None:
            out[name] = df
        elif is_parquet_table(df):  # a table left in its files: the cut is a condition on the read
            out[name] = df.cut(as_of)
        else:
            keep = (df[spec.event_date] < as_of + pd.Timedelta(days=1)).to_numpy()
            # the rows by position: the same frame as a boolean mask gives, in a third of its time at 25M rows
            out[name] = df if keep.all() else df.take(np.flatnonzero(keep))
    return out


def _features(bundle: Any, tables: Mapping[str, pd.DataFrame], apps: pd.DataFrame,
              dictionary: DataDictionary | None, lanes: int = 1) -> pd.DataFrame:
    names = list(bundle.schema.names)
    cat = catalogue(dictionary)
    known = {f.name for f in cat}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise DataContractError.of("error.rerate.not_in_catalogue", name=unknown[0])
    kept, missing = available_features(dict(tables), cat)
    lacking = [n for n in names if n not in {f.name for f in kept}]
    if lacking:
        raise DataContractError.of("error.rerate.cannot_provide", name=lacking[0],
                                   sources=", ".join(missing) or Phrase("error.rerate.no_sources"))
    frame = build_features(dict(tables), apps, features=cat, lanes=lanes)
    ids = pd.Index(frame["loan_id"])
    if not ids.is_unique:  # a loan asked for twice: every pairing, as a lookup by label gives it
        return frame.set_index("loan_id").loc[apps["loan_id"].to_numpy(), names].reset_index()
    # the rows in the order of `apps` by position: one copy of the features (a lookup by label makes two)
    at = ids.get_indexer(apps["loan_id"].to_numpy())
    if (at < 0).any():  # the catalogue gives a row per application: a loan without one is a fault, not a row
        raise KeyError(f"loan {apps['loan_id'].to_numpy()[int(np.argmax(at < 0))]!r}: no row in the feature build")
    return frame.iloc[at, [frame.columns.get_loc(c) for c in ("loan_id", *names)]].reset_index(drop=True)


CHUNK_ROWS = 125_000  # rows per catalogue query of a monitoring run: bounds its memory on a large book
# a chunk's query in two lanes side by side (build_features: the transaction sources and the others, the
# same values): the queries use the second core part of the time, and the chunk bounds what they hold at once
LANES = 2


class OriginationFeatures:
    """The bundle's PDs of loans at their own decision dates, each loan built and scored once:
    re-rating, the backtest and the stability of one monitoring date share them (a loan's features at
    its decision date read nothing later, so any cut at or after it gives the same). :meth:`build`
    also rates the open book as of the monitoring date in the same catalogue queries, so the run builds
    and scores every row once.

    The features themselves are kept only for the loans named by ``keep`` (the stability samples
    read them); the open book's rating as of the date keeps its PDs and reason codes. The rows are
    built in chunks of whole borrowers (``chunk_rows``), so a run's memory does not grow with the book, each
    chunk's query in ``lanes`` (see ``build_features``)."""

    def __init__(self, bundle: Any, tables: Mapping[str, pd.DataFrame], dictionary: DataDictionary | None = None,
                 *, chunk_rows: int = CHUNK_ROWS, reasons: str = "moves", lanes: int = LANES):
        if reasons not in REASONS:
            raise ValueError(f"reasons {reasons!r}: expected one of {', '.join(REASONS)}")
        check_lanes(lanes)  # refused here, not at the first chunk's query
        self.bundle, self.tables, self.dictionary, self.chunk_rows = bundle, tables, dictionary, int(chunk_rows)
        self.lanes = int(lanes)  # build_features' lanes of each chunk's query (the same values either way)
        self.reasons = reasons  # whose reason codes the open book's rating gives: loans whose grade moved, or all
        # pieces of: features at origination by loan_id (kept loans), PD at origination by loan_id (loans
        # scored so far), PD and reason codes as of `as_of` by loan_id; joined when read (see _joined)
        self._pieces: dict[str, list[Any]] = {"frame": [], "pds": [], "pd_now": [], "reasons_now": []}
        self.as_of: pd.Timestamp | None = None  # the date of the open book's rating
        self.rows_built = 0  # catalogue rows built by `build` (both dates)

    def _joined(self, name: str) -> Any:
        pieces = self._pieces[name]
        if len(pieces) > 1:  # joined once, when read: a chunk at a time, they are only appended
            pieces[:] = [pd.concat(pieces)]
        return pieces[0] if pieces else None

    @property
    def frame(self) -> pd.DataFrame | None:
        return self._joined("frame")

    @property
    def pds(self) -> pd.Series | None:
        return self._joined("pds")

    @property
    def pd_now(self) -> pd.Series | None:
        return self._joined("pd_now")

    @property
    def reasons_now(self) -> pd.DataFrame | None:
        return self._joined("reasons_now")

    def _held(self) -> pd.Index:
        """The loan ids whose features are kept, in the pieces' order, without joining the pieces."""
        pieces = self._pieces["frame"]
        if len(pieces) == 1:
            return pieces[0].index
        return pd.Index(np.concatenate([p.index.to_numpy() for p in pieces]) if pieces else [])

    def _missing(self, apps: pd.DataFrame) -> pd.DataFrame:
        return apps[~apps["loan_id"].isin(self._held())].drop_duplicates("loan_id")

    def build(self, apps: pd.DataFrame, as_of: pd.Timestamp | None = None, book: pd.DataFrame | None = None,
              keep: Any = None) -> None:
        """PDs of ``apps`` (rows of the loans table) at their decision dates, and PDs and reason codes of
        ``book`` (rows of the loans table) as of ``as_of``; the features of the loans in ``keep``
        (loan ids; None: every loan of ``apps``) are kept for :meth:`of`. One catalogue query and one
        scoring per chunk of borrowers; a query's row key is the row's position, so a loan may appear at
        both dates."""
        have = self.pds.index if self.pds is not None else pd.Index([])
        kept = None if keep is None else pd.Index(pd.unique(np.asarray(keep)))
        todo = ~apps["loan_id"].isin(have)
        if kept is not None:  # kept loans whose features are not here yet
            todo |= apps["loan_id"].isin(kept) & ~apps["loan_id"].isin(self._held())
        then = apps[todo].drop_duplicates("loan_id")
        parts = [then.assign(_now=False, _scored=then["loan_id"].isin(have).to_numpy())]
        if book is not None and as_of is not None:
            self.as_of = pd.Timestamp(as_of).normalize()
            parts.append(book.drop_duplicates("loan_id").assign(application_date=self.as_of, _now=True, _scored=False))
        both = pd.concat(parts, ignore_index=True)
        self.rows_built += len(both)
        if both.empty:
            return
        chunks = _chunks(both, self.chunk_rows)
        if len(chunks) == 1:
            self._rate(*self._query(chunks[0]), kept)
            return
        # a chunk is scored and explained in a second thread while the next chunk's catalogue query runs
        # (its two lanes leave a core idle once the shorter one is done; the thread's lower priority keeps the
        # cores for the query, and it explains on one core); one thread in chunk order, so the results and their
        # order are those of one thread. The last chunk, with no query left to overlap, is rated here on every
        # core: a pool of threads the lower-priority thread started would keep its priority (the explainer
        # keeps its pool with the model)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rating", initializer=lower_thread_priority) as pool:
            pending: Future[None] | None = None
            for i, rows in enumerate(chunks):
                queried = self._query(rows)
                if pending is not None:
                    pending.result()
                if i + 1 < len(chunks):
                    pending = pool.submit(self._rate, *queried, kept, 1)
                else:
                    self._rate(*queried, kept)

    def _query(self, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
        """The catalogue's features of ``rows`` (which of them are rated as of the date, and were scored
        before, popped from its marks)."""
        rows = rows.copy()
        now, scored_before = rows.pop("_now").to_numpy(bool), rows.pop("_scored").to_numpy(bool)
        keys = rows["loan_id"].to_numpy()
        feats = _features(self.bundle, self.tables, rows.assign(loan_id=np.arange(len(rows))), self.dictionary,
                          lanes=self.lanes)
        feats["loan_id"] = keys
        return now, scored_before, feats

    def _rate(self, now: np.ndarray, scored_before: np.ndarray, feats: pd.DataFrame, keep: pd.Index | None,
              num_threads: int = 0) -> None:
        """Score one chunk's features, keep what the run reads later, explain the moves as of the date
        (with ``num_threads`` threads; 0: every core)."""
        keys = feats["loan_id"].to_numpy()
        pds, X = _scored(self.bundle, feats)
        then = ~now
        held = then if keep is None else then & np.isin(keys, keep)
        scored = then & ~scored_before  # a carried PD stays as it was: it is the same number
        self._add(feats[held].set_index("loan_id"), pd.Series(pds[scored], index=keys[scored]))
        if now.any():
            moved = None
            if self.reasons == "moves":  # the origination PD is carried, or built in this chunk (same borrower)
                pds_then = self.pds
                assert pds_then is not None
                moved = self.bundle.grade(pds_then.loc[keys[now]].to_numpy()) != self.bundle.grade(pds[now])
            reasons = _reasons(self.bundle, X[now], moved, num_threads)
            reasons.index = keys[now]
            self._pieces["pd_now"].append(pd.Series(pds[now], index=keys[now]))
            self._pieces["reasons_now"].append(reasons)

    def seed(self, pds: pd.Series) -> None:
        """Start from PDs at origination (by loan_id) carried from an earlier monitoring date of the same
        bundle and data (see ``monitoring.carried``): :meth:`build` then builds only the loans they lack."""
        self._pieces["pds"].append(pds)

    def _add(self, frame: pd.DataFrame, pds: pd.Series | None) -> None:
        if len(frame) or not self._pieces["frame"]:
            self._pieces["frame"].append(frame)
        if pds is not None:
            self._pieces["pds"].append(pds)

    def hold(self, apps: pd.DataFrame) -> None:
        """Build (one catalogue query) and keep the features of the loans of ``apps`` not kept yet."""
        missing = self._missing(apps)
        if len(missing):
            self._add(_features(self.bundle, self.tables, missing, self.dictionary).set_index("loan_id"), None)

    def of(self, apps: pd.DataFrame) -> pd.DataFrame:
        """loan_id and the bundle's features of ``apps`` (rows of the loans table), in their order."""
        self.hold(apps)
        return pd.DataFrame(dict(self.columns_of(apps, list(self._pieces["frame"][0].columns)))).reset_index()

    def columns_of(self, apps: pd.DataFrame, names: Sequence[str]) -> Iterator[tuple[str, pd.Series]]:
        """Each of the features ``names`` of ``apps`` (rows of the loans table, their features kept: see
        :meth:`hold`) in their order, one column at a time (index: loan_id), without joining the kept pieces
        or copying every feature at once, which on a large book's development sample are the run's largest
        objects."""
        pieces = self._pieces["frame"]
        ids = apps["loan_id"].to_numpy()
        at = self._held().get_indexer(ids)
        if (at < 0).any():
            raise KeyError(f"loan {ids[int(np.argmax(at < 0))]!r}: its features are not kept (hold it first)")
        index = pd.Index(ids, name="loan_id")
        for name in names:
            column = pieces[0][name] if len(pieces) == 1 else pd.concat([p[name] for p in pieces])
            yield name, column.take(at).set_axis(index).rename(name)

    def pd_of(self, apps: pd.DataFrame) -> np.ndarray:
        """The PD at origination of each row of ``apps`` (rows of the loans table), in their order."""
        have = self.pds.index if self.pds is not None else pd.Index([])
        todo = apps[~apps["loan_id"].isin(have)].drop_duplicates("loan_id")
        if len(todo):
            X = self.of(todo)
            self._pieces["pds"].append(pd.Series(np.asarray(self.bundle.predict_pd(X), dtype=np.float64),
                                                 index=X["loan_id"].to_numpy()))
        pds = self.pds
        assert pds is not None
        return pds.loc[apps["loan_id"].to_numpy()].to_numpy()

    def now_of(self, apps: pd.DataFrame, as_of: pd.Timestamp) -> tuple[np.ndarray, pd.DataFrame] | None:
        """PDs and reason codes of ``apps`` as of ``as_of`` when :meth:`build` rated them, else None."""
        pd_now, reasons = self.pd_now, self.reasons_now
        if pd_now is None or reasons is None or self.as_of != as_of or not apps["loan_id"].isin(pd_now.index).all():
            return None
        ids = apps["loan_id"].to_numpy()
        return pd_now.loc[ids].to_numpy(), reasons.loc[ids].reset_index(drop=True)


def _scored(bundle: Any, feats: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """PDs of rows of the bundle's features, as ``bundle.predict_pd`` gives them, and their encoded matrix
    (what the reasons explain). Rows built by the catalogue are clean: batch scoring's vectorised screen
    takes them (the same matrix); anything it flags goes to the bundle's own check, which names the value."""
    from creditmodel.service.batch import screened_pds

    pds, X = screened_pds(bundle, feats)
    return pds, X if X is not None else bundle.schema.encode(feats)


def _reasons(bundle: Any, X: np.ndarray, moved: np.ndarray | None, num_threads: int = 0) -> pd.DataFrame:
    """Reason codes of the rows of ``X`` (the encoded features) whose grade ``moved`` (all rows when None),
    their texts in English (``reason_<k>``) and in Chinese (``reason_<k>_zh``, as the officers read them);
    the other rows have none. ``num_threads``: the explainer's threads (0: every core)."""
    from creditmodel.service.scoring import FastScorer

    rows = np.ones(len(X), dtype=bool) if moved is None else np.asarray(moved, dtype=bool)
    # the rows were checked when scored: the reasons explain them without a second check
    scorer = FastScorer(bundle, num_threads=num_threads, self_check=False)
    some = scorer.reason_columns(X[rows], N_REASONS, "en", also=("zh",))
    if rows.all():
        return some
    some.index = np.flatnonzero(rows)
    return some.reindex(np.arange(len(X)))  # missing where the grade did not move, column types kept


def _chunks(rows: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    """``rows`` in pieces of whole borrowers (by enterprise id, so each query reads a contiguous range of
    a borrower-ordered table) of about ``size`` rows; one piece when they fit."""
    if len(rows) <= size:
        return [rows]
    order = rows.sort_values("enterprise_id", kind="mergesort")
    ents = order["enterprise_id"].to_numpy()
    cuts = [0]
    while cuts[-1] + size < len(order):
        at = int(np.searchsorted(ents, ents[cuts[-1] + size], side="right"))  # keep a borrower's rows together
        cuts.append(max(at, cuts[-1] + 1))
    cuts.append(len(order))
    return [order.iloc[a:b] for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def rerate(bundle: Any, tables: Mapping[str, pd.DataFrame], book: pd.DataFrame, as_of: object,
           dictionary: DataDictionary | None = None, origination: OriginationFeatures | None = None,
           reasons: str = "moves") -> pd.DataFrame:
    """PD and grade of each open loan at origination and as of the date, the notches moved (positive =
    downgrade, on the bundle's master scale) and the reason codes of the rating as of the date: of the
    loans whose grade moved (``reasons="moves"``, what the report explains) or of all. ``origination``
    shares the PDs at origination (and, when its :meth:`~OriginationFeatures.build` rated the book as
    of the date, that rating and its reasons) with the rest of a monitoring run."""
    as_of = pd.Timestamp(as_of).normalize()
    loan_columns = list(tables["loans"].columns)  # with a bank's own attributes, as in training
    apps = book[[c for c in loan_columns if c in book.columns]].copy()
    built = origination.now_of(apps, as_of) if origination is not None else None
    if built is not None:  # the run's queries and scoring: the rating as of the date is there
        assert origination is not None
        pd_now, said = built
        pd_then = origination.pd_of(apps)
    else:
        known = as_of_tables(tables, as_of)
        now = _features(bundle, known, apps.assign(application_date=as_of), dictionary)
        pd_then = origination.pd_of(apps) if origination is not None else \
            bundle.predict_pd(_features(bundle, known, apps, dictionary))
        pd_now, X_now = _scored(bundle, now)
        said = _reasons(bundle, X_now, None if reasons == "all" else bundle.grade(pd_then) != bundle.grade(pd_now))
    scale = bundle.master_scale
    names = np.asarray(scale.grades, dtype=object)
    # a grade's place on the master scale is its index there: the notches are the indices' difference
    i_then, i_now = scale.grade_index(pd_then), scale.grade_index(pd_now)
    out = pd.DataFrame({
        "loan_id": book["loan_id"].to_numpy(),
        "pd_origination": pd_then, "grade_origination": names[i_then],
        "pd_now": pd_now, "grade_now": names[i_now],
    })
    out["notches"] = i_now.astype(np.int64) - i_then.astype(np.int64)
    keep = [f"reason_{k}{x}" for x in ("", "_zh", "_feature") for k in range(1, N_REASONS + 1)]
    return pd.concat([out, said[keep].reset_index(drop=True)], axis=1)


def migration_matrix(rated: pd.DataFrame, grades: list[str]) -> pd.DataFrame:
    """Loans per (grade at origination, grade now) on the master scale's order."""
    m = pd.crosstab(pd.Categorical(rated["grade_origination"], grades),
                    pd.Categorical(rated["grade_now"], grades), dropna=False)
    m.index.name, m.columns.name = "grade_origination", "grade_now"
    return m


def migration_summary(rated: pd.DataFrame) -> dict[str, float]:
    n = len(rated)
    notches = rated["notches"].to_numpy()
    return {"loans": n,
            "share_downgraded": float(np.mean(notches > 0)) if n else float("nan"),
            "share_downgraded_2plus": float(np.mean(notches >= 2)) if n else float("nan"),
            "share_upgraded": float(np.mean(notches < 0)) if n else float("nan"),
            "mean_pd_origination": float(rated["pd_origination"].mean()) if n else float("nan"),
            "mean_pd_now": float(rated["pd_now"].mean()) if n else float("nan")}
