"""environment.yml and pyproject.toml must name the same packages with the same lower bounds."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"python-duckdb": "duckdb"}


def _spec(line: str) -> tuple[str, str]:
    name, bound = re.match(r"([A-Za-z0-9_.-]+)(?:\[[a-z,]+\])?\s*(.*)", line.strip()).groups()
    return CONDA_NAMES.get(name.lower(), name.lower()), bound.replace(" ", "")


def test_environment_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(_spec(d) for d in project["dependencies"] + project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = dict(_spec(d) for d in env["dependencies"] if isinstance(d, str) and not d.startswith(("python=", "pip")))
    assert conda == wanted
    assert "python=3.11" in env["dependencies"]


def test_constraints_pin_every_direct_dependency():
    pins = dict(_spec(line) for line in (ROOT / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dep in project["dependencies"] + project["optional-dependencies"]["dev"]:
        name = _spec(dep)[0]
        assert name in pins and pins[name].startswith("=="), name
