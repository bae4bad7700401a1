"""The leakage guard's power table (four single-feature AUCs and two IVs of every feature), against the same
table computed with scikit-learn's ``roc_auc_score`` and a pandas group-by for the IV, in the same run.

The guard runs in every training run, on every kept feature: with ``roc_auc_score``'s checks at every call
it took a sixth of a small run's wall time. A synthetic world's modelling frame is built (not timed), then
each variant computes the table ``--repeat`` times; the tables must agree to 1e-12. Prints one JSON object.

    .venv/bin/python benchmarks/bench_guard.py --enterprises 1000 5000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from contextlib import contextmanager

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from creditmodel.config import build_config
from creditmodel.data.synthetic import generate_world
from creditmodel.features.build import feature_columns
from creditmodel.features.matrix import FeatureSchema
from creditmodel.pipeline import modelling_frame
from creditmodel.validation import leakage


def _sklearn_auc(y: np.ndarray, score: np.ndarray) -> float:
    return float("nan") if len(np.unique(y)) < 2 else float(roc_auc_score(y, score))


def _groupby_iv(bins: pd.Series, y: np.ndarray, eps: float = 0.5) -> float:
    y = np.asarray(y, dtype=float)
    t = pd.DataFrame({"bin": bins.to_numpy(), "bad": y, "good": 1 - y}).groupby("bin")[["good", "bad"]].sum() + eps
    g, b = t["good"] / t["good"].sum(), t["bad"] / t["bad"].sum()
    return float(((g - b) * np.log(g / b)).sum())


@contextmanager
def _alternative():
    auc, iv = leakage.auc, leakage.information_value
    leakage.auc, leakage.information_value = _sklearn_auc, _groupby_iv
    try:
        yield
    finally:
        leakage.auc, leakage.information_value = auc, iv


def one(enterprises: int, repeat: int) -> dict:
    config = build_config({"synthetic": {"enterprises": enterprises}})
    world = generate_world(enterprises, config.synthetic.seed)
    frame = modelling_frame(world.tables, world.extraction_date, config)
    schema = FeatureSchema.for_columns(feature_columns(frame))
    cols = list(schema.names)
    train, oot = frame[frame["split"] == "train"], frame[frame["split"] == "oot"]

    def table() -> tuple[float, pd.DataFrame]:
        best, out = float("inf"), None
        for _ in range(repeat):
            t = time.perf_counter()
            out = leakage.power_table(train, train["default"].to_numpy(), oot, oot["default"].to_numpy(), cols,
                                      schema.categorical)
            best = min(best, time.perf_counter() - t)
        return best, out

    guard_s, got = table()
    with _alternative():
        alt_s, want = table()
    numeric = [c for c in got.columns if got[c].dtype.kind == "f"]
    diff = float(np.nanmax(np.abs(got[numeric].to_numpy() - want[numeric].to_numpy())))
    assert diff <= 1e-12 and got[numeric].isna().equals(want[numeric].isna()), f"tables differ by {diff}"
    return {"enterprises": enterprises, "features": len(cols), "train_rows": len(train), "oot_rows": len(oot),
            "guard_s": round(guard_s, 3), "sklearn_groupby_s": round(alt_s, 3),
            "ratio_sklearn_over_guard": round(alt_s / guard_s, 2), "max_abs_difference": diff}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--enterprises", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--repeat", type=int, default=3, help="best of this many timings per variant")
    args = ap.parse_args()
    runs = [one(n, args.repeat) for n in args.enterprises]
    print(json.dumps({"python": platform.python_version(), "cpus": os.cpu_count(),
                      "load_average": os.getloadavg(), "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
