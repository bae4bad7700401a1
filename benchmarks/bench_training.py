"""Training time of the two PD models against scikit-learn's HistGradientBoostingClassifier.

Builds a synthetic world big enough for the requested number of loans, computes the full feature
catalogue, then times, on the same training matrix: the optbinning scorecard, LightGBMPD and
HistGradientBoostingClassifier (same number of trees, leaves and learning rate, no early stopping),
and reports out-of-time AUC of each. Prints one JSON object.

    python benchmarks/bench_training.py --loans 100000
    python benchmarks/bench_training.py --loans 1000000 --transaction-density 0.14   # ~500k borrowers
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time

import numpy as np

from creditmodel.config import build_config
from creditmodel.data.synthetic import generate_world
from creditmodel.features.matrix import FeatureSchema
from creditmodel.models.gbm import LightGBMPD
from creditmodel.models.scorecard import ScorecardPD
from creditmodel.pipeline import modelling_frame
from creditmodel.validation.metrics import auc

LOANS_PER_ENTERPRISE = 2.0  # the synthetic world's average


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loans", type=int, default=100_000, help="approximate number of loans (default 100000)")
    ap.add_argument("--trees", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--transaction-density", type=float, default=1.0,
                    help="scale of account transactions (0.14: about 250 per borrower, to fit 1M loans in memory)")
    args = ap.parse_args()

    from sklearn.ensemble import HistGradientBoostingClassifier

    enterprises = int(args.loans / LOANS_PER_ENTERPRISE)
    config = build_config({"synthetic": {"enterprises": enterprises, "seed": args.seed,
                                         "transaction_density": args.transaction_density}})
    t0 = time.perf_counter()
    world = generate_world(enterprises, args.seed, transaction_density=args.transaction_density)
    t_world = time.perf_counter() - t0
    t0 = time.perf_counter()
    frame = modelling_frame(world.tables, world.extraction_date, config)
    t_features = time.perf_counter() - t0
    del world
    cols = [c for c in frame.columns if c not in ("loan_id", "enterprise_id", "decision_date", "default", "split")]
    schema = FeatureSchema.for_columns(cols)
    train, oot = frame[frame["split"] != "oot"], frame[frame["split"] == "oot"]
    y, y_oot = train["default"].to_numpy(), oot["default"].to_numpy()
    out: dict[str, object] = {
        "benchmark": "training", "loans_train": len(train), "loans_oot": len(oot), "features": len(cols),
        "enterprises": enterprises, "transaction_density": args.transaction_density, "world_s": round(t_world, 2),
        "features_s": round(t_features, 2),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
    }

    def timed(name: str, fit, score) -> None:
        t = time.perf_counter()
        model = fit()
        seconds = time.perf_counter() - t
        out[name] = {"fit_s": round(seconds, 2), "oot_auc": round(auc(y_oot, score(model)), 4)}

    timed("scorecard", lambda: ScorecardPD().fit(train[cols], y), lambda m: m.predict_proba(oot[cols])[:, 1])
    lgb_params = dict(n_estimators=args.trees, learning_rate=0.05, num_leaves=15, min_child_samples=100,
                      feature_fraction=1.0, bagging_fraction=1.0, reg_lambda=0.0, num_threads=os.cpu_count())
    timed("lightgbm", lambda: LightGBMPD(**lgb_params, feature_schema=schema).fit(train[cols], y),
          lambda m: m.decision_function(oot[cols]))
    X, X_oot = schema.encode(train[cols]), schema.encode(oot[cols])
    categorical = [c in schema.categories for c in schema.names]
    timed("sklearn_hist_gradient_boosting",
          lambda: HistGradientBoostingClassifier(max_iter=args.trees, learning_rate=0.05, max_leaf_nodes=15,
                                                 min_samples_leaf=100, l2_regularization=0.0, early_stopping=False,
                                                 categorical_features=categorical, random_state=0).fit(X, y),
          lambda m: m.predict_proba(X_oot)[:, 1])
    out["lightgbm_speedup_vs_sklearn"] = round(out["sklearn_hist_gradient_boosting"]["fit_s"]
                                               / out["lightgbm"]["fit_s"], 2)
    out["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
