"""Top-3 adverse reasons per row: LightGBM's pred_contrib against the tabulated TreeSHAP that scoring and
validation use (`creditmodel.models.treeshap.shap_values`), on the same rows of trained models.

Trains the main job's model on a synthetic world (private MLflow store in a temporary directory)
unless `--run-dir` names an existing run's output directory (its bundle and features.parquet). Besides
the run's own model (early stopping picks its trees) it trains, with `--trees N`, a LightGBM model of
the configuration's shape (7 leaves, learning rate 0.02) with exactly N trees on the run's features and
labels, the size of model a large book gives. For each model it tiles the feature matrix to `--rows`,
then times, on the same rows: pred_contrib with 1 thread and with all threads, then `shap_values` (the
tables, the tie guard and its pred_contrib for the rows it flags), each followed by the top-3
selection; and one row at a time (the service's case) with one thread: pred_contrib, the tables alone,
and `shap_values` (which takes pred_contrib for a few rows of a small forest). For the run's model it
also times the reason codes with their texts as a frame, row by row against a column at a time. CPU seconds beside wall
seconds: the machine is shared. Prints one JSON object, including the largest absolute difference of
the values and whether the top-3 features are the same on every row.

    .venv/bin/python benchmarks/bench_reasons.py --rows 20000 100000 --trees 600
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
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t, time.process_time() - c


def top3(values: np.ndarray) -> list[list[int]]:
    from creditmodel.features.reasons import top_adverse

    return top_adverse(values, 3)


def per_row(fn, X: np.ndarray, n: int) -> dict:
    """Median and p99 in microseconds of `fn` on single rows (wall), and CPU microseconds per row."""
    lat = []
    c = time.process_time()
    for i in range(n):
        row = X[i % len(X):i % len(X) + 1]
        t = time.perf_counter()
        fn(row)
        lat.append((time.perf_counter() - t) * 1e6)
    cpu = (time.process_time() - c) / n * 1e6
    return {"p50_us": round(float(np.percentile(lat, 50)), 1), "p99_us": round(float(np.percentile(lat, 99)), 1),
            "cpu_us_per_row": round(cpu, 1)}


def bench_model(name: str, booster, base: np.ndarray, rows_list: list[int], single: int) -> dict:
    from creditmodel.models.treeshap import SMALL_FOREST_NODES, TreeShap, shap_values

    shap, build_s, build_cpu = timed(TreeShap, booster)
    shap_values(booster, base[:1])  # builds the cached tables and asks the base value once
    out: dict = {"model": name, "trees": booster.num_trees(), "nodes": shap.n_nodes, "leaves": len(shap.leaves),
                 "features": base.shape[1], "features_split_on": len(shap.used),
                 "tabulate_s": round(build_s, 3), "tabulate_cpu_s": round(build_cpu, 3), "batches": []}
    for rows in rows_list:
        X = np.vstack([base] * int(np.ceil(rows / len(base))))[:rows]
        ref1, contrib_1, cpu_1 = timed(booster.predict, X, pred_contrib=True, num_threads=1)
        ref, contrib_all, cpu_all = timed(booster.predict, X, pred_contrib=True)
        top_ref, top_s, _ = timed(top3, ref[:, :-1])
        (values, _), fast_s, fast_cpu = timed(shap_values, booster, X)
        top_fast, top_fast_s, _ = timed(top3, values)
        (values_1, _), fast_1, fast_cpu_1 = timed(shap_values, booster, X, num_threads=1)
        out["batches"].append({
            "rows": rows,
            "pred_contrib_1_thread_s": round(contrib_1, 3), "pred_contrib_1_thread_cpu_s": round(cpu_1, 3),
            "pred_contrib_all_threads_s": round(contrib_all, 3), "pred_contrib_all_threads_cpu_s": round(cpu_all, 3),
            "treeshap_all_threads_s": round(fast_s, 3), "treeshap_all_threads_cpu_s": round(fast_cpu, 3),
            "treeshap_1_thread_s": round(fast_1, 3), "treeshap_1_thread_cpu_s": round(fast_cpu_1, 3),
            "top3_select_s": round(top_fast_s, 3),
            "speedup_wall_vs_pred_contrib_all_threads": round((contrib_all + top_s) / (fast_s + top_fast_s), 2),
            "speedup_wall_1_thread_vs_1_thread": round((contrib_1 + top_s) / (fast_1 + top_fast_s), 2),
            "speedup_cpu_1_thread_vs_1_thread": round(cpu_1 / fast_cpu_1, 2),
            "rows_per_s_treeshap": round(rows / (fast_s + top_fast_s)),
            "rows_per_s_pred_contrib": round(rows / (contrib_all + top_s)),
            "max_abs_diff_values": float(np.max(np.abs(values - ref[:, :-1]))),
            "max_abs_diff_values_1_thread": float(np.max(np.abs(values_1 - ref1[:, :-1]))),
            "top3_features_identical": top_fast == top_ref,
        })
    out["single_row"] = {
        "rows": single,
        "pred_contrib_1_thread": per_row(lambda r: booster.predict(r, pred_contrib=True, num_threads=1), base, single),
        "treeshap_tables_1_thread": per_row(lambda r: shap.values(r, num_threads=1), base, single),
        "shap_values_1_thread": per_row(lambda r: shap_values(booster, r, num_threads=1), base, single),
        "shap_values_uses": ("pred_contrib" if shap.n_nodes < SMALL_FOREST_NODES else "tables") + " for one row",
    }
    return out


def bench_texts(bundle, X: np.ndarray, rounds: int = 3) -> dict:
    """Top-3 reason codes with their texts as a frame (batch scoring, monitoring): row by row (a Reason per
    factor, then the frame) against a column at a time (each feature's texts once per distinct value), on
    the run's own rows, not tiled (repeated rows would repeat values, which the columns write once), in
    alternating rounds (the best of each, as the first touches of memory are costly)."""
    from creditmodel.service.scoring import FastScorer, reasons_frame

    scorer = FastScorer(bundle, num_threads=0, self_check=False)
    rows = len(X)
    best: dict[str, list[float]] = {"row_by_row": [], "columns": []}
    for _ in range(rounds):
        old, t_old, _ = timed(lambda: reasons_frame(scorer.reasons(X, 3), 3))
        new, t_new, _ = timed(scorer.reason_columns, X, 3)
        best["row_by_row"].append(t_old)
        best["columns"].append(t_new)
    return {"rows": rows, "row_by_row_s": round(min(best["row_by_row"]), 3), "columns_s": round(min(best["columns"]), 3),
            "speedup": round(min(best["row_by_row"]) / min(best["columns"]), 2), "identical": bool(old.equals(new))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[20000])
    ap.add_argument("--run-dir", type=Path, help="an existing run's output directory")
    ap.add_argument("--enterprises", type=int, default=3000)
    ap.add_argument("--trees", type=int, nargs="*", default=[], help="also a 7-leaf model with exactly these trees")
    ap.add_argument("--single-rows", type=int, default=2000, help="rows explained one at a time")
    args = ap.parse_args()

    import lightgbm as lgb

    from creditmodel.export.bundle import load_bundle

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
    features = pd.read_parquet(out / "features.parquet")
    base = bundle.schema.encode(features).astype(np.float64)
    models = [bench_model("run's model", bundle.booster, base, args.rows, args.single_rows)]
    for trees in args.trees:
        train = features["split"].eq("train").to_numpy()
        booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 7, "learning_rate": 0.02,
                             "min_data_in_leaf": 20, "seed": 0},
                            lgb.Dataset(base[train], features["default"].to_numpy()[train],
                                        categorical_feature=[bundle.schema.names.index(c)
                                                             for c in bundle.schema.categorical]),
                            num_boost_round=trees)
        models.append(bench_model(f"7 leaves x {trees} trees", booster, base, args.rows, args.single_rows))
    texts = bench_texts(bundle, base)
    print(json.dumps({"benchmark": "reasons_top3", "texts": texts,
                      "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                  "load_avg_1m_at_end": round(os.getloadavg()[0], 2)},
                      "models": models}, indent=2))


if __name__ == "__main__":
    main()
