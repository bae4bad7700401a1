"""The stages import only to their left: data -> features -> models -> validation/export -> tracking -> pricing/service.

Each package is imported in a fresh interpreter and the creditmodel modules that got imported are
checked against the allowed order; every import statement in src/ (also those inside functions,
which run later) is checked the same way; and the scoring service's import path carries no plotting.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "creditmodel"

# rank of each stage; a stage may import stages of lower or equal rank (equal: no cycle, checked below)
RANK = {"data": 0, "features": 1, "models": 2, "validation": 3, "export": 3, "tracking": 4, "pricing": 5,
        "service": 5, "monitoring": 6}  # monitoring reads bundles and re-uses the scoring service's reasons
BASE = {"outputs", "exceptions", "config", "signals", "regulatory", "texts", "_lazy", "memory",
        "priority"}  # usable by every stage
TOP = {"pipeline", "cli", "cli_usage", "__main__"}  # the run and the command line use everything
PLOTTING = ("matplotlib", "shap", "optbinning", "mlflow", "optuna", "duckdb")


def _unit(module: str) -> str | None:
    """The stage or base module a creditmodel module belongs to (None for the top-level package)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _imported(modules: list[str]) -> dict:
    """sys.modules (creditmodel's and the top-level third-party names) after importing `modules` afresh."""
    code = ("import importlib, json, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(json.dumps(sorted(sys.modules)))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    names = json.loads(res.stdout.strip().splitlines()[-1])
    return {"creditmodel": {n for n in names if n.startswith("creditmodel.")},
            "top": {n.split(".")[0] for n in names}, "all": set(names)}


def _modules_of(unit: str) -> list[str]:
    path = PACKAGE / unit
    if path.is_dir():
        return sorted("creditmodel." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
                      for p in path.rglob("*.py"))
    return [f"creditmodel.{unit}"]


def _allowed(importer: str, imported: str) -> bool:
    if imported in BASE or importer in TOP or imported == importer:
        return True
    if importer in BASE:
        return False
    if imported in TOP:
        return False
    return RANK[imported] <= RANK[importer]


def test_every_unit_is_known():
    """A new package or top-level module must be placed in the order (or among the base modules)."""
    units = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem != "__init__")}
    assert units - (set(RANK) | BASE | TOP) == set()


@pytest.mark.parametrize("unit", sorted(RANK) + sorted(BASE))
def test_a_fresh_import_pulls_only_what_is_left_of_it(unit):
    found = _imported(_modules_of(unit))["creditmodel"]
    wrong = sorted(m for m in found if _unit(m) is not None and not _allowed(unit, _unit(m)))
    assert not wrong, f"importing creditmodel.{unit} imports {wrong}"


def _import_edges() -> set[tuple[str, str, str]]:
    """(importer unit, imported unit, where) for every `import creditmodel.X` / `from creditmodel.X import`."""
    edges = set()
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        importer = rel.parts[0].removesuffix(".py")
        if importer == "__init__":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                unit = _unit(name) if name.startswith("creditmodel.") else None
                if unit in set(RANK) | BASE | TOP:
                    edges.add((importer, unit, f"{rel}:{node.lineno}"))
    return edges


def test_no_import_statement_reaches_right():
    """Imports inside functions count too: they run on the path that calls them."""
    wrong = sorted(f"{where}: {a} imports {b}" for a, b, where in _import_edges()
                   if a not in BASE and not _allowed(a, b))
    assert not wrong, "\n".join(wrong)


def test_no_package_cycle():
    graph: dict[str, set[str]] = {}
    for a, b, _ in _import_edges():
        if a != b and a not in BASE | TOP and b not in BASE | TOP:
            graph.setdefault(a, set()).add(b)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and (seen.add(nxt) or reaches(nxt, goal, seen))):
                return True
        return False

    cycles = sorted(a for a in graph if reaches(a, a, set()))
    assert not cycles, f"package cycle through {cycles}: {graph}"


def test_the_scoring_path_imports_no_plotting():
    """The service, its bundle loader and scorer: no matplotlib (nor shap, optbinning, MLflow, optuna, DuckDB).

    scipy and scikit-learn do get imported, by LightGBM itself (``lightgbm.basic`` imports scipy.sparse,
    ``lightgbm.compat`` scikit-learn, which imports scipy.stats): unavoidable while the service runs
    LightGBM's booster."""
    found = _imported(["creditmodel.service.app", "creditmodel.service.scoring", "creditmodel.service.workers",
                       "creditmodel.export.bundle", "creditmodel.features.reasons"])
    assert not [p for p in PLOTTING if p in found["top"]], sorted(found["top"] & set(PLOTTING))
    assert not {m for m in found["creditmodel"] if _unit(m) in ("validation", "tracking")}
    lgb_only = _imported(["lightgbm"])["top"]
    assert {"scipy", "sklearn"} <= lgb_only  # the reason they are on the scoring path at all


def test_importing_plots_chooses_no_backend():
    """A notebook keeps its own backend: importing the plotting modules neither imports pyplot nor sets one."""
    found = _imported(["creditmodel.validation.explain", "creditmodel.validation.plots"])
    assert "matplotlib.pyplot" not in found["all"]
    code = ("import os, sys; os.environ['MPLBACKEND'] = 'svg'; import creditmodel.validation.explain, "
            "creditmodel.validation.plots; import matplotlib; print(matplotlib.get_backend())")
    env = dict(os.environ, PYTHONPATH=str(SRC))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "svg"
