"""Check a LightGBM text model completely before LightGBM's C++ parser sees it.

LightGBM trusts its model text: with `tree_sizes=` it jumps to each tree by byte offset from
several threads, reads key=value lines without bounds checks, and indexes arrays by the child and
feature numbers it finds. A truncated or corrupted file can therefore abort the whole process (or
read out of bounds) instead of raising. This module walks the text as LightGBM would and checks
every part it relies on, so that a bad model.txt becomes one BundleError naming the tree and field:

- the header: `tree`, one binary model (num_class=1), max_feature_idx, feature_names and
  feature_infos of that length, and `tree_sizes=` with one positive byte size per tree;
- each tree block, found at its offset: `Tree=i`, at most 22 known key=value lines, every array of
  the length num_leaves asks for, numbers that parse, finite leaf values and thresholds, split
  features inside the header's range, valid decision types and categorical boundaries, and child
  links that form one tree over all internal nodes and leaves;
- `end of trees` right after the last block, only LightGBM's own sections after it, and the
  `pandas_categorical:null` line its Python package writes last (so no truncation goes unseen).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from creditmodel.exceptions import BundleError

_INT = re.compile(r"^-?\d{1,10}$")
_NUM_RE = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d{1,3})?|[+-]?(?:inf|nan)"
_NUM = re.compile(rf"^(?:{_NUM_RE})$")
_NUM_LIST = re.compile(rf"(?:{_NUM_RE})(?: (?:{_NUM_RE}))*")
_INT_LIST = re.compile(r"-?\d{1,10}(?: -?\d{1,10})*")
_REQUIRED_HEADER = ("version", "num_class", "num_tree_per_iteration", "label_index", "max_feature_idx",
                    "objective", "feature_names", "feature_infos", "tree_sizes")
_TREE_KEYS = {"num_leaves", "num_cat", "split_feature", "split_gain", "threshold", "decision_type", "left_child",
              "right_child", "leaf_value", "leaf_weight", "leaf_count", "internal_value", "internal_weight",
              "internal_count", "cat_boundaries", "cat_threshold", "is_linear", "shrinkage"}
_MAX_TREE_LINES = 22  # LightGBM's Tree parser reads at most this many key=value lines
_MAX_LEAVES = 1 << 17
_TAIL_LINE = re.compile(r"^(?:|feature_importances:|parameters:|end of parameters|[^=\s\[][^=]*=\d+|"
                        r"\[[A-Za-z0-9_]+: [^\n]*\]|pandas_categorical:null)$")
_INT32 = (-(2**31), 2**31 - 1)


def _fail(where: str, message: str) -> BundleError:
    return BundleError(f"{where}: {message}")


def _ints(value: str, n: int, where: str, field: str, lo: int = _INT32[0], hi: int = _INT32[1]) -> list[int]:
    tokens = value.split(" ") if value else []
    if len(tokens) != n:
        raise _fail(where, f"field {field} has {len(tokens)} values, expected {n}")
    if n and _INT_LIST.fullmatch(value):
        out = [int(t) for t in tokens]
        if lo <= min(out) and max(out) <= hi:
            return out
    for t in tokens:  # find the culprit for the message
        if not _INT.match(t) or not lo <= int(t) <= hi:
            raise _fail(where, f"field {field}: value {t[:40]!r}, expected a whole number in [{lo}, {hi}]")
    return [int(t) for t in tokens]


def _floats(value: str, n: int, where: str, field: str, finite: bool = False) -> list[float]:
    tokens = value.split(" ") if value else []
    if len(tokens) != n:
        raise _fail(where, f"field {field} has {len(tokens)} values, expected {n}")
    if n and _NUM_LIST.fullmatch(value):
        out = [float(t) for t in tokens]
        if not finite or all(map(math.isfinite, out)):
            return out
    for t in tokens:  # find the culprit for the message
        if not _NUM.match(t):
            raise _fail(where, f"field {field}: value {t[:40]!r} is not a number")
        if finite and not math.isfinite(float(t)):
            raise _fail(where, f"field {field}: value {t!r}, expected a finite number")
    return [float(t) for t in tokens]


def _one_int(kv: dict[str, str], key: str, where: str, lo: int, hi: int) -> int:
    if key not in kv:
        raise _fail(where, f"field {key} is missing")
    return _ints(kv[key], 1, where, key, lo, hi)[0]


def _check_tree(block: str, i: int, n_features: int, where: str) -> None:
    where = f"{where}: tree {i}"
    head = f"Tree={i}\n"
    if not block.startswith(head):
        raise _fail(where, f"block starts with {block[:20]!r}, expected {head.strip()!r} (tree_sizes or the "
                           f"trees before it are damaged)")
    if not block.endswith("\n\n"):
        raise _fail(where, "block does not end with a blank line (tree_sizes does not match the text)")
    body, _, rest = block[len(head):].partition("\n\n")
    if rest.strip("\n"):
        raise _fail(where, f"unexpected text after the tree's fields: {rest.strip()[:40]!r}")
    kv: dict[str, str] = {}
    lines = body.split("\n")
    if len(lines) > _MAX_TREE_LINES:
        raise _fail(where, f"{len(lines)} field lines, expected at most {_MAX_TREE_LINES}")
    for line in lines:
        key, eq, value = line.partition("=")
        if not eq or "=" in value or key not in _TREE_KEYS:
            raise _fail(where, f"line {line[:40]!r}, expected one of LightGBM's tree fields as key=value")
        if key in kv:
            raise _fail(where, f"field {key} appears twice")
        kv[key] = value
    n = _one_int(kv, "num_leaves", where, 1, _MAX_LEAVES)
    num_cat = _one_int(kv, "num_cat", where, 0, max(n - 1, 0))
    if kv.get("is_linear", "0") != "0":
        raise _fail(where, f"is_linear={kv['is_linear'][:20]}, expected 0 (linear trees are not part of a bundle)")
    if "shrinkage" in kv:
        _floats(kv["shrinkage"], 1, where, "shrinkage", finite=True)
    if "leaf_value" not in kv:
        raise _fail(where, "field leaf_value is missing")
    _floats(kv["leaf_value"], n, where, "leaf_value", finite=True)
    if n == 1:  # LightGBM reads nothing else of a one-leaf tree
        return
    for key, count in (("leaf_weight", n), ("internal_value", n - 1), ("internal_weight", n - 1),
                       ("split_gain", n - 1)):
        if key in kv:
            _floats(kv[key], count, where, key)
    for key, count in (("leaf_count", n), ("internal_count", n - 1)):
        if key in kv:
            _ints(kv[key], count, where, key)
    if num_cat:
        for key in ("cat_boundaries", "cat_threshold"):
            if key not in kv:
                raise _fail(where, f"field {key} is missing (num_cat={num_cat})")
        bounds = _ints(kv["cat_boundaries"], num_cat + 1, where, "cat_boundaries", 0)
        if bounds[0] != 0 or any(b > c for b, c in zip(bounds, bounds[1:])):
            raise _fail(where, f"field cat_boundaries {bounds[:10]}, expected rising numbers from 0")
        _ints(kv["cat_threshold"], bounds[-1], where, "cat_threshold", 0, 2**32 - 1)
    for key in ("split_feature", "threshold", "left_child", "right_child"):
        if key not in kv:
            raise _fail(where, f"field {key} is missing (num_leaves={n})")
    _ints(kv["split_feature"], n - 1, where, "split_feature", 0, n_features - 1)
    threshold = _floats(kv["threshold"], n - 1, where, "threshold")
    decision = _ints(kv.get("decision_type", " ".join(["0"] * (n - 1))), n - 1, where, "decision_type", 0, 15)
    for node, (d, t) in enumerate(zip(decision, threshold)):
        if (d >> 2) & 3 == 3:
            raise _fail(where, f"field decision_type: node {node} has {d}, not a valid LightGBM decision type")
        if d & 1:  # categorical split: the threshold indexes cat_boundaries
            if not (t.is_integer() and 0 <= t < num_cat):
                raise _fail(where, f"field threshold: categorical node {node} has {t}, expected an index "
                                   f"below num_cat={num_cat}")
        elif math.isnan(t):
            raise _fail(where, f"field threshold: node {node} is NaN, expected a number")
    left = _ints(kv["left_child"], n - 1, where, "left_child", -n, n - 2)
    right = _ints(kv["right_child"], n - 1, where, "right_child", -n, n - 2)
    seen_nodes, seen_leaves, stack = {0}, set(), [0]
    while stack:
        node = stack.pop()
        for child in (left[node], right[node]):
            if child < 0:
                if ~child in seen_leaves:
                    raise _fail(where, f"fields left_child/right_child: leaf {~child} is reached twice")
                seen_leaves.add(~child)
            else:
                if child in seen_nodes:
                    raise _fail(where, f"fields left_child/right_child: node {child} is reached twice (not a tree)")
                seen_nodes.add(child)
                stack.append(child)
    if len(seen_nodes) != n - 1 or len(seen_leaves) != n:
        raise _fail(where, f"fields left_child/right_child reach {len(seen_nodes)} of {n - 1} nodes and "
                           f"{len(seen_leaves)} of {n} leaves from the root, expected all")


def check_model_text(text: str, where: str, feature_names: Sequence[str] | None = None) -> int:
    """Raise BundleError unless `text` is a complete, well-formed LightGBM binary model; return its tree count.

    `where` prefixes every message (e.g. "bundle DIR: model.txt"); `feature_names`, when given,
    must be the model's features in order.
    """
    if "\r" in text or "\x00" in text:
        raise _fail(where, "contains carriage returns or NUL bytes; expected LightGBM's text format")
    start = 0 if text.startswith("Tree=") else text.find("\nTree=") + 1
    if start == 0 and not text.startswith("Tree="):
        raise _fail(where, "no 'Tree=' block: truncated or not a LightGBM text model")
    header: dict[str, str] = {}
    lines = [ln for ln in text[:start].split("\n") if ln]
    if not lines or lines[0] != "tree":
        raise _fail(where, f"first line {lines[0][:40] if lines else ''!r}, expected 'tree'")
    for line in lines[1:]:
        key, _, value = line.partition("=")
        if "=" in value and key != "feature_names":
            raise _fail(where, f"header line {line[:40]!r}, expected key=value")
        if key in header:
            raise _fail(where, f"header field {key} appears twice")
        header[key] = value
    for key in _REQUIRED_HEADER:
        if key not in header:
            raise _fail(where, f"header field {key} is missing")
    for key in ("num_class", "num_tree_per_iteration"):
        if header[key] != "1":
            raise _fail(where, f"header field {key}={header[key][:20]}, expected 1 (a binary PD model)")
    if header["objective"].split(" ")[0] != "binary":
        raise _fail(where, f"header field objective={header['objective'][:40]}, expected binary")
    n_features = _ints(header["max_feature_idx"], 1, where, "max_feature_idx", 0, 1_000_000)[0] + 1
    names = header["feature_names"].split(" ")
    if len(names) != n_features or not all(names):
        raise _fail(where, f"header field feature_names has {len(names)} names, expected {n_features}")
    if feature_names is not None and names != list(feature_names):
        raise _fail(where, "header field feature_names does not match feature_schema.json")
    if len(header["feature_infos"].split(" ")) != n_features:
        raise _fail(where, f"header field feature_infos has {len(header['feature_infos'].split(' '))} entries, "
                           f"expected {n_features}")
    sizes = _ints(header["tree_sizes"], len(header["tree_sizes"].split(" ")), where, "tree_sizes", 1)
    if not sizes:
        raise _fail(where, "header field tree_sizes is empty, expected one size per tree")
    # tree_sizes count bytes; the tree blocks are ASCII, so characters and bytes agree inside them
    pos, end = start, len(text)
    for i, size in enumerate(sizes):
        if pos + size > end:
            raise _fail(where, f"tree {i} of {len(sizes)} runs past the end of the text (truncated)")
        block = text[pos:pos + size]
        if not block.isascii():
            raise _fail(where, f"tree {i}: non-ASCII text in a tree block (tree_sizes does not match the text)")
        _check_tree(block, i, n_features, where)
        pos += size
    rest = text[pos:].lstrip("\n")
    if not rest.startswith("end of trees\n"):
        raise _fail(where, f"after tree {len(sizes) - 1}: {rest[:30]!r}, expected 'end of trees' "
                           f"(truncated, or tree_sizes does not match)")
    tail = rest[len("end of trees\n"):].split("\n")
    for line in tail:
        if not _TAIL_LINE.match(line):
            raise _fail(where, f"after 'end of trees': line {line[:40]!r}, expected LightGBM's feature "
                               f"importances, parameters or pandas_categorical:null")
    if ("parameters:" in tail) != ("end of parameters" in tail):
        raise _fail(where, "the parameters section is not closed by 'end of parameters' (truncated)")
    if not text.endswith("\npandas_categorical:null\n"):
        raise _fail(where, f"ends with {text[-30:]!r}, expected the line 'pandas_categorical:null' that "
                           f"LightGBM's Python package writes last (truncated)")
    return len(sizes)
