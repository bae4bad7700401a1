"""Start-up cost of the scoring service: what `creditmodel serve` imports before it answers.

Each repetition is a fresh interpreter that imports ``creditmodel.service.app``, loads a bundle and
builds the app (``create_app``) exactly as ``serve`` does, and reports the seconds of each step and
which heavy third-party packages ended up imported (the service must not import plotting).

    .venv/bin/python benchmarks/bench_serve_startup.py --bundle DIR [--repeat 5]

Without --bundle only the imports are timed (``creditmodel.service.app``, ``creditmodel.export.bundle``
and ``creditmodel.service.scoring``). Prints one JSON object: the median of each step and the
packages imported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

HEAVY = ("matplotlib", "scipy", "sklearn", "shap", "optbinning", "mlflow", "lightgbm", "duckdb", "fastapi")

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import creditmodel.service.app as app_module
import creditmodel.export.bundle as bundle_module
import creditmodel.service.scoring
t1 = time.perf_counter()
out = {"import_s": t1 - t0}
if sys.argv[1]:
    bundle = bundle_module.load_bundle(sys.argv[1], allow_unsigned=True)
    t2 = time.perf_counter()
    app_module.create_app(bundle)
    t3 = time.perf_counter()
    out.update(load_bundle_s=t2 - t1, create_app_s=t3 - t2, total_s=t3 - t0)
heavy = sys.argv[2].split(",")
out["imported"] = sorted({m.split(".")[0] for m in sys.modules} & set(heavy))
out["scipy_modules"] = sorted(m for m in sys.modules if m.startswith("scipy.") and m.count(".") == 1)
out["creditmodel_modules"] = sorted(m for m in sys.modules if m.startswith("creditmodel"))
print(json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="an export bundle directory (signature not checked)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    src = Path(__file__).resolve().parents[1] / "src"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")])))
    runs = []
    for _ in range(args.repeat):
        res = subprocess.run([sys.executable, "-c", CHILD, str(args.bundle or ""), ",".join(HEAVY)],
                             capture_output=True, text=True, env=env, check=True)
        runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    steps = [k for k in ("import_s", "load_bundle_s", "create_app_s", "total_s") if k in runs[0]]
    result = {f"median_{k}": round(statistics.median(r[k] for r in runs), 3) for k in steps}
    result.update(repeat=args.repeat, imported=runs[0]["imported"], scipy_modules=runs[0]["scipy_modules"],
                  creditmodel_modules=runs[0]["creditmodel_modules"], python=platform.python_version(),
                  load_average=os.getloadavg()[0] if hasattr(os, "getloadavg") else None)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
