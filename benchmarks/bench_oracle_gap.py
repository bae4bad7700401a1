"""How far the PD models sit from the oracle, and whether more data closes the gap.

The oracle scores each loan with its true PD, which the synthetic world draws from a latent risk
the bank never sees directly; the models only see its noisy traces in the data. For each world
size this runs the pipeline's own training (scorecard and LightGBM, as configured in
`configs/demo.toml`) and prints, in one JSON object, the out-of-time AUC of both models and of
the oracle and the gap: if the gap stays as the training data grows tenfold, it is information
the data does not carry, not a weakness of the model.

    python benchmarks/bench_oracle_gap.py --sizes 10000 30000 100000
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from creditmodel.config import build_config
from creditmodel.data.synthetic import generate_world
from creditmodel.pipeline import evaluate, modelling_frame, train_models


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--transaction-density", type=float, default=1.0)
    args = ap.parse_args()
    out: dict[str, object] = {"benchmark": "oracle_gap", "cores": os.cpu_count(), "sizes": {}}
    for n in args.sizes:
        t0 = time.perf_counter()
        config = build_config({"synthetic": {"enterprises": n, "seed": args.seed,
                                             "transaction_density": args.transaction_density},
                               "segments": {"enabled": False}})
        world = generate_world(n, args.seed, transaction_density=args.transaction_density)
        frame = modelling_frame(world.tables, world.extraction_date, config)
        truth = world.truth
        del world
        models = train_models(frame, config)
        table = evaluate(frame, models, truth).set_index(["model", "split"])["auc"]
        entry = {
            "loans": {s: int((frame["split"] == s).sum()) for s in ("train", "valid", "oot")},
            "oot_auc": {m: round(float(table[(m, "oot")]), 4) for m in ("lightgbm", "scorecard", "oracle_true_pd")},
            "lightgbm_trees": int(models.lightgbm.best_iteration_),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        entry["gap_lightgbm_to_oracle"] = round(entry["oot_auc"]["oracle_true_pd"] - entry["oot_auc"]["lightgbm"], 4)
        out["sizes"][str(n)] = entry
        print(json.dumps({str(n): entry}), flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
