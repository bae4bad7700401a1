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
from creditmodel.texts import Phrase

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


# where a message points: "bundle DIR: model.txt" as the caller names it, or a Phrase of the catalogue
Where = str | Phrase


def _ints(value: str, n: int, where: Where, field: str, lo: int = _INT32[0], hi: int = _INT32[1]) -> list[int]:
    tokens = value.split(" ") if value else []
    if len(tokens) != n:
        raise BundleError.of("error.model_text.count", where=where, field=field, n=len(tokens), expected=n)
    if n and _INT_LIST.fullmatch(value):
        out = [int(t) for t in tokens]
        if lo <= min(out) and max(out) <= hi:
            return out
    for t in tokens:  # find the culprit for the message
        if not _INT.match(t) or not lo <= int(t) <= hi:
            raise BundleError.of("error.model_text.int_outside", where=where, field=field, value=t[:40], lo=lo, hi=hi)
    return [int(t) for t in tokens]


def _floats(value: str, n: int, where: Where, field: str, finite: bool = False) -> list[float]:
    tokens = value.split(" ") if value else []
    if len(tokens) != n:
        raise BundleError.of("error.model_text.count", where=where, field=field, n=len(tokens), expected=n)
    if n and _NUM_LIST.fullmatch(value):
        out = [float(t) for t in tokens]
        if not finite or all(map(math.isfinite, out)):
            return out
    for t in tokens:  # find the culprit for the message
        if not _NUM.match(t):
            raise BundleError.of("error.model_text.not_number", where=where, field=field, value=t[:40])
        if finite and not math.isfinite(float(t)):
            raise BundleError.of("error.model_text.not_finite", where=where, field=field, value=t)
    return [float(t) for t in tokens]


def _one_int(kv: dict[str, str], key: str, where: Where, lo: int, hi: int) -> int:
    if key not in kv:
        raise BundleError.of("error.model_text.field_missing", where=where, field=key)
    return _ints(kv[key], 1, where, key, lo, hi)[0]


def _check_tree(block: str, i: int, n_features: int, tree_of: Where) -> None:
    where = Phrase("error.model_text.at_tree", {"where": tree_of, "i": i})
    head = f"Tree={i}\n"
    if not block.startswith(head):
        raise BundleError.of("error.model_text.block_start", where=where, start=block[:20], head=head.strip())
    if not block.endswith("\n\n"):
        raise BundleError.of("error.model_text.block_end", where=where)
    body, _, rest = block[len(head):].partition("\n\n")
    if rest.strip("\n"):
        raise BundleError.of("error.model_text.after_fields", where=where, rest=rest.strip()[:40])
    kv: dict[str, str] = {}
    lines = body.split("\n")
    if len(lines) > _MAX_TREE_LINES:
        raise BundleError.of("error.model_text.too_many_lines", where=where, n=len(lines), most=_MAX_TREE_LINES)
    for line in lines:
        key, eq, value = line.partition("=")
        if not eq or "=" in value or key not in _TREE_KEYS:
            raise BundleError.of("error.model_text.bad_line", where=where, line=line[:40])
        if key in kv:
            raise BundleError.of("error.model_text.field_twice", where=where, field=key)
        kv[key] = value
    n = _one_int(kv, "num_leaves", where, 1, _MAX_LEAVES)
    num_cat = _one_int(kv, "num_cat", where, 0, max(n - 1, 0))
    if kv.get("is_linear", "0") != "0":
        raise BundleError.of("error.model_text.linear", where=where, value=kv["is_linear"][:20])
    if "shrinkage" in kv:
        _floats(kv["shrinkage"], 1, where, "shrinkage", finite=True)
    if "leaf_value" not in kv:
        raise BundleError.of("error.model_text.field_missing", where=where, field="leaf_value")
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
                raise BundleError.of("error.model_text.field_missing_cat", where=where, field=key, num_cat=num_cat)
        bounds = _ints(kv["cat_boundaries"], num_cat + 1, where, "cat_boundaries", 0)
        if bounds[0] != 0 or any(b > c for b, c in zip(bounds, bounds[1:])):
            raise BundleError.of("error.model_text.cat_boundaries", where=where, bounds=bounds[:10])
        _ints(kv["cat_threshold"], bounds[-1], where, "cat_threshold", 0, 2**32 - 1)
    for key in ("split_feature", "threshold", "left_child", "right_child"):
        if key not in kv:
            raise BundleError.of("error.model_text.field_missing_leaves", where=where, field=key, n=n)
    _ints(kv["split_feature"], n - 1, where, "split_feature", 0, n_features - 1)
    threshold = _floats(kv["threshold"], n - 1, where, "threshold")
    decision = _ints(kv.get("decision_type", " ".join(["0"] * (n - 1))), n - 1, where, "decision_type", 0, 15)
    for node, (d, t) in enumerate(zip(decision, threshold)):
        if (d >> 2) & 3 == 3:
            raise BundleError.of("error.model_text.decision_type", where=where, node=node, value=d)
        if d & 1:  # categorical split: the threshold indexes cat_boundaries
            if not (t.is_integer() and 0 <= t < num_cat):
                raise BundleError.of("error.model_text.cat_threshold", where=where, node=node, value=t,
                                     num_cat=num_cat)
        elif math.isnan(t):
            raise BundleError.of("error.model_text.threshold_nan", where=where, node=node)
    left = _ints(kv["left_child"], n - 1, where, "left_child", -n, n - 2)
    right = _ints(kv["right_child"], n - 1, where, "right_child", -n, n - 2)
    seen_nodes, seen_leaves, stack = {0}, set(), [0]
    while stack:
        node = stack.pop()
        for child in (left[node], right[node]):
            if child < 0:
                if ~child in seen_leaves:
                    raise BundleError.of("error.model_text.leaf_twice", where=where, leaf=~child)
                seen_leaves.add(~child)
            else:
                if child in seen_nodes:
                    raise BundleError.of("error.model_text.node_twice", where=where, node=child)
                seen_nodes.add(child)
                stack.append(child)
    if len(seen_nodes) != n - 1 or len(seen_leaves) != n:
        raise BundleError.of("error.model_text.unreached", where=where, nodes=len(seen_nodes), n_nodes=n - 1,
                             leaves=len(seen_leaves), n_leaves=n)


def check_model_text(text: str, where: Where, feature_names: Sequence[str] | None = None) -> int:
    """Raise BundleError unless `text` is a complete, well-formed LightGBM binary model; return its tree count.

    `where` prefixes every message (e.g. "bundle DIR: model.txt", or a Phrase); `feature_names`, when given,
    must be the model's features in order.
    """
    if "\r" in text or "\x00" in text:
        raise BundleError.of("error.model_text.control_chars", where=where)
    start = 0 if text.startswith("Tree=") else text.find("\nTree=") + 1
    if start == 0 and not text.startswith("Tree="):
        raise BundleError.of("error.model_text.no_tree", where=where)
    header: dict[str, str] = {}
    lines = [ln for ln in text[:start].split("\n") if ln]
    if not lines or lines[0] != "tree":
        raise BundleError.of("error.model_text.first_line", where=where, line=lines[0][:40] if lines else "")
    for line in lines[1:]:
        key, _, value = line.partition("=")
        if "=" in value and key != "feature_names":
            raise BundleError.of("error.model_text.header_line", where=where, line=line[:40])
        if key in header:
            raise BundleError.of("error.model_text.header_twice", where=where, field=key)
        header[key] = value
    for key in _REQUIRED_HEADER:
        if key not in header:
            raise BundleError.of("error.model_text.header_missing", where=where, field=key)
    for key in ("num_class", "num_tree_per_iteration"):
        if header[key] != "1":
            raise BundleError.of("error.model_text.header_not_binary", where=where, field=key, value=header[key][:20])
    if header["objective"].split(" ")[0] != "binary":
        raise BundleError.of("error.model_text.objective", where=where, value=header["objective"][:40])
    n_features = _ints(header["max_feature_idx"], 1, where, "max_feature_idx", 0, 1_000_000)[0] + 1
    names = header["feature_names"].split(" ")
    if len(names) != n_features or not all(names):
        raise BundleError.of("error.model_text.feature_names_count", where=where, n=len(names), expected=n_features)
    if feature_names is not None and names != list(feature_names):
        raise BundleError.of("error.model_text.feature_names_differ", where=where)
    if len(header["feature_infos"].split(" ")) != n_features:
        raise BundleError.of("error.model_text.feature_infos_count", where=where,
                             n=len(header["feature_infos"].split(" ")), expected=n_features)
    sizes = _ints(header["tree_sizes"], len(header["tree_sizes"].split(" ")), where, "tree_sizes", 1)
    if not sizes:
        raise BundleError.of("error.model_text.tree_sizes_empty", where=where)
    # tree_sizes count bytes; the tree blocks are ASCII, so characters and bytes agree inside them
    pos, end = start, len(text)
    for i, size in enumerate(sizes):
        if pos + size > end:
            raise BundleError.of("error.model_text.tree_past_end", where=where, i=i, n=len(sizes))
        block = text[pos:pos + size]
        if not block.isascii():
            raise BundleError.of("error.model_text.tree_not_ascii", where=where, i=i)
        _check_tree(block, i, n_features, where)
        pos += size
    rest = text[pos:].lstrip("\n")
    if not rest.startswith("end of trees\n"):
        raise BundleError.of("error.model_text.no_end_of_trees", where=where, i=len(sizes) - 1, rest=rest[:30])
    tail = rest[len("end of trees\n"):].split("\n")
    for line in tail:
        if not _TAIL_LINE.match(line):
            raise BundleError.of("error.model_text.tail_line", where=where, line=line[:40])
    if ("parameters:" in tail) != ("end of parameters" in tail):
        raise BundleError.of("error.model_text.parameters_open", where=where)
    if not text.endswith("\npandas_categorical:null\n"):
        raise BundleError.of("error.model_text.no_tail", where=where, end=text[-30:])
    return len(sizes)
