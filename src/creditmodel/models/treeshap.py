"""Exact path-dependent TreeSHAP of a LightGBM booster, tabulated once and vectorised over rows.

LightGBM's ``pred_contrib`` walks every tree recursively for every row. Its values depend on a row only
through which conditions on each leaf's path the row satisfies: for a leaf l whose path splits on the
distinct features U (d of them), with zero fraction z_j (the product of the cover ratios of j's splits
on the path) and one fraction o_j (1 when the row satisfies all of j's conditions, else 0), the leaf
adds to feature i in U

    v_l (o_i - z_i) sum over S in U \\ {i} of |S|! (d - |S| - 1)! / d!  prod_{j in S} o_j  prod_{j not in S, i} z_j

(Lundberg et al. 2020, algorithm 2 unrolled; the same idea as FastTreeSHAP v2). With o binary there
are 2^d patterns per leaf, so each leaf's contributions are tabulated once per booster. A tree with at
most ``MAX_TREE_NODES`` splits (the default 7-leaf trees have 6) gets one table indexed by all its split
decisions; deeper trees are looked up leaf by leaf. Scoring a block of rows is then a fixed number of
array operations whatever the number of trees: every split decision at once, the decisions packed into
table codes, one gather from the tables and one sum per feature.

The values are LightGBM's to rounding (tests check 1e-9 on trained models); the split decisions follow
LightGBM's rules for missing values, zeros and categorical bitsets (tests check the leaves against
``pred_leaf``). :func:`shap_values` is the one entry point: it uses the tables when the booster allows
them and ``pred_contrib`` otherwise, and hands the few rows whose top reasons are ties (or within
rounding of one) to ``pred_contrib``, so that the ranking of adverse factors is LightGBM's on every row.
"""

from __future__ import annotations

import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from math import factorial
from typing import Any

import numpy as np
import scipy.sparse as sp

from creditmodel.features.reasons import pred_contrib_values

__all__ = ["TreeShap", "explainer", "shap_values", "TIE_TOLERANCE"]

MAX_UNIQUE_DEPTH = 12  # 2^12 patterns per leaf; deeper paths are left to pred_contrib
MAX_TREE_NODES = 10  # trees with at most this many splits get one table indexed by all their decisions
KZERO = 1e-35  # LightGBM's kZeroThreshold
BLOCK_CELLS = 1 << 21  # rows per block x (nodes + slots): keeps a block's arrays within the CPU caches' reach
TIE_TOLERANCE = 1e-12  # top values closer than this (to each other or to 0) are ranked by pred_contrib itself
RANKED = 3  # the top values whose order the tie guard protects (reason codes use 3)
PARALLEL_ROWS = 8192  # below this one thread does the whole matrix
# A few rows of a very small forest: pred_contrib's recursion costs no more than the tables' fixed numpy
# overhead. Measured, one row, one thread, shap_values with its tie guard (CPU time): 30 trees / 150 nodes
# 44 us either way; 56 trees / 336 nodes pred_contrib 115 us, tables 55 us; 150 trees / 900 nodes 176
# against 71 us; 600 trees / 3,600 nodes 440 against 50-90 us (benchmarks/bench_reasons.py `single_row`).
# A request's one row of a run's model (150 trees, ~900 nodes) therefore goes to the tables.
FEW_ROWS, SMALL_FOREST_NODES = 4, 200


@dataclass
class _Leaf:
    path: list[tuple[int, bool]]  # (node index, goes left)
    features: np.ndarray  # distinct features on the path, in order of first split
    bits: list[list[tuple[int, bool]]]  # per distinct feature, its (node, goes left) conditions
    z: np.ndarray  # zero fraction of each distinct feature
    value: float
    table: np.ndarray | None = None  # (2^d patterns, d) contributions (_tabulate)


def _weights(d: int) -> np.ndarray:
    return np.array([factorial(s) * factorial(d - s - 1) / factorial(d) for s in range(d)])


def _leaf_tables(z: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Contributions (leaves, 2^d patterns, d features) of leaves with d distinct features each, zero
    fractions z (leaves, d) and values (leaves,); bit k of a pattern is o of feature k.

    For feature i and pattern P the sum runs over the subsets S of P without i; with Zc[S] the product of
    z over the features outside S, a term is w(|S|) Zc[S + i], and the sum over all subsets of P is a
    subset-sum (zeta) transform: d passes over the 2^d patterns instead of a pass per (P, S) pair.
    """
    n, d = z.shape
    codes = np.arange(2 ** d)
    member = ((codes[:, None] >> np.arange(d)) & 1).astype(bool)  # (2^d, d)
    outside = np.ones((n, 2 ** d))
    for j in range(d):  # Zc[S] = prod of z_j over j not in S
        outside *= np.where(member[:, j], 1.0, z[:, j:j + 1])
    size = member.sum(axis=1)
    w = np.where(member, 0.0, _weights(d)[size.clip(max=d - 1)][:, None])  # (2^d, d): w(|S|) when i not in S
    total = outside[:, codes[:, None] | (1 << np.arange(d))[None, :]] * w  # (n, 2^d, d)
    for j in range(d):  # sum over the subsets: add each pattern without bit j to the one with it
        view = total.reshape(n, 2 ** (d - j - 1), 2, 2 ** j, d)
        view[:, :, 1] += view[:, :, 0]
    return value[:, None, None] * (member[None].astype(np.float64) - z[:, None, :]) * total


def _tabulate(leaves: list[_Leaf]) -> None:
    """Sets each leaf's table, leaves of equal depth together, in batches of bounded size."""
    by_depth: dict[int, list[_Leaf]] = {}
    for lf in leaves:
        by_depth.setdefault(len(lf.features), []).append(lf)
    for d, group in by_depth.items():
        step = max(1, (1 << 22) // ((2 ** d) * d))
        for s in range(0, len(group), step):
            part = group[s:s + step]
            tables = _leaf_tables(np.array([lf.z for lf in part]), np.array([lf.value for lf in part]))
            for lf, t in zip(part, tables):
                lf.table = t


class TreeShap:
    """Exact TreeSHAP values of a binary LightGBM booster, tabulated once, evaluated vectorised.

    Raises ValueError for boosters it cannot tabulate (multiclass, linear trees, averaged forests,
    paths over more than ``MAX_UNIQUE_DEPTH`` distinct features); :func:`explainer` turns that into None.
    """

    def __init__(self, booster: Any) -> None:
        dump = booster.dump_model()
        if dump.get("num_class", 1) != 1 or dump.get("num_tree_per_iteration", 1) != 1:
            raise ValueError("TreeShap supports binary and regression boosters only")
        if dump.get("average_output"):
            raise ValueError("averaged forests (random forest mode) are not supported")
        self.n_features = int(dump["max_feature_idx"]) + 1
        self._node_list: list[tuple[int, float, np.ndarray | None, bool, str]] = []
        self.leaves: list[_Leaf] = []
        small: list[tuple[int, int, list[_Leaf]]] = []  # (first node, nodes, leaves) of each small tree
        big: list[_Leaf] = []
        for tree in dump["tree_info"]:
            if tree.get("is_linear"):
                raise ValueError("linear trees are not supported")
            first, leaves = len(self._node_list), len(self.leaves)
            self._walk(tree["tree_structure"], [])
            m = len(self._node_list) - first
            if 0 < m <= MAX_TREE_NODES:
                small.append((first, m, self.leaves[leaves:]))
            else:
                big.extend(self.leaves[leaves:])
        _tabulate(self.leaves)
        self._compile_nodes()
        self._tabulate_trees(small)
        self._tabulate_leaves(big)
        self._used = np.unique(np.concatenate([self._small_features, self._big_features])).astype(np.intp)
        self.used = self._used  # the features the trees split on; the others' values are always 0
        self._small_sum = self._sum_matrix(self._small_features)
        self._big_sum = self._sum_matrix(self._big_features)
        self._pool: ThreadPoolExecutor | None = None
        self.base_value: float | None = None  # pred_contrib's last column, asked once (shap_values)
        self._pool_lock = threading.Lock()

    # --- construction ------------------------------------------------------------------------

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
            self.leaves.append(_Leaf([(i, left) for i, left, _, _ in path], np.array(features),
                                     [bits[f] for f in features], np.array([z[f] for f in features]), value))
            return
        idx = len(self._node_list)
        cats = None
        if node["decision_type"] == "==":
            cats = np.array([int(c) for c in str(node["threshold"]).split("||")], dtype=np.int64)
        self._node_list.append((int(node["split_feature"]), float(node["threshold"]) if cats is None else 0.0, cats,
                                bool(node["default_left"]), str(node["missing_type"])))
        total = float(node["internal_count"])
        for child, left in ((node["left_child"], True), (node["right_child"], False)):
            count = child.get("internal_count", child.get("leaf_count"))
            self._walk(child, [*path, (idx, left, float(count) / total, int(node["split_feature"]))])

    def _compile_nodes(self) -> None:
        """Per node arrays for the vectorised split decisions; column n (one past the last) is never taken."""
        nodes = self._node_list
        self.n_nodes = len(nodes)
        self._feat = np.array([f for f, *_ in nodes], dtype=np.intp)
        self._thr = np.array([t for _, t, *_ in nodes], dtype=np.float64)
        self._default_left = np.array([d for *_, d, _ in nodes], dtype=bool)
        self._nan_default = np.array([m == "NaN" for *_, m in nodes], dtype=bool)
        self._zero_nodes = np.array([k for k, (*_, m) in enumerate(nodes) if m == "Zero"], dtype=np.intp)
        cat = [k for k, (_, _, c, _, _) in enumerate(nodes) if c is not None]
        self._cat_nodes = np.array(cat, dtype=np.intp)
        width = max([int(nodes[k][2].max()) + 1 for k in cat] or [1])  # type: ignore[union-attr]
        self._cat_table = np.zeros((len(cat), width), dtype=bool)  # the bitset of each categorical split
        for r, k in enumerate(cat):
            codes = nodes[k][2]
            assert codes is not None
            self._cat_table[r, codes[codes >= 0]] = True

    def _tabulate_trees(self, small: list[tuple[int, int, list[_Leaf]]]) -> None:
        """One table per small tree, indexed by the bits of all its split decisions (bit k: the tree's k-th
        node goes left), kept per (tree, feature) slot; the slots sorted by feature, then tree."""
        n = self.n_nodes
        empty = [np.zeros(0, dtype=np.intp)]
        rows = np.concatenate([np.full(m, t) for t, (_, m, _) in enumerate(small)] or empty)
        cols = np.concatenate([np.arange(first, first + m) for first, m, _ in small] or empty)
        weight = np.concatenate([2.0 ** np.arange(m) for _, m, _ in small] or empty)
        self._code_matrix = sp.csr_matrix((weight.astype(np.float32), (rows, cols)), shape=(len(small), n))
        slots: list[tuple[int, int, np.ndarray]] = []  # (feature, tree, table over 2^m codes)
        for t, (first, m, leaves) in enumerate(small):
            c = np.arange(2 ** m)
            go = {first + k: ((c >> k) & 1).astype(bool) for k in range(m)}  # every combination of decisions
            per_feature: dict[int, np.ndarray] = {}
            for lf in leaves:
                pattern = np.zeros(len(c), dtype=np.int64)
                for k, conds in enumerate(lf.bits):
                    ok = np.logical_and.reduce([go[i] if left else ~go[i] for i, left in conds])
                    pattern |= ok.astype(np.int64) << k
                assert lf.table is not None
                table = lf.table[pattern]  # (2^m, d)
                for k, f in enumerate(lf.features):
                    per_feature.setdefault(int(f), np.zeros(len(c)))
                    per_feature[int(f)] += table[:, k]
            slots.extend((f, t, v) for f, v in per_feature.items())
        slots.sort(key=lambda s: (s[0], s[1]))
        sizes = np.array([len(v) for _, _, v in slots], dtype=np.intp)
        self._small_table = np.concatenate([v for _, _, v in slots]) if slots else np.zeros(0)
        self._small_base = (np.cumsum(sizes) - sizes).astype(np.intp)[:, None]
        self._small_tree = np.array([t for _, t, _ in slots], dtype=np.intp)
        self._small_features = np.array([f for f, _, _ in slots], dtype=np.intp)

    def _tabulate_leaves(self, big: list[_Leaf]) -> None:
        """Leaf-by-leaf tables of the deeper trees. A bit (leaf, feature) is set when the row meets all that
        feature's conditions on the leaf's path (a count of met conditions, one sparse product), the leaf's
        pattern is the weighted sum of its bits (another), and each (leaf, feature) slot reads its column of
        the leaf's table at that pattern."""
        n = self.n_nodes
        cond_rows: list[int] = []
        cond_cols: list[int] = []
        sizes: list[int] = []
        pattern_rows: list[int] = []
        pattern_weight: list[float] = []
        slots: list[tuple[int, int, int, int]] = []  # (feature, leaf, offset of the value for pattern 0, d)
        tables, offset = [], 0
        for li, lf in enumerate(big):
            d = len(lf.features)
            for k, conds in enumerate(lf.bits):
                bit = len(sizes)
                sizes.append(len(conds))
                pattern_rows.append(li)
                pattern_weight.append(float(1 << k))
                for i, left in conds:  # column i: node i goes left; column n + i: it goes right
                    cond_rows.append(bit)
                    cond_cols.append(i if left else n + i)
            table = lf.table  # (2^d, d), row-major: value of k at pattern p is p * d + k
            assert table is not None
            tables.append(table.ravel())
            slots.extend((int(f), li, offset + k, d) for k, f in enumerate(lf.features))
            offset += table.size
        slots.sort(key=lambda s: (s[0], s[1]))
        bits = len(sizes)
        self._cond_matrix = sp.csr_matrix((np.ones(len(cond_rows), dtype=np.float32), (cond_rows, cond_cols)),
                                          shape=(bits, 2 * n))
        self._bit_size = np.array(sizes, dtype=np.float32)[:, None]
        self._pattern_matrix = sp.csr_matrix((np.array(pattern_weight, dtype=np.float32),
                                              (pattern_rows, np.arange(bits))), shape=(len(big), bits))
        self._big_table = np.concatenate(tables) if tables else np.zeros(0)
        self._big_leaf = np.array([s[1] for s in slots], dtype=np.intp)
        self._big_offset = np.array([s[2] for s in slots], dtype=np.intp)[:, None]
        self._big_d = np.array([s[3] for s in slots], dtype=np.intp)[:, None]
        self._big_features = np.array([s[0] for s in slots], dtype=np.intp)

    def _sum_matrix(self, features: np.ndarray) -> sp.csr_matrix:
        """(used features, slots): adds up each feature's slots, in slot order (tree order)."""
        return sp.csr_matrix((np.ones(len(features)), (np.searchsorted(self._used, features), np.arange(len(features)))),
                             shape=(len(self._used), len(features)))

    # --- evaluation ---------------------------------------------------------------------------

    def decisions(self, X: np.ndarray) -> np.ndarray:
        """(rows, nodes): LightGBM's split decision (True: left) of every node for every row."""
        return self._decisions(np.ascontiguousarray(np.asarray(X, dtype=np.float64).T)).T

    def _decisions(self, XT: np.ndarray) -> np.ndarray:
        """(nodes, rows) split decisions of a transposed block (features, rows): one row of numbers per node,
        so that every operation below runs along contiguous memory."""
        nan_t = np.isnan(XT)
        x = np.where(nan_t, 0.0, XT)[self._feat]  # missing type None and Zero: NaN counts as 0
        nan = nan_t[self._feat]
        go = x <= self._thr[:, None]
        default = nan & self._nan_default[:, None]
        if len(self._zero_nodes):
            default[self._zero_nodes] |= np.abs(x[self._zero_nodes]) <= KZERO
        np.copyto(go, self._default_left[:, None], where=default)
        if len(self._cat_nodes):  # LightGBM: NaN and negative codes go right, else the bitset decides
            ok = ~nan[self._cat_nodes]
            code = np.trunc(x[self._cat_nodes])
            ok &= (code >= 0) & (code < self._cat_table.shape[1])
            code = np.where(ok, code, 0).astype(np.intp)
            go[self._cat_nodes] = ok & self._cat_table[np.arange(len(self._cat_nodes))[:, None], code]
        return go

    def leaf_paths(self, X: np.ndarray) -> np.ndarray:
        """(rows, leaves) True where the row reaches the leaf (for checks against ``pred_leaf``)."""
        go = self.decisions(X)
        return np.stack([np.logical_and.reduce([go[:, i] if left else ~go[:, i] for i, left in lf.path])
                         for lf in self.leaves], axis=1)

    def values(self, X: np.ndarray, num_threads: int | None = None) -> np.ndarray:
        """SHAP values (rows, features) in margin space: ``pred_contrib`` without its last column.

        num_threads: threads sharing the blocks of rows (None or 0: the machine's cores; 1: this thread).
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected a matrix with {self.n_features} columns, got shape {X.shape}")
        phi = np.zeros((len(X), self.n_features))
        cells = 2 * self.n_nodes + len(self._small_tree) + len(self._big_leaf) + self._cond_matrix.shape[0]
        block = max(16, BLOCK_CELLS // max(cells, 1))
        starts = range(0, len(X), block)
        threads = min(os.cpu_count() or 1, len(starts)) if not num_threads else min(num_threads, len(starts))
        if threads <= 1 or len(X) < PARALLEL_ROWS:
            for s in starts:
                self._block(X[s:s + block], phi[s:s + block])
            return phi
        pool = self._threads(threads)
        list(pool.map(lambda s: self._block(X[s:s + block], phi[s:s + block]), starts))
        return phi

    def _threads(self, n: int) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None or self._pool._max_workers < n:
                self._pool = ThreadPoolExecutor(n, thread_name_prefix="treeshap")
            return self._pool

    def _block(self, X: np.ndarray, phi: np.ndarray) -> None:
        """Writes the SHAP values of a block of rows into `phi` (its rows, all features). The work runs on the
        transposed block, (nodes or slots, rows), so each step is a pass over contiguous rows, and every
        regrouping (decisions into codes, conditions into bits, slots into features) is one sparse product."""
        go = self._decisions(np.ascontiguousarray(X.T))
        g = go.view(np.uint8).astype(np.float32)  # 0/1: the sums below are exact small integers
        used = np.zeros((len(self._used), len(X)))
        if len(self._small_tree):
            codes = (self._code_matrix @ g).astype(np.intp)  # (trees, rows)
            used += self._small_sum @ self._small_table.take(codes[self._small_tree] + self._small_base)
        if len(self._big_leaf):
            met = self._cond_matrix @ np.concatenate([g, 1.0 - g])  # (bits, rows): conditions met
            pattern = (self._pattern_matrix @ (met == self._bit_size).astype(np.float32)).astype(np.intp)
            used += self._big_sum @ self._big_table.take(pattern[self._big_leaf] * self._big_d + self._big_offset)
        phi[:, self._used] = used.T


_CACHE: weakref.WeakKeyDictionary[Any, TreeShap | None] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def explainer(booster: Any) -> TreeShap | None:
    """The booster's tabulated TreeShap, built once per booster (None when it cannot be tabulated)."""
    with _CACHE_LOCK:
        try:
            return _CACHE[booster]
        except KeyError:
            pass
        except TypeError:  # not weak-referenceable: build every time
            return _build(booster)
        found = _CACHE[booster] = _build(booster)
        return found


def _build(booster: Any) -> TreeShap | None:
    try:
        return TreeShap(booster)
    except (ValueError, KeyError):
        return None


def _ambiguous(values: np.ndarray, n: int = RANKED) -> np.ndarray:
    """Rows where a rounding difference could change which features are the top `n` adverse ones or their
    order: among the `n` + 1 largest values, one of the `n` largest lies within TIE_TOLERANCE of 0, or of
    the next value while not clearly negative. `values` holds the columns that can be non-zero (the
    others are exactly 0 in pred_contrib as here, never adverse)."""
    k = values.shape[1]
    if not len(values) or k == 0:
        return np.zeros(len(values), dtype=bool)
    m = min(n + 1, k)
    top = -np.sort(-np.partition(values, k - m, axis=1)[:, k - m:], axis=1)  # (rows, m), largest first
    head = top[:, :min(n, k)]
    out = (np.abs(head) <= TIE_TOLERANCE).any(axis=1)
    if m > 1:
        gaps = top[:, :-1] - top[:, 1:]
        out |= ((gaps <= TIE_TOLERANCE) & (top[:, :-1] > -TIE_TOLERANCE))[:, :min(n, m - 1)].any(axis=1)
    return out


def shap_values(booster: Any, encoded: np.ndarray, *, num_threads: int | None = None,
                ranked: int = RANKED) -> tuple[np.ndarray, float]:
    """Exact TreeSHAP of a binary LightGBM booster on an encoded matrix: (values (n, k), base value),
    LightGBM's ``pred_contrib`` to rounding, from the booster's tables when it has them.

    Rows whose `ranked` largest values are within TIE_TOLERANCE of each other, of the next value or of 0
    take LightGBM's own values, so the top `ranked` adverse features and their order are ``pred_contrib``'s.
    `num_threads`: threads (None: the machine's cores; 1 suits a request).
    """
    encoded = np.asarray(encoded, dtype=np.float64)
    shap = explainer(booster) if len(encoded) else None
    if (shap is None or encoded.ndim != 2 or encoded.shape[1] != shap.n_features
            or (len(encoded) <= FEW_ROWS and shap.n_nodes < SMALL_FOREST_NODES)):
        return pred_contrib_values(booster, encoded, num_threads=num_threads)
    values = shap.values(encoded, num_threads=num_threads)
    base = _base_value(booster, shap, num_threads)
    ties = np.flatnonzero(_ambiguous(np.take(values, shap.used, axis=1), ranked)) if ranked else np.empty(0, dtype=np.intp)
    if len(ties):
        values[ties] = pred_contrib_values(booster, encoded[ties], num_threads=num_threads)[0]
    return values, base


def _base_value(booster: Any, shap: TreeShap, num_threads: int | None) -> float:
    """pred_contrib's last column (the expected margin, the same on every row), asked once per booster."""
    if shap.base_value is None:
        shap.base_value = pred_contrib_values(booster, np.full((0, shap.n_features), np.nan),
                                              num_threads=num_threads)[1]
    return shap.base_value
