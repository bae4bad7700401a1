"""Parity of decision-time features with the offline feature matrix, over thousands of sampled loans.

Prints one JSON object to stdout (progress goes to stderr).

    .venv/bin/python benchmarks/bench_parity.py                          # 5,200 borrowers, 10,000 loans
    .venv/bin/python benchmarks/bench_parity.py --enterprises 600 --sample 500

A synthetic world is generated (``--enterprises`` borrowers, about two loans each) and loaded into a
DuckDB store (``build_store``); a small model is trained on the offline features of its loans and
written as a bundle with its catalogue. Then, for ``--sample`` loans drawn at random:

* ``offline``: the training path, ``build_features`` over the whole in-memory tables for those loans;
* ``online``: ``OnlineFeatures`` on the store, one application at a time (the loan's own amount, term,
  product, guarantee and joint-guarantee group), as of the loan's application date: what
  ``/v1/applications/score`` computes;
* ``asof`` (unless ``--no-asof``, run first): the batch path of ``creditmodel score --store --as-of``
  (``AsOfFeatures.compute_many``), one bulk query per distinct application date of the sample, each
  loan with its own terms.

Each path's features are compared cell by cell with the offline ones (floats to a relative 1e-12,
categories and nulls equal), and the bundle's PDs on each path's rows with its PDs on the offline rows
(relative 1e-12). Reported: the counts of differing cells, loans and PDs (0 expected), the largest
relative differences, the first few differences, the seconds of each path and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _small_model import small_model  # beside this script

RTOL = 1e-12


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def differences(expected: pd.DataFrame, actual: pd.DataFrame, names: list[str],
                categorical: set[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """Per row: whether any feature differs (floats beyond a relative RTOL, categories or nulls unequal);
    and the per-feature counts, largest relative float difference and a few examples."""
    bad_rows = np.zeros(len(expected), dtype=bool)
    per_feature: dict[str, int] = {}
    examples: list[dict[str, Any]] = []
    worst = 0.0
    for n in names:
        e, a = expected[n], actual[n]
        e_na, a_na = e.isna().to_numpy(), a.isna().to_numpy()
        bad = e_na != a_na
        both = ~e_na & ~a_na
        if n in categorical:
            ev, av = e.to_numpy(dtype=object), a.to_numpy(dtype=object)
            bad |= both & np.array([str(x) != str(y) for x, y in zip(ev, av)], dtype=bool)
        else:
            ev = e.to_numpy(dtype=np.float64, na_value=np.nan)
            av = a.to_numpy(dtype=np.float64, na_value=np.nan)
            with np.errstate(invalid="ignore", divide="ignore"):
                scale = np.maximum(np.abs(ev), np.abs(av))
                rel = np.where(both & (scale > 0), np.abs(av - ev) / np.where(scale > 0, scale, 1.0), 0.0)
            rel = np.where(both & ~np.isfinite(rel), np.inf, rel)  # inf vs a number
            worst = max(worst, float(np.max(rel, initial=0.0)))
            bad |= rel > RTOL
        if bad.any():
            per_feature[n] = int(bad.sum())
            for i in np.flatnonzero(bad)[:2]:
                if len(examples) < 10:
                    examples.append({"row": int(i), "feature": n, "offline": repr(e.iloc[i]), "got": repr(a.iloc[i])})
        bad_rows |= bad
    return bad_rows, {"cells": int(sum(per_feature.values())), "by_feature": per_feature,
                      "max_rel_float_diff": worst, "examples": examples}


def pd_differences(expected: np.ndarray, got: np.ndarray) -> dict[str, Any]:
    rel = np.abs(got - expected) / np.maximum(np.abs(expected), np.finfo(float).tiny)
    return {"pds": int(np.sum(~(rel <= RTOL))), "max_rel_pd_diff": float(np.max(rel, initial=0.0)),
            "max_abs_pd_diff": float(np.max(np.abs(got - expected), initial=0.0))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--enterprises", type=int, default=5200)
    ap.add_argument("--density", type=float, default=0.14, help="transaction density of the world")
    ap.add_argument("--sample", type=int, default=10_000, help="loans compared")
    ap.add_argument("--online-sample", type=int, help="of those, how many through the per-application path "
                                                      "(default: all)")
    ap.add_argument("--online-seconds", type=float, help="stop the per-application path after this many seconds "
                                                          "and compare the loans done (default: no limit)")
    ap.add_argument("--no-asof", action="store_true", help="skip the batch as-of path")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    from creditmodel.data.synthetic import generate_world
    from creditmodel.export.bundle import load_bundle, write_bundle
    from creditmodel.features.asof import AsOfFeatures
    from creditmodel.features.build import available_features, build_features
    from creditmodel.features.catalogue import CATALOGUE
    from creditmodel.features.online import OnlineFeatures, build_store

    _log(f"world of {args.enterprises} enterprises, density {args.density}")
    world = generate_world(args.enterprises, args.seed, transaction_density=args.density)
    tables = world.tables
    loans_all = tables["loans"]
    if len(loans_all) < args.sample:
        raise SystemExit(f"the world has {len(loans_all)} loans, fewer than --sample {args.sample}; "
                         f"raise --enterprises")
    kept, _ = available_features(tables, CATALOGUE)
    sample = loans_all.sample(args.sample, random_state=args.seed).reset_index(drop=True)
    n_online = min(args.online_sample or args.sample, args.sample)

    _log(f"offline: the training build for {len(sample):,} loans")
    t, c = time.perf_counter(), _cpu()
    offline = build_features(tables, sample, features=kept)
    offline_s, offline_cpu = time.perf_counter() - t, _cpu() - c
    offline = offline.set_index("loan_id").loc[sample["loan_id"].to_numpy()].reset_index()
    _log("training a small model on those rows (not timed)")
    model, cal, scale = small_model(tables, world.extraction_date, offline, kept)

    out: dict[str, Any] = {"benchmark": "parity", "load_average_at_start": os.getloadavg(),
                           "enterprises": args.enterprises, "density": args.density,
                           "loans_in_world": len(loans_all), "transactions": len(tables["transactions"]),
                           "features": len(kept), "sampled_loans": len(sample), "rtol": RTOL,
                           "offline_build": {"s": round(offline_s, 2), "cpu_s": round(offline_cpu, 2)}}
    with tempfile.TemporaryDirectory(prefix="bench-parity-") as tmp:
        store = Path(tmp) / "store.duckdb"
        build_store(tables, store)
        write_bundle(Path(tmp) / "bundle", model, cal, scale, catalogue=kept)
        bundle = load_bundle(Path(tmp) / "bundle", allow_unsigned=True)
        names = list(bundle.schema.names)
        categorical = {f.name for f in bundle.catalogue if f.is_categorical}
        for n in categorical & set(offline.columns):  # as the builders give them: objects, None for missing
            offline[n] = offline[n].astype(object).where(offline[n].notna(), None)
        offline_pd = bundle.predict_pd(offline[names])

        if not args.no_asof:
            dates = pd.to_datetime(sample["application_date"]).dt.date
            _log(f"as-of batch: {len(sample):,} loans in {dates.nunique():,} bulk queries (one per date)")
            parts = []
            t, c = time.perf_counter(), _cpu()
            with AsOfFeatures(bundle.catalogue, store) as asof:
                for d, idx in sample.groupby(dates).groups.items():
                    part = asof.compute_many(sample.loc[idx], d)
                    parts.append(part.assign(_row=np.asarray(idx)))
            asof_s, asof_cpu = time.perf_counter() - t, _cpu() - c
            batch = pd.concat(parts, ignore_index=True).sort_values("_row").reset_index(drop=True)
            bad_rows, cells = differences(offline, batch, names, categorical)
            out["asof_batch"] = {"loans": len(sample), "queries": int(dates.nunique()),
                                 "loans_differing": int(bad_rows.sum()), **cells,
                                 **pd_differences(offline_pd, bundle.predict_pd(batch[names])),
                                 "s": round(asof_s, 2), "cpu_s": round(asof_cpu, 2)}
            _log(f"as-of batch: {json.dumps(out['asof_batch'])}")  # a stop during the online path keeps this
        _log(f"online: {n_online:,} applications, one at a time, each as of its application date")
        online = OnlineFeatures(bundle.catalogue, store)
        rows, lat = [], []
        t, c = time.perf_counter(), _cpu()
        for i, loan in enumerate(sample.head(n_online).itertuples()):
            start = time.perf_counter()
            rows.append(online.features(
                loan.enterprise_id, loan.application_date, amount=loan.amount, term_months=loan.term_months,
                product=loan.product, guarantee_type=loan.guarantee_type,
                group_id=None if pd.isna(loan.group_id) else int(loan.group_id)))
            lat.append(time.perf_counter() - start)
            if (i + 1) % 500 == 0:
                _log(f"  {i + 1:,} ({(time.perf_counter() - t) / (i + 1) * 1000:.1f} ms each)")
            if args.online_seconds is not None and time.perf_counter() - t > args.online_seconds:
                _log(f"  stopped after {i + 1:,} applications (--online-seconds {args.online_seconds:g})")
                break
        online_s, online_cpu = time.perf_counter() - t, _cpu() - c
        online.close()
        got = pd.concat(rows, ignore_index=True)
        n_online = len(got)
        exp = offline.head(n_online)
        bad_rows, cells = differences(exp, got, names, categorical)
        wanted = min(args.online_sample or args.sample, args.sample)
        out["online"] = {"engine": online.engine, "loans": n_online, "stopped_by_time_limit": n_online < wanted,
                         "loans_differing": int(bad_rows.sum()), **cells,
                         **pd_differences(offline_pd[:n_online], bundle.predict_pd(got[names])),
                         "s": round(online_s, 2), "cpu_s": round(online_cpu, 2),
                         "p50_ms": round(float(np.percentile(lat, 50)) * 1000, 2),
                         "p99_ms": round(float(np.percentile(lat, 99)) * 1000, 2)}

    out.update({"load_average": os.getloadavg(), "cpus": os.cpu_count(), "python": platform.python_version(),
                "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)})
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
