"""Compiled trees against LightGBM's own predict, on the same rows and the same bundle. Prints JSON.

    .venv/bin/python benchmarks/bench_compiled.py                          # trains a small model first
    .venv/bin/python benchmarks/bench_compiled.py --bundle DIR --features FILE.parquet [--rows 200000]

Candidates, each timed as the best of --repeats calls on the same encoded float64 matrix (the
feature rows replicated to --rows):

* ``lightgbm``: ``Booster.predict(X, raw_score=True)``, all cores and one thread;
* ``lleaves_host`` / ``lleaves_portable``: the bundle's trees compiled by
  ``creditmodel.export.compiled`` (lleaves' code generator, LLVM -O3) for this CPU and for baseline
  x86-64, called through ``CompiledForest.raw_score``;
* ``tl2cgen``: treelite + tl2cgen C code compiled by gcc, when both are importable and a C compiler
  exists (else the reason it was skipped).

For each: compile and load seconds, rows/s, the speed-up over ``Booster.predict`` with the same thread
count, microseconds per single-row call, and the largest |difference| from LightGBM in raw score and in
PD after the bundle's calibration, on the feature rows and on the parity rows
(``creditmodel.export.compiled.parity_rows``: every split threshold, one ulp either side, missing).
Then ``score_frame`` (the ``creditmodel score`` loop: checks, encoding, PD, grade) on the same rows,
with the bundle's compiled trees and without, against the column-by-column check path, and
``FastScorer`` per application (what ``serve`` runs), with and without compiled trees.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def best(fn: Any, repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def per_row_us(fn: Any, x1: np.ndarray, calls: int) -> float:
    for _ in range(50):
        fn(x1)
    t = time.perf_counter()
    for _ in range(calls):
        fn(x1)
    return round((time.perf_counter() - t) / calls * 1e6, 2)


def gaps(raw: np.ndarray, ref: np.ndarray, calibrator: Any) -> dict[str, float]:
    return {"max_abs_raw_diff": float(np.max(np.abs(raw - ref))),
            "max_abs_pd_diff": float(np.max(np.abs(calibrator.predict(raw) - calibrator.predict(ref))))}


def prepare(args: argparse.Namespace, tmp: Path) -> tuple[Path, pd.DataFrame, Any]:
    """The bundle, its feature rows and the private key that signs compiled bundles (given or trained here)."""
    from creditmodel.export.signing import ENV_TRUSTED_KEYS, generate_keys

    private, public, _ = generate_keys(tmp / "keys")
    os.environ[ENV_TRUSTED_KEYS] = os.pathsep.join(filter(None, [os.environ.get(ENV_TRUSTED_KEYS), str(public)]))
    if args.bundle:
        if not args.features:
            raise SystemExit("--bundle needs --features (a parquet of the bundle's feature rows)")
        return Path(args.bundle), pd.read_parquet(args.features), private
    from creditmodel.config import build_config
    from creditmodel.pipeline import run_pipeline

    log(f"training: pipeline on {args.enterprises} synthetic enterprises into {tmp}")
    config = build_config({"output_dir": str(tmp / "out"), "synthetic": {"enterprises": args.enterprises, "seed": 0},
                           "experiment": "bench-compiled", "bundle": {"signing_key": str(private)}})
    result = run_pipeline(config, tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}")
    return Path(result.bundle_dir), pd.read_parquet(result.features_path), private


def bench_tl2cgen(model_file: Path, X: np.ndarray, P: np.ndarray, ref: np.ndarray, ref_p: np.ndarray,
                  calibrator: Any, tmp: Path, args: argparse.Namespace, lgb_s: dict[int, float]) -> dict[str, Any]:
    try:
        import tl2cgen
        import treelite
    except ImportError as exc:
        return {"skipped": f"{exc.name} is not installed"}
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        return {"skipped": "no C compiler (gcc or cc) on PATH"}
    t = time.perf_counter()
    model = treelite.frontend.load_lightgbm_model(str(model_file))
    lib = tmp / "tl2cgen_model.so"
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)  # its C++ log lines go to the process's stdout: keep the JSON clean
    try:
        tl2cgen.export_lib(model, toolchain=Path(cc).name, libpath=str(lib),
                           params={"parallel_comp": os.cpu_count() or 1}, nthread=os.cpu_count() or 1)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    out: dict[str, Any] = {"treelite_version": treelite.__version__, "tl2cgen_version": tl2cgen.__version__,
                           "compile_s": round(time.perf_counter() - t, 3)}
    for threads in (0, 1):
        predictor = tl2cgen.Predictor(str(lib), nthread=threads or (os.cpu_count() or 1))

        def run(A: np.ndarray, p: Any = predictor) -> np.ndarray:
            return np.asarray(p.predict(tl2cgen.DMatrix(A, dtype="float64"), pred_margin=True)).reshape(-1)

        s, raw = best(lambda: run(X), args.repeats)
        key = "all_cores" if threads == 0 else "one_thread"
        out[key] = {"rows_per_s": round(len(X) / s), "speedup_vs_lightgbm": round(lgb_s[threads] / s, 2)}
        if threads == 1:
            out["single_row_us"] = per_row_us(run, X[:1], args.single_calls)
            out["feature_rows"] = gaps(raw, ref, calibrator)
            out["parity_rows"] = gaps(run(P), ref_p, calibrator)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", help="export bundle directory (its signer trusted via $CREDITMODEL_TRUSTED_KEYS, "
                                     "or unsigned)")
    ap.add_argument("--features", help="parquet of the bundle's feature rows (with --bundle)")
    ap.add_argument("--enterprises", type=int, default=3000, help="synthetic world when training (default 3000)")
    ap.add_argument("--rows", type=int, default=200_000, help="rows scored per call (default 200000)")
    ap.add_argument("--repeats", type=int, default=3, help="calls per measurement, best kept (default 3)")
    ap.add_argument("--single-calls", type=int, default=2000, help="single-row calls per measurement (default 2000)")
    ap.add_argument("--skip-tl2cgen", action="store_true")
    args = ap.parse_args()

    import lightgbm as lgb

    from creditmodel.export.bundle import load_bundle
    from creditmodel.export.compiled import CompiledForest, compile_bundle, compile_model, parity_rows, unavailable
    from creditmodel.service.batch import score_frame

    with tempfile.TemporaryDirectory(prefix="bench-compiled-") as tmp_name:
        tmp = Path(tmp_name)
        bundle_dir, features, private = prepare(args, tmp)
        bundle = load_bundle(bundle_dir, allow_unsigned=True)
        booster, calibrator, names = bundle.booster, bundle.calibrator, list(bundle.schema.names)
        frame = features[names].reset_index(drop=True)
        frame = pd.concat([frame] * -(-args.rows // len(frame)), ignore_index=True).iloc[:args.rows]
        X = np.ascontiguousarray(bundle.schema.encode(frame), dtype=np.float64)
        P = parity_rows(booster, bundle.schema)
        cores = os.cpu_count() or 1
        result: dict[str, Any] = {
            "benchmark": "compiled_trees", "machine": {"cores": cores, "python": platform.python_version(),
                                                      "lightgbm": lgb.__version__},
            "model": {"trees": booster.num_trees(), "features": booster.num_feature(),
                      "model_txt_bytes": (bundle_dir / "model.txt").stat().st_size},
            "rows": len(X), "parity_rows": len(P), "repeats": args.repeats}
        log(f"lightgbm: {len(X)} rows x {booster.num_trees()} trees")
        lgb_s: dict[int, float] = {}
        out: dict[str, Any] = {}
        for threads in (0, 1):
            s, ref_t = best(lambda t=threads: booster.predict(X, raw_score=True, num_threads=t), args.repeats)
            lgb_s[threads] = s
            out["all_cores" if threads == 0 else "one_thread"] = {"rows_per_s": round(len(X) / s)}
            if threads == 1:
                ref = np.asarray(ref_t, dtype=np.float64)
        out["single_row_us"] = per_row_us(lambda a: booster.predict(a, raw_score=True, num_threads=1), X[:1],
                                          args.single_calls)
        result["lightgbm"] = out
        ref_p = np.asarray(booster.predict(P, raw_score=True, num_threads=1), dtype=np.float64)
        model_text = (bundle_dir / "model.txt").read_text(encoding="utf-8")
        reason = unavailable()
        for name, portable in (("lleaves_host", False), ("lleaves_portable", True)):
            if reason:
                result[name] = {"skipped": reason}
                continue
            log(f"{name}: compiling")
            t = time.perf_counter()
            obj, info = compile_model(model_text, portable=portable)
            compile_s = time.perf_counter() - t
            t = time.perf_counter()
            forest = CompiledForest(obj, info, booster.num_feature())
            out = {"cpu": info["cpu"], "object_bytes": len(obj), "compile_s": round(compile_s, 3),
                   "load_s": round(time.perf_counter() - t, 4)}
            for threads in (0, 1):
                s, raw = best(lambda t=threads, f=forest: f.raw_score(X, t), args.repeats)
                out["all_cores" if threads == 0 else "one_thread"] = {
                    "rows_per_s": round(len(X) / s), "speedup_vs_lightgbm": round(lgb_s[threads] / s, 2)}
            out["single_row_us"] = per_row_us(lambda a, f=forest: f.raw_score(a, 1), X[:1], args.single_calls)
            out["feature_rows"] = gaps(raw, ref, calibrator)
            out["parity_rows"] = gaps(forest.raw_score(P, 1), ref_p, calibrator)
            result[name] = out
        if args.skip_tl2cgen:
            result["tl2cgen"] = {"skipped": "--skip-tl2cgen"}
        else:
            log("tl2cgen: compiling")
            try:
                result["tl2cgen"] = bench_tl2cgen(bundle_dir / "model.txt", X, P, ref, ref_p, calibrator, tmp, args,
                                                  lgb_s)
            except Exception as exc:  # noqa: BLE001 - a candidate that fails is reported, not fatal
                result["tl2cgen"] = {"failed": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
        if not reason:
            log("score_frame: with and without the bundle's compiled trees")
            compiled_dir = tmp / "compiled_bundle"
            compile_bundle(bundle_dir, compiled_dir, signing_key=private, allow_unsigned=True)
            t = time.perf_counter()
            fast = load_bundle(compiled_dir)
            load_s = time.perf_counter() - t
            assert fast.compiled is not None, fast.compiled_note
            s_plain, plain = best(lambda: score_frame(bundle, frame), args.repeats)
            s_fast, quick = best(lambda: score_frame(fast, frame), args.repeats)
            s_checked, _ = best(lambda: bundle.grade(bundle.predict_pd(frame)), args.repeats)
            result["score_frame"] = {
                "note": "the `creditmodel score` loop on the same rows (checks, encoding, PD, grade); "
                        "column-by-column checks + Booster.predict was the path of every chunk before the "
                        "vectorised screen",
                "column_checks_and_booster_predict_rows_per_s": round(len(frame) / s_checked),
                "screen_and_booster_predict_rows_per_s": round(len(frame) / s_plain),
                "screen_and_compiled_rows_per_s": round(len(frame) / s_fast),
                "compiled_over_bare_booster_predict": round(lgb_s[0] / s_fast, 2),
                "compiled_over_column_checks_path": round(s_checked / s_fast, 2),
                "max_abs_pd_diff": float(np.max(np.abs(quick["pd"].to_numpy() - plain["pd"].to_numpy()))),
                "grades_equal": bool((quick["grade"] == plain["grade"]).all()),
                "bundle_load_with_parity_check_s": round(load_s, 4)}
            from creditmodel.service.scoring import FastScorer

            sample = features[names].sample(200, random_state=0)
            rows = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
                    for r in sample.to_dict("records")]
            per_request: dict[str, Any] = {}
            for label, b in (("lightgbm", bundle), ("compiled", fast)):
                scorer = FastScorer(b, num_threads=1)  # as `serve` builds it: one thread per request
                enc = [scorer.encode_rows([r]) for r in rows]
                per_request[label] = {
                    "pd_us": per_row_us(lambda _, s=scorer, e=enc: [s.pd(x) for x in e], X[:1], 20) / len(enc),
                    "pd_and_reasons_us": per_row_us(lambda _, s=scorer, e=enc: [(s.pd(x), s.reasons(x)) for x in e],
                                                    X[:1], 5) / len(enc)}
            result["service_scorer_one_application"] = {
                **{k: {m: round(v, 1) for m, v in d.items()} for k, d in per_request.items()},
                "note": "in-process FastScorer (what /v1/score runs per application, HTTP excluded), mean over 200 "
                        "applications; reasons are LightGBM's TreeSHAP either way"}
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
