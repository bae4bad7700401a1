"""Exact path-dependent TreeSHAP of a LightGBM booster, vectorised over rows, for reason codes.

LightGBM's ``pred_contrib`` walks every tree recursively for every row. Its values depend on a row only
through which conditions on each leaf's path the row satisfies: for a leaf l whose path splits on the
distinct features U (d of them), with zero fraction z_j (the product of the cover ratios of j's splits
on the path) and one fraction o_j (1 when the row satisfies all of j's conditions, else 0), the leaf
adds to feature i in U

    v_l (o_i - z_i) sum over S in U \\ {i} of |S|! (d - |S| - 1)! / d!  prod_{j in S} o_j  prod_{j not in S, i} z_j

(Lundberg et al. 2020, algorithm 2 unrolled; the same idea as FastTreeSHAP v2). With o binary there
are 2^d patterns per leaf, so each leaf's contributions are tabulated once per booster; scoring a
batch is then one vectorised split decision per node and one table look-up per leaf. The values are
LightGBM's to rounding (tests check 1e-9), and the split decisions follow LightGBM's rules for
missing values, zeros and categorical bitsets (tests check the leaves against ``pred_leaf``).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial

import numpy as np

MAX_UNIQUE_DEPTH = 12  # 2^12 patterns per leaf; deeper paths are left to pred_contrib
CHUNK_ROWS = 2048
MAX_TREE_NODES = 10  # trees with at most this many splits get one table indexed by all their decisions
KZERO = 1e-35  # LightGBM's kZeroThreshold


@dataclass
class _Node:
    feature: int
    threshold: float
    categorical: bool
    categories: np.ndarray | None
    default_left: bool
    missing: str  # "None", "Zero" or "NaN"


@dataclass
class _Leaf:
    path: list[tuple[int, bool]]  # (node index, goes left)
    features: np.ndarray  # distinct features on the path, in order of first split
    bits: list[list[tuple[int, bool]]]  # per distinct feature, its (node, goes left) conditions
    table: np.ndarray  # (2^d, d) contributions by pattern
    value: float


def _weights(d: int) -> np.ndarray:
    return np.array([factorial(s) * factorial(d - s - 1) / factorial(d) for s in range(d)])


def _leaf_table(z: np.ndarray, value: float) -> np.ndarray:
    """Contributions (2^d patterns, d features) of one leaf; bit k of a pattern is o of feature k."""
    d = len(z)
    k = np.arange(d)
    codes = np.arange(2 ** d)
    member = ((codes[:, None] >> k) & 1).astype(bool)  # (2^d, d): pattern/subset membership
    w = _weights(d)[member.sum(axis=1).clip(max=d - 1)]  # weight by subset size (size d never valid)
    # zprod[S, i] = prod over j not in S and j != i of z_j
    excluded = member[:, None, :] | np.eye(d, dtype=bool)[None, :, :]  # (S, i, j)
    zprod = np.where(excluded, 1.0, z[None, None, :]).prod(axis=2)
    # valid[P, S, i]: S within the pattern's satisfied features, i not in S
    valid = ((member[None, :, :] & ~member[:, None, :]).sum(axis=2) == 0)[:, :, None] & ~member[None, :, :]
    total = np.einsum("psi,si->pi", valid * w[None, :, None], zprod)
    return value * (member.astype(np.float64) - z[None, :]) * total


class TreeShap:
    """Exact TreeSHAP values of a binary LightGBM booster, tabulated once, evaluated vectorised."""

    def __init__(self, booster) -> None:
        dump = booster.dump_model()
        if dump.get("num_class", 1) != 1:
            raise ValueError("TreeShap supports binary and regression boosters only")
        self.n_features = int(dump["max_feature_idx"]) + 1
        self.nodes: list[_Node] = []
        self.leaves: list[_Leaf] = []
        small: list[tuple[int, int, list[_Leaf]]] = []  # (first node, nodes, leaves) of each small tree
        self.big_leaves: list[_Leaf] = []
        for tree in dump["tree_info"]:
            if tree.get("is_linear"):
                raise ValueError("linear trees are not supported")
            first, leaves = len(self.nodes), len(self.leaves)
            self._walk(tree["tree_structure"], [])
            m = len(self.nodes) - first
            if 0 < m <= MAX_TREE_NODES:
                small.append((first, m, self.leaves[leaves:]))
            else:
                self.big_leaves.extend(self.leaves[leaves:])
        self._tabulate_trees(small)

    def _tabulate_trees(self, small: list[tuple[int, int, list[_Leaf]]]) -> None:
        """One table per small tree, indexed by the bits of all its split decisions: (trees, 2^m, u)."""
        width = max([len({int(f) for lf in leaves for f in lf.features}) for _, _, leaves in small] or [1])
        codes = 2 ** max([m for _, m, _ in small] or [0])
        self._tables = np.zeros((len(small), codes, width))
        self._columns = np.zeros((len(small), width), dtype=np.int64)
        self._spans = [(first, m) for first, m, _ in small]
        for t, (first, m, leaves) in enumerate(small):
            feats = sorted({int(f) for lf in leaves for f in lf.features})
            pos = {f: k for k, f in enumerate(feats)}
            self._columns[t, :len(feats)] = feats
            c = np.arange(2 ** m)
            go = {first + k: ((c >> k) & 1).astype(bool) for k in range(m)}  # every combination of decisions
            for lf in leaves:
                pattern = np.zeros(len(c), dtype=np.int64)
                for k, conds in enumerate(lf.bits):
                    ok = np.logical_and.reduce([go[i] if left else ~go[i] for i, left in conds])
                    pattern |= ok.astype(np.int64) << k
                self._tables[t, :len(c), [pos[int(f)] for f in lf.features]] += lf.table[pattern].T

    def _walk(self, node: dict, path: list[tuple[int, bool, float, int]]) -> None:
        if "leaf_index" in node or "split_index" not in node:
            value = float(node.get("leaf_value", 0.0))
            if not path:  # a single-leaf tree: base value only
                return
            features: list[int] = []
            bits: dict[int, list[tuple[int, bool]]] = {}
            z: dict[int, float] = {}
            for idx, left, ratio, feat in path:
                if feat not in bits:
                    features.append(feat)
                    bits[feat], z[feat] = [], 1.0
                bits[feat].append((idx, left))
                z[feat] *= ratio
            if len(features) > MAX_UNIQUE_DEPTH:
                raise ValueError(f"a leaf's path splits on {len(features)} features; at most {MAX_UNIQUE_DEPTH}")
            zs = np.array([z[f] for f in features])
            self.leaves.append(_Leaf([(i, left) for i, left, _, _ in path], np.array(features),
                                     [bits[f] for f in features], _leaf_table(zs, value), value))
            return
        idx = len(self.nodes)
        dt = node["decision_type"]
        cats = None
        if dt == "==":
            cats = np.array([int(c) for c in str(node["threshold"]).split("||")], dtype=np.int64)
        self.nodes.append(_Node(int(node["split_feature"]), float(node["threshold"]) if cats is None else 0.0,
                                cats is not None, cats, bool(node["default_left"]), str(node["missing_type"])))
        total = float(node["internal_count"])
        for child, left in ((node["left_child"], True), (node["right_child"], False)):
            count = child.get("internal_count", child.get("leaf_count"))
            self._walk(child, [*path, (idx, left, float(count) / total, int(node["split_feature"]))])

    def _goes_left(self, X: np.ndarray) -> np.ndarray:
        """(rows, nodes): LightGBM's split decision of every node for every row."""
        out = np.empty((len(X), len(self.nodes)), dtype=bool)
        for k, n in enumerate(self.nodes):
            x = X[:, n.feature]
            nan = np.isnan(x)
            if n.categorical:
                with np.errstate(invalid="ignore"):
                    code = np.where(nan, -1, np.trunc(np.where(nan, -1.0, x))).astype(np.int64)
                assert n.categories is not None  # a categorical split always lists its categories
                out[:, k] = ~nan & (code >= 0) & np.isin(code, n.categories)
                continue
            if n.missing == "NaN":
                with np.errstate(invalid="ignore"):
                    out[:, k] = np.where(nan, n.default_left, x <= n.threshold)
                continue
            v = np.where(nan, 0.0, x)
            left = v <= n.threshold
            if n.missing == "Zero":
                left = np.where(np.abs(v) <= KZERO, n.default_left, left)
            out[:, k] = left
        return out

    def leaf_paths(self, X: np.ndarray) -> np.ndarray:
        """(rows, leaves) True where the row reaches the leaf (for checks against ``pred_leaf``)."""
        go = self._goes_left(np.asarray(X, dtype=np.float64))
        return np.stack([np.logical_and.reduce([go[:, i] if left else ~go[:, i] for i, left in lf.path])
                         for lf in self.leaves], axis=1)

    def values(self, X: np.ndarray) -> np.ndarray:
        """SHAP values (rows, features) in margin space: ``pred_contrib`` without its last column."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected a matrix with {self.n_features} columns, got shape {X.shape}")
        phi = np.zeros((len(X), self.n_features))
        for start in range(0, len(X), CHUNK_ROWS):  # blocks of rows keep the gathered tables small
            part = X[start:start + CHUNK_ROWS]
            phi[start:start + len(part)] = self._values(part, self._goes_left(part))
        return phi

    def _values(self, X: np.ndarray, go: np.ndarray) -> np.ndarray:
        n, trees = len(X), len(self._tables)
        phi = np.zeros((n, self.n_features))
        if trees:
            goT = np.ascontiguousarray(go.T).view(np.uint8).astype(np.int16)
            codes = np.zeros((trees, n), dtype=np.int16)  # the bits of each tree's decisions
            for t, (first, m) in enumerate(self._spans):
                for k in range(m):
                    codes[t] |= goT[first + k] << k
            vals = self._tables[np.arange(trees)[:, None], codes]  # (trees, rows, width)
            index = self._columns[:, None, :] + (np.arange(n) * self.n_features)[None, :, None]
            phi += np.bincount(index.ravel(), weights=vals.ravel(), minlength=n * self.n_features
                               ).reshape(n, self.n_features)
        for lf in self.big_leaves:
            code = np.zeros(len(X), dtype=np.int64)
            for k, conds in enumerate(lf.bits):
                ok = np.logical_and.reduce([go[:, i] if left else ~go[:, i] for i, left in conds])
                code |= ok.astype(np.int64) << k
            phi[:, lf.features] += lf.table[code]
        return phi

    def top_adverse(self, X: np.ndarray, n: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """Per row the `n` largest contributions and their feature indices, largest first (ties: lower
        index first, as a stable sort of ``-values``); the caller drops the ones that are not > 0."""
        values = self.values(X)
        k = min(n, values.shape[1])
        order = np.argsort(-values, axis=1, kind="mergesort")[:, :k]
        return order, np.take_along_axis(values, order, axis=1)
