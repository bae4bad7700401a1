"""Time to produce the validation report for 100k and 1M scored loans, and SHAP rows per second.

Trains and registers a model with the main job on a small synthetic world (private MLflow store in
a temporary directory), loads its evidence as `creditmodel report` does, then tiles the evidence
(every loan repeated with new loan and enterprise ids, so splits, grades and segments keep their
shares) to each requested number of scored loans and times the validation suite section by
section and the HTML rendering. In the same run it times SHAP on the out-of-time rows with
LightGBM's pred_contrib (what the report uses) against shap.TreeExplainer. Prints one JSON object.

    .venv/bin/python benchmarks/bench_report.py --loans 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from creditmodel.config import ValidationConfig, build_config
from creditmodel.pipeline import run_pipeline
from creditmodel.validation import explain
from creditmodel.validation import suite as S
from creditmodel.validation.report import load_evidence, render_html


def tile(ev: S.Evidence, loans: int) -> S.Evidence:
    """The evidence repeated to about `loans` scored loans, ids made unique."""
    k = max(1, int(np.ceil(loans / len(ev.scored))))
    step_loan = int(ev.scored["loan_id"].max()) + 1
    step_ent = int(ev.features["enterprise_id"].max()) + 1

    def rep(frame: pd.DataFrame) -> pd.DataFrame:
        parts = []
        for i in range(k):
            part = frame.copy()
            part["loan_id"] = part["loan_id"] + i * step_loan
            if "enterprise_id" in part:
                part["enterprise_id"] = part["enterprise_id"] + i * step_ent
            parts.append(part)
        return pd.concat(parts, ignore_index=True)

    points = None
    if ev.scorecard_points is not None:
        points = rep(ev.scorecard_points.reset_index()).set_index("loan_id")
    return S.Evidence(ev.label, ev.bundle, rep(ev.features), rep(ev.scored), points, ev.scorecard_iv,
                      ev.model_uri, ev.run_id, ev.version)


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, round(time.perf_counter() - t, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loans", type=int, nargs="+", default=[100_000])
    ap.add_argument("--enterprises", type=int, default=3000, help="world the model is trained on")
    ap.add_argument("--shap-rows", type=int, default=20_000)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    out: dict[str, object] = {"benchmark": "validation_report", "cores": os.cpu_count(),
                              "python": platform.python_version(), "loans": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        uri = f"sqlite:///{tmp / 'mlflow.db'}"
        config = build_config({"output_dir": str(tmp / "run"), "synthetic": {"enterprises": args.enterprises},
                               "segments": {"enabled": False}})
        run = run_pipeline(config, tracking_uri=uri, progress=lambda m: None)
        base = load_evidence(f"models:/sme_pd/{run.tracked.model_version}", uri, tmp / "evidence")
        cfg = ValidationConfig()
        for n in args.loans:
            ev = tile(base, n)
            figdir = tmp / f"fig{n}"
            figdir.mkdir()
            entry: dict[str, object] = {"scored_loans": len(ev.scored),
                                        "oot_loans": int((ev.scored["split"] == "oot").sum())}
            sections: dict[str, float] = {}
            (expl_sec, reasons, importance), sections["explanations"] = timed(S.explanations, ev, cfg, figdir)
            top = list(importance.index[:cfg.top_features])
            built = [expl_sec]
            for name, fn, extra in (("discrimination", S.discrimination, (figdir,)),
                                    ("calibration", S.calibration, (figdir,)),
                                    ("stability", S.stability, (figdir, top)),
                                    ("segments", S.segments, ()), ("benchmark", S.benchmark, ())):
                sec, sections[name] = timed(fn, ev, cfg, *extra)
                built.append(sec)
            total = round(sum(sections.values()), 2)
            oot = ev.scored[ev.scored["split"] == "oot"]
            result = S.ValidationResult(ev, built, reasons, {"oot_auc": S.auc(oot["default"], oot["pd_lightgbm"]),
                                                             "oot_brier": S.brier(oot["default"], oot["pd_lightgbm"])})
            html, render_s = timed(render_html, [result], cfg)
            entry.update({"sections_s": sections, "suite_s": total, "render_s": render_s,
                          "report_s": round(total + render_s, 2), "html_mib": round(len(html) / 2**20, 2),
                          "status": result.status, **result.counts()})
            out["loans"][str(n)] = entry
            print(json.dumps({str(n): entry}), flush=True)

        oot = base.features[base.features["split"] == "oot"]
        rows = oot.sample(args.shap_rows, replace=True, random_state=0)
        X = base.bundle.schema.encode(rows)
        booster = base.bundle.booster
        (values, _), t_contrib = timed(explain.shap_values, booster, X)
        import shap

        def tree_explainer():
            return shap.TreeExplainer(booster).shap_values(X)

        ref, t_shap = timed(tree_explainer)
        ref = np.asarray(ref)
        ref = ref[..., -1] if ref.ndim == 3 else ref
        out["shap"] = {"rows": args.shap_rows, "pred_contrib_rows_per_s": round(args.shap_rows / t_contrib),
                       "tree_explainer_rows_per_s": round(args.shap_rows / t_shap),
                       "ratio": round(t_shap / t_contrib, 2), "max_abs_diff": float(np.max(np.abs(values - ref)))}
    out["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
