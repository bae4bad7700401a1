"""Training time and peak memory of the two PD models, against scikit-learn's HistGradientBoostingClassifier.

Two phases, each in its own process so that each one's peak memory is its own:

1. features: builds a synthetic world big enough for the requested number of loans, computes the full
   feature catalogue (labels and splits included) and writes the modelling frame to parquet; the world
   is gone when this process ends.
2. training: reads the frame back (feature columns as float32 with --float32, as float64 without), then
   fits the optbinning scorecard and LightGBMPD on the train split and reports out-of-time AUC, fit
   seconds and the peak resident memory of training. With --sklearn, HistGradientBoostingClassifier
   (same number of trees, leaves and learning rate, no early stopping) is fitted afterwards on the same
   matrix; its memory is not part of the training peak.

Prints one JSON object.

    python benchmarks/bench_training.py --loans 100000
    python benchmarks/bench_training.py --loans 1000000 --transaction-density 0.14 --float32   # ~500k borrowers
    python benchmarks/bench_training.py --loans 1000000 --transaction-density 0.14 --parts 4 --float32
    python benchmarks/bench_training.py --features frame.parquet --float32   # phase 2 on a frame written before
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LOANS_PER_ENTERPRISE = 2.0  # the synthetic world's average
KEYS = ("loan_id", "enterprise_id", "decision_date", "default", "split")


def peak_rss_gib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)


def build_frame(args: argparse.Namespace) -> dict:
    """Phase 1: world -> modelling frame -> parquet. With --parts N, N worlds of 1/N the enterprises
    (seeds seed, seed+1, ...) are built one after the other and their frames stacked, so that only one
    part's world is in memory at a time."""
    import pandas as pd

    from creditmodel.config import build_config
    from creditmodel.data.synthetic import generate_world
    from creditmodel.pipeline import modelling_frame

    enterprises = int(args.loans / LOANS_PER_ENTERPRISE)
    t_world = t_features = 0.0
    frames = []
    for part in range(args.parts):
        n, seed = enterprises // args.parts, args.seed + part
        config = build_config({"synthetic": {"enterprises": n, "seed": seed,
                                             "transaction_density": args.transaction_density}})
        t0 = time.perf_counter()
        world = generate_world(n, seed, transaction_density=args.transaction_density)
        t_world += time.perf_counter() - t0
        t0 = time.perf_counter()
        frame = modelling_frame(world.tables, world.extraction_date, config)
        t_features += time.perf_counter() - t0
        del world
        if args.parts > 1:  # keys unique over the parts
            frame["loan_id"] = frame["loan_id"].astype(str) + f"-{part}"
            frame["enterprise_id"] = frame["enterprise_id"].astype(str) + f"-{part}"
        frames.append(frame)
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    del frames
    frame.to_parquet(args.write_features, index=False)
    return {"enterprises": enterprises, "parts": args.parts, "transaction_density": args.transaction_density,
            "world_s": round(t_world, 2), "features_s": round(t_features, 2), "features_peak_rss_gib": peak_rss_gib()}


def read_frame(path: str, float32: bool):
    """The modelling frame from parquet; with `float32` the float feature columns are read as float32,
    column by column (arrow buffers are released as they are converted, so no second copy exists)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    if float32:
        fields = [pa.field(f.name, pa.float32()) if f.name not in KEYS and pa.types.is_float64(f.type) else f
                  for f in table.schema]
        table = table.cast(pa.schema(fields))
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    return frame


def train(args: argparse.Namespace) -> dict:
    """Phase 2: the two PD models on the train split of the frame, scored out of time."""
    from creditmodel.features.matrix import FeatureSchema
    from creditmodel.models.gbm import LightGBMPD
    from creditmodel.models.scorecard import ScorecardPD
    from creditmodel.validation.metrics import auc

    t0 = time.perf_counter()
    frame = read_frame(args.features, args.float32)
    out: dict[str, object] = {"read_s": round(time.perf_counter() - t0, 2), "float32": args.float32,
                              "frame_gib": round(frame.memory_usage(deep=True).sum() / 2**30, 3)}
    cols = [c for c in frame.columns if c not in KEYS]
    schema = FeatureSchema.for_columns(cols)
    split = frame["split"].to_numpy()
    train_x, oot_x = frame.loc[split != "oot", cols], frame.loc[split == "oot", cols]  # the feature columns only
    y, y_oot = frame.loc[split != "oot", "default"].to_numpy(), frame.loc[split == "oot", "default"].to_numpy()
    del frame
    out.update({"loans_train": len(train_x), "loans_oot": len(oot_x), "features": len(cols),
                "after_read_rss_gib": peak_rss_gib()})

    def timed(name: str, fit, score) -> None:
        t = time.perf_counter()
        cpu = time.process_time()
        model = fit()
        seconds, cpu_s = time.perf_counter() - t, time.process_time() - cpu
        out[name] = {"fit_s": round(seconds, 2), "fit_cpu_s": round(cpu_s, 2), "oot_auc": round(auc(y_oot, score(model)), 6),
                     "peak_rss_gib": peak_rss_gib()}

    timed("scorecard", lambda: ScorecardPD().fit(train_x, y), lambda m: m.predict_proba(oot_x)[:, 1])
    lgb_params = dict(n_estimators=args.trees, learning_rate=0.05, num_leaves=15, min_child_samples=100,
                      feature_fraction=1.0, bagging_fraction=1.0, reg_lambda=0.0, num_threads=os.cpu_count())
    if args.float32:
        lgb_params["matrix_dtype"] = "float32"
    timed("lightgbm", lambda: LightGBMPD(**lgb_params, feature_schema=schema).fit(train_x, y),
          lambda m: m.decision_function(oot_x))
    out["training_peak_rss_gib"] = peak_rss_gib()
    if args.sklearn:
        from sklearn.ensemble import HistGradientBoostingClassifier

        X, X_oot = schema.encode(train_x), schema.encode(oot_x)
        categorical = [c in schema.categories for c in schema.names]
        timed("sklearn_hist_gradient_boosting",
              lambda: HistGradientBoostingClassifier(max_iter=args.trees, learning_rate=0.05, max_leaf_nodes=15,
                                                     min_samples_leaf=100, l2_regularization=0.0, early_stopping=False,
                                                     categorical_features=categorical, random_state=0).fit(X, y),
              lambda m: m.predict_proba(X_oot)[:, 1])
        out["lightgbm_speedup_vs_sklearn"] = round(out["sklearn_hist_gradient_boosting"]["fit_s"]  # type: ignore[index]
                                                   / out["lightgbm"]["fit_s"], 2)  # type: ignore[index]
    return out


def child(args: argparse.Namespace, phase: str, extra: list[str]) -> dict:
    cmd = [sys.executable, __file__, "--phase", phase, "--loans", str(args.loans), "--trees", str(args.trees),
           "--seed", str(args.seed), "--transaction-density", str(args.transaction_density), "--parts", str(args.parts), *extra]
    done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loans", type=int, default=100_000, help="approximate number of loans (default 100000)")
    ap.add_argument("--trees", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--transaction-density", type=float, default=1.0,
                    help="scale of account transactions (0.14: about 250 per borrower, to fit 1M loans in memory)")
    ap.add_argument("--parts", type=int, default=1,
                    help="build the world in this many parts, one at a time, and stack their frames (less memory)")
    ap.add_argument("--float32", action="store_true", help="read the feature columns as float32 for training")
    ap.add_argument("--sklearn", action="store_true", help="also fit HistGradientBoostingClassifier (after the peak)")
    ap.add_argument("--features", help="train on this modelling frame (parquet) instead of building one")
    ap.add_argument("--keep-features", help="write the modelling frame built in phase 1 here and keep it")
    ap.add_argument("--phase", choices=("features", "train"), help=argparse.SUPPRESS)
    ap.add_argument("--write-features", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase == "features":
        print(json.dumps(build_frame(args)))
        return
    if args.phase == "train":
        print(json.dumps(train(args)))
        return
    out: dict[str, object] = {"benchmark": "training", "machine": {"cores": os.cpu_count(),
                                                                  "python": platform.python_version()}}
    with tempfile.TemporaryDirectory() as tmp:
        path = args.features
        if path is None:
            path = args.keep_features or str(Path(tmp) / "frame.parquet")
            out.update(child(args, "features", ["--write-features", path]))
        flags = [*(["--float32"] if args.float32 else []), *(["--sklearn"] if args.sklearn else [])]
        out.update(child(args, "train", ["--features", path, *flags]))
    out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
