"""Share of a run's wall time spent validating (the pipeline's validate stage plus the validation report),
before and after: the sources of a git revision (`--before-ref`, e.g. the branch point) against the
working tree, and the working tree's figures drawn one after another or side by side (`--workers`).

Each configuration runs the whole pipeline in a fresh interpreter (so each pays its own imports) on the
same synthetic world, with a private MLflow store in a temporary directory, and reports the stage
timings of run.json (wall and CPU seconds per stage, drawing workers included), the validation share
of each (on a shared machine the CPU share is the steadier figure), the process CPU time, the load, the
report's verdict and counts. The verdicts must be equal: drawing figures in parallel changes no
finding. Prints one JSON object.

    .venv/bin/python benchmarks/bench_validation_share.py --enterprises 5000 --workers 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VALIDATION_STAGES = ("validate", "report")


def one(enterprises: int, workers: int, seed: int, density: float | None = None) -> dict:
    from creditmodel.config import build_config
    from creditmodel.pipeline import run_pipeline

    root = Path(tempfile.mkdtemp(prefix="bench_validation_share"))
    synthetic = {"enterprises": enterprises, "seed": seed,
                 **({"transaction_density": density} if density is not None else {})}
    overrides = {"output_dir": str(root / "out"), "synthetic": synthetic}
    try:
        config = build_config({**overrides, "validation": {"figure_workers": workers}})
    except Exception:  # noqa: BLE001  sources from before figure_workers existed: figures drawn in order
        config = build_config(overrides)
        workers = 1
    try:
        t = time.perf_counter()
        result = run_pipeline(config, tracking_uri=f"sqlite:///{root / 'mlflow.db'}", progress=lambda msg: None)
        wall = time.perf_counter() - t
        run = json.loads((root / "out" / "run.json").read_text())
        oot_loans = int(sum(1 for _ in open(root / "out" / "priced_oot.csv")) - 1)
        import duckdb  # the book's size: every loan, and those with a label (the rows modelled)

        loans = duckdb.sql(f"SELECT count(*) FROM read_parquet('{root / 'out' / 'world' / 'loans.parquet'}')"
                           ).fetchall()[0][0] if (root / "out" / "world" / "loans.parquet").exists() else None
        scored = duckdb.sql(f"SELECT count(*) FROM read_parquet('{root / 'out' / 'scored.parquet'}')").fetchall()[0][0]
    finally:
        shutil.rmtree(root, ignore_errors=True)  # a big world's outputs must not pile up in the temp directory
    timings = result.timings
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    validation = sum(timings.get(k, 0.0) for k in VALIDATION_STAGES)
    cpu = getattr(result, "cpu_timings", None) or {}  # sources from before the pipeline recorded CPU per stage
    cpu_validation = sum(cpu.get(k, 0.0) for k in VALIDATION_STAGES)
    return {"figure_workers": workers, "wall_s": round(wall, 2), "timings_s": timings,
            "validation_s": round(validation, 2), "validation_share": round(validation / sum(timings.values()), 3),
            "cpu_timings_s": cpu, "validation_cpu_s": round(cpu_validation, 2),
            "validation_cpu_share": round(cpu_validation / sum(cpu.values()), 3) if cpu else None,
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "cpu_s": round(own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime, 2),
            "loans": loans, "loans_scored": scored, "oot_loans": oot_loans,
            "validation_status": run["validation_status"], "validation_counts": run["validation_counts"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--enterprises", type=int, default=5000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="figure_workers to compare (1 = serial)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--density", type=float, default=None,
                    help="transaction density of the world (default: the configuration's); a 200k-loan book "
                         "(about 100k enterprises) fits in memory at 0.14, like the other benchmarks at scale")
    ap.add_argument("--before-ref", help="also run the pipeline from this git revision's src/ (e.g. integ)")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.enterprises, args.workers[0], args.seed, args.density)))
        return
    repo = Path(__file__).resolve().parents[1]
    plan = [("working tree", str(repo / "src"), w) for w in args.workers]
    with tempfile.TemporaryDirectory(prefix="bench_before") as before:
        if args.before_ref:
            archive = subprocess.run(["git", "-C", str(repo), "archive", args.before_ref, "src"], check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", before], input=archive, check=True)
            plan.insert(0, (args.before_ref, str(Path(before) / "src"), 1))
        runs = []
        for label, src, w in plan:
            env = {**os.environ, "PYTHONPATH": src}
            out = subprocess.run([sys.executable, __file__, "--one", "--enterprises", str(args.enterprises),
                                  "--workers", str(w), "--seed", str(args.seed),
                                  *(["--density", str(args.density)] if args.density is not None else [])],
                                 check=True, capture_output=True, text=True, env=env)
            runs.append({"sources": label, **json.loads(out.stdout.strip().splitlines()[-1])})
    verdicts = {json.dumps([r["validation_status"], r["validation_counts"]], sort_keys=True) for r in runs}
    print(json.dumps({"benchmark": "validation_share", "enterprises": args.enterprises, "density": args.density,
                      "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                  "load_avg_1m_at_end": round(os.getloadavg()[0], 2)},
                      "same_verdict": len(verdicts) == 1, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
