"""Top-3 adverse reasons per row: LightGBM's pred_contrib against the tabulated, vectorised TreeSHAP of
`creditmodel.validation.treeshap`, on the same rows of a trained model, with the values compared.

Trains the main job's model on a synthetic world (private MLflow store in a temporary directory)
unless `--run-dir` names an existing run's output directory (its bundle and features.parquet), tiles
the feature matrix to `--rows`, then times, on the same rows: pred_contrib with 1 thread and with
all threads, TreeShap's one-off tabulation and its values, and the top-3 selection on each. Prints
one JSON object, including the largest absolute difference of the values and whether the top-3
features are the same on every row.

    .venv/bin/python benchmarks/bench_reasons.py --rows 20000 100000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def top3(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-values, axis=1, kind="mergesort")[:, :3]
    return order, np.take_along_axis(values, order, axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[20000])
    ap.add_argument("--run-dir", type=Path, help="an existing run's output directory")
    ap.add_argument("--enterprises", type=int, default=3000)
    args = ap.parse_args()

    from creditmodel.export.bundle import load_bundle
    from creditmodel.validation.treeshap import TreeShap

    out = args.run_dir
    if out is None:
        from creditmodel.config import build_config
        from creditmodel.pipeline import run_pipeline

        root = Path(tempfile.mkdtemp(prefix="bench_reasons"))
        config = build_config({"output_dir": str(root / "out"), "synthetic": {"enterprises": args.enterprises},
                               "segments": {"enabled": False}})
        run_pipeline(config, tracking_uri=f"sqlite:///{root / 'mlflow.db'}", progress=lambda msg: None)
        out = root / "out"
    bundle = load_bundle(out / "bundle", allow_unsigned=True)
    base = bundle.schema.encode(pd.read_parquet(out / "features.parquet")).astype(np.float64)
    booster = bundle.booster
    shap, build_s = timed(TreeShap, booster)
    results = []
    for rows in args.rows:
        X = np.vstack([base] * int(np.ceil(rows / len(base))))[:rows]
        ref1, contrib_1 = timed(booster.predict, X, pred_contrib=True, num_threads=1)
        ref, contrib_all = timed(booster.predict, X, pred_contrib=True)
        values, fast_s = timed(shap.values, X)
        (o_ref, v_ref), top_ref_s = timed(top3, ref[:, :-1])
        (o_fast, v_fast), top_fast_s = timed(top3, values)
        results.append({
            "rows": rows, "pred_contrib_1_thread_s": round(contrib_1, 3),
            "pred_contrib_all_threads_s": round(contrib_all, 3), "treeshap_s": round(fast_s, 3),
            "top3_select_s": round(top_fast_s, 3),
            "speedup_vs_1_thread": round((contrib_1 + top_ref_s) / (fast_s + top_fast_s), 2),
            "speedup_vs_all_threads": round((contrib_all + top_ref_s) / (fast_s + top_fast_s), 2),
            "rows_per_s_treeshap": round(rows / (fast_s + top_fast_s)),
            "rows_per_s_pred_contrib": round(rows / (contrib_all + top_ref_s)),
            "max_abs_diff_values": float(np.max(np.abs(values - ref[:, :-1]))),
            "max_abs_diff_1_thread": float(np.max(np.abs(ref1 - ref))),
            "top3_features_identical": bool((o_fast == o_ref).all()),
            "top3_max_abs_diff": float(np.max(np.abs(v_fast - v_ref))),
        })
    print(json.dumps({"benchmark": "reasons_top3", "trees": booster.num_trees(), "features": base.shape[1],
                      "tabulated_leaves": len(shap.leaves), "tabulate_s": round(build_s, 3),
                      "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                  "load_avg_1m_at_end": round(os.getloadavg()[0], 2)},
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
