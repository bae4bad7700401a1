"""Refuse notebooks that carry outputs or execution counts (rendered outputs are never committed).

    python tools/check_notebook_outputs.py [--strip] NOTEBOOK.ipynb ...

Without --strip it lists each offending notebook and exits 1; with --strip it removes the outputs and
execution counts in place (cell sources and metadata untouched). Used by the pre-commit hook.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def dirty_cells(nb: dict) -> int:
    return sum(1 for c in nb.get("cells", []) if c.get("cell_type") == "code"
               and (c.get("outputs") or c.get("execution_count") is not None))


def strip(nb: dict) -> dict:
    for c in nb.get("cells", []):
        if c.get("cell_type") == "code":
            c["outputs"], c["execution_count"] = [], None
    return nb


def main(argv: list[str]) -> int:
    fix = "--strip" in argv
    bad = 0
    for name in (a for a in argv if a != "--strip"):
        path = Path(name)
        nb = json.loads(path.read_text(encoding="utf-8"))
        n = dirty_cells(nb)
        if not n:
            continue
        if fix:
            path.write_text(json.dumps(strip(nb), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"{path}: stripped the outputs of {n} cells")
        else:
            print(f"{path}: {n} code cells carry outputs or execution counts; "
                  f"run python tools/check_notebook_outputs.py --strip {path}")
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
