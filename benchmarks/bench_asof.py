"""Batch rating as of a date from the store against the offline catalogue build for the same rows.

Prints one JSON object to stdout (progress goes to stderr).

    .venv/bin/python benchmarks/bench_asof.py                               # 5,000 borrowers, density 0.14
    .venv/bin/python benchmarks/bench_asof.py --enterprises 100000 --repeats 1

A synthetic world is generated and loaded into a DuckDB store (``build_store``, not timed); a small
model is trained on the offline features of up to 5,000 of its loans and written as a bundle with its
catalogue (not timed).
The as-of date defaults to the 80th percentile of the loans' application dates. Then, ``--repeats``
times each:

* ``asof``: what `creditmodel score --store --as-of` does short of writing the file: open and check
  the store (``AsOfFeatures``), find the active book, compute every borrower's features in one query
  and score them (PD and grade);
* ``offline``: the offline catalogue build (``build_features`` on the in-memory tables, the training
  path) for the same borrowers and terms decided on the same date, then the same scoring.

Reported: the median seconds of each, the ratio asof / offline (the issue's goal: within 1.5x), the
rows, the largest PD difference between the two (0 expected), and the load average (the machine's
other work moves these numbers). Both run DuckDB on one thread (bit-stable sums).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _small_model import small_model  # beside this script


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--enterprises", type=int, default=5000)
    ap.add_argument("--density", type=float, default=0.14, help="transaction density of the world")
    ap.add_argument("--as-of", help="the date to rate as of (default: 80th percentile of application dates)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    from creditmodel.data.synthetic import generate_world
    from creditmodel.export.bundle import load_bundle, write_bundle
    from creditmodel.features.asof import AsOfFeatures
    from creditmodel.features.build import available_features, build_features
    from creditmodel.features.catalogue import CATALOGUE
    from creditmodel.features.online import build_store
    from creditmodel.service.asof import score_as_of
    from creditmodel.service.batch import score_frame

    _log(f"world of {args.enterprises} enterprises, density {args.density}")
    world = generate_world(args.enterprises, args.seed, transaction_density=args.density)
    tables = world.tables
    kept, _ = available_features(tables, CATALOGUE)
    _log("training a small model on the offline features of up to 5,000 loans (not timed)")
    loans = tables["loans"]
    frame = build_features(tables, loans.sample(min(5000, len(loans)), random_state=args.seed), features=kept)
    model, cal, scale = small_model(tables, world.extraction_date, frame, kept)
    as_of = (pd.Timestamp(args.as_of) if args.as_of else
             pd.to_datetime(tables["loans"]["application_date"]).quantile(0.8)).normalize().date()
    with tempfile.TemporaryDirectory(prefix="bench-asof-") as tmp:
        store = Path(tmp) / "store.duckdb"
        build_store(tables, store)
        write_bundle(Path(tmp) / "bundle", model, cal, scale, catalogue=kept)
        bundle = load_bundle(Path(tmp) / "bundle", allow_unsigned=True)
        names = list(bundle.schema.names)
        asof_s, offline_s, rated, offline_pd = [], [], None, None
        for i in range(args.repeats):
            _log(f"repeat {i + 1}/{args.repeats}: as of {as_of} from the store")
            t = time.perf_counter()
            with AsOfFeatures(bundle.catalogue, store) as feats:
                rated = score_as_of(bundle, feats, as_of)
            asof_s.append(time.perf_counter() - t)
            _log(f"repeat {i + 1}/{args.repeats}: offline build for the same {len(rated):,} rows")
            apps = tables["loans"].set_index("loan_id").loc[rated["loan_id"].to_numpy()].reset_index()
            t = time.perf_counter()
            off = build_features(tables, apps.assign(application_date=pd.Timestamp(as_of)), features=kept)
            off = off.set_index("loan_id").loc[apps["loan_id"].to_numpy()]
            offline_pd = score_frame(bundle, off[names])["pd"].to_numpy()
            offline_s.append(time.perf_counter() - t)
    assert rated is not None and offline_pd is not None
    a, o = float(np.median(asof_s)), float(np.median(offline_s))
    out = {"benchmark": "asof", "enterprises": args.enterprises, "density": args.density,
           "transactions": len(tables["transactions"]), "loans": len(tables["loans"]), "features": len(kept),
           "as_of": str(as_of), "rows_rated": len(rated), "repeats": args.repeats,
           "asof_store_s": round(a, 3), "offline_catalogue_build_s": round(o, 3),
           "asof_over_offline": round(a / o, 3),
           "max_abs_pd_diff": float(np.max(np.abs(rated["pd"].to_numpy() - offline_pd))) if len(rated) else 0.0,
           "load_average": os.getloadavg(), "cpus": os.cpu_count(), "python": platform.python_version()}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
