"""SHAP throughput for the LightGBM PD model: LightGBM's own pred_contrib against shap.TreeExplainer.

Builds a synthetic world, computes the feature catalogue and trains LightGBMPD with the pipeline's
parameters (monotone constraints from the catalogue, a fixed number of trees: no early stopping, so
the model size is what ``--trees`` says), then explains ``--rows`` rows (the world's loans repeated
in a seeded random order) and reports rows per second of

* ``pred_contrib``: ``booster.predict(X, pred_contrib=True)``, what ``explain()`` uses;
* ``shap_tree_explainer``: ``shap.TreeExplainer(booster).shap_values(X)``, with the explainer's
  construction (it dumps and parses every tree) timed apart; for a LightGBM booster shap hands the
  computation itself to ``pred_contrib``;
* ``shap_own_treeshap``: shap's own C++ TreeSHAP over its parsed copy of the trees (an independent
  implementation); it reads LightGBM's categorical splits as numeric thresholds and so gives wrong
  values for them: it is run only with ``--numeric-only`` (categorical features left out of the model).

with the maximum absolute difference of the SHAP values and of the base value. Timings are the best
of ``--repeat`` interleaved rounds, wall clock (rows/s) and this process's CPU time (``cpu_s``, less
disturbed by other load on a shared machine); all run with the same thread count (``--threads``,
through OMP_NUM_THREADS, which LightGBM's prediction and so shap's call follow).
Prints one JSON object.

    .venv/bin/python benchmarks/bench_shap.py --rows 100000
    .venv/bin/python benchmarks/bench_shap.py --rows 20000 --numeric-only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
import warnings

import numpy as np


def best_of(repeat: int, fn):
    """(best wall seconds, best CPU seconds of this process, last result) of `repeat` calls."""
    wall, cpu, result = float("inf"), float("inf"), None
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = fn()
        wall = min(wall, time.perf_counter() - started)
        cpu = min(cpu, time.process_time() - cpu_started)
    return wall, cpu, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000, help="rows to explain (default 100000)")
    ap.add_argument("--enterprises", type=int, default=3000, help="synthetic world to train on (default 3000)")
    ap.add_argument("--trees", type=int, default=600,
                    help="trees, no early stopping (default 600, the pipeline's most)")
    ap.add_argument("--threads", type=int, default=1, help="threads of LightGBM's prediction (default 1)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--numeric-only", action="store_true",
                    help="leave out categorical features so shap's own TreeSHAP can run too")
    args = ap.parse_args()
    # LightGBM predicts with OpenMP's default thread count unless the call names one, and shap's call
    # does not: fix it for every caller alike, before LightGBM is loaded
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import shap

    from creditmodel.config import build_config
    from creditmodel.data.synthetic import generate_world
    from creditmodel.features.build import feature_columns
    from creditmodel.features.matrix import FeatureSchema
    from creditmodel.models.gbm import LightGBMPD
    from creditmodel.pipeline import lightgbm_params, modelling_frame, risk_directions
    from creditmodel.validation.explain import shap_values

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    config = build_config({"synthetic": {"enterprises": args.enterprises, "seed": args.seed}})
    log(f"generating a world of {args.enterprises} enterprises and its features")
    world = generate_world(args.enterprises, args.seed)
    frame = modelling_frame(world.tables, world.extraction_date, config)
    del world
    cols = [c for c in feature_columns(frame) if c not in ("default", "split")]
    schema = FeatureSchema.for_columns(cols)
    if args.numeric_only:
        cols = [c for c in cols if c not in schema.categories]
        schema = FeatureSchema.for_columns(cols)
    train = frame[frame["split"] == "train"]
    params = {**lightgbm_params(config, risk_directions(cols)), "n_estimators": args.trees,
              "early_stopping_rounds": None, "num_threads": args.threads}
    log(f"training LightGBM: {args.trees} trees on {len(train)} loans x {len(cols)} features")
    started = time.perf_counter()
    model = LightGBMPD(**params, feature_schema=schema).fit(train[cols], train["default"].to_numpy())
    fit_s = time.perf_counter() - started
    booster = model.booster_

    encoded = schema.encode(frame[cols])
    rows = np.random.default_rng(args.seed).integers(0, len(encoded), size=args.rows)
    X = np.ascontiguousarray(encoded[rows])
    out: dict[str, object] = {
        "benchmark": "shap", "rows": args.rows, "features": len(cols),
        "categorical_features": len(schema.categorical), "trees": booster.num_trees(),
        "leaves_per_tree": model.num_leaves, "threads": args.threads, "repeat": args.repeat,
        "train_loans": len(train), "fit_s": round(fit_s, 2), "shap_version": shap.__version__,
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
    }

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_init, _, explainer = best_of(args.repeat, lambda: shap.TreeExplainer(booster))
    # shap's own C++ TreeSHAP parses LightGBM's categorical splits as numeric thresholds (wrong values),
    # so it is only run, and compared, on a model without categorical features
    own = shap.TreeExplainer(explainer.model.trees) if not schema.categorical else None
    runs: dict[str, list[tuple[float, float]]] = {"pred_contrib": [], "shap_tree_explainer": [],
                                                  "shap_own_treeshap": []}
    log(f"explaining {args.rows} rows, {args.repeat} rounds (pred_contrib, shap.TreeExplainer"
        + (", shap's own TreeSHAP)" if own is not None else ")"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(args.repeat):  # interleaved, so a busy moment of the machine hits all alike
            *t, (values, base) = best_of(1, lambda: shap_values(booster, X))
            runs["pred_contrib"].append(tuple(t))
            *t, sv = best_of(1, lambda: np.asarray(explainer.shap_values(X), dtype=np.float64))
            runs["shap_tree_explainer"].append(tuple(t))
            if own is not None:
                *t, sv_own = best_of(1, lambda: np.asarray(own.shap_values(X), dtype=np.float64))
                runs["shap_own_treeshap"].append(tuple(t))
    best = {k: (min(w for w, _ in v), min(c for _, c in v)) for k, v in runs.items() if v}
    (t_pc, c_pc), (t_sv, c_sv) = best["pred_contrib"], best["shap_tree_explainer"]
    margin = booster.predict(X, raw_score=True)
    out["pred_contrib"] = {"seconds": round(t_pc, 4), "cpu_s": round(c_pc, 4), "rows_per_s": round(args.rows / t_pc),
                           "max_abs_additivity_error": float(np.abs(values.sum(axis=1) + base - margin).max())}
    out["shap_tree_explainer"] = {
        "construct_s": round(t_init, 4), "shap_values_s": round(t_sv, 4), "cpu_s": round(c_sv, 4),
        "rows_per_s": round(args.rows / t_sv),
        "rows_per_s_incl_construct": round(args.rows / (t_sv + t_init)),
        "max_abs_diff_values": float(np.abs(sv - values).max()),
        "base_value_diff": float(abs(float(np.ravel(explainer.expected_value)[-1]) - base))}
    out["speedup_pred_contrib_vs_shap"] = round(t_sv / t_pc, 3)
    out["speedup_pred_contrib_vs_shap_incl_construct"] = round((t_sv + t_init) / t_pc, 3)
    out["cpu_ratio_shap_vs_pred_contrib"] = round(c_sv / c_pc, 3)
    if own is not None:
        t_own, c_own = best["shap_own_treeshap"]
        out["shap_own_treeshap"] = {
            "seconds": round(t_own, 4), "cpu_s": round(c_own, 4), "rows_per_s": round(args.rows / t_own),
            "max_abs_diff_values": float(np.abs(sv_own - values).max()),
            "base_value_diff": float(abs(float(np.ravel(own.expected_value)[0]) - base))}
        out["speedup_pred_contrib_vs_shap_own_treeshap"] = round(t_own / t_pc, 3)
        out["cpu_ratio_shap_own_treeshap_vs_pred_contrib"] = round(c_own / c_pc, 3)
    else:
        out["shap_own_treeshap"] = ("not run: the model has categorical splits, which shap's own TreeSHAP "
                                    "reads as numeric thresholds (use --numeric-only)")
    out["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
