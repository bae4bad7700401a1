"""Explanations of the PD models: which features drive the PD, globally and for each loan.

LightGBM (main model)
    SHAP values come from LightGBM's own TreeSHAP, ``booster.predict(X, pred_contrib=True)``: exact
    path-dependent TreeSHAP in log-odds (margin) space, the same numbers ``shap.TreeExplainer`` returns
    for a LightGBM booster (it delegates to the same call) without building its Python tree copy.
    (shap's own C++ TreeSHAP over that copy agrees on numeric splits but reads LightGBM's categorical
    splits as numeric thresholds, so it is no reference for a model with categorical features.)
    Per row, base value + sum of the SHAP values = the raw margin ``booster.predict(X, raw_score=True)``.

    * global: mean |SHAP| ranking (:func:`global_importance`, :func:`plot_importance`), beeswarm
      (:func:`plot_beeswarm`), dependence plots of the top features with the catalogue's expected
      direction of risk marked (:func:`plot_dependence`), and :func:`direction_check`, which flags
      features whose SHAP values move against their declared direction;
    * local: :func:`select_loans` (highest PD, defaults the model missed, random), waterfall plots
      (:func:`plot_waterfall`, :func:`plot_waterfalls`) and :func:`reason_codes`, the top adverse
      factors in the catalogue's reason text.

Scorecard (benchmark)
    :func:`scorecard_reasons`: the "points lost" adverse-action method, i.e. the features where the
    loan's points fall furthest below the most points the feature can give; :func:`scorecard_iv`:
    information value per feature from the binning process.

Consistency
    :func:`importance_agreement`: rank agreement of LightGBM SHAP importance and scorecard IV;
    :func:`reasons_side_by_side`: LightGBM and scorecard reasons of each loan in one table.

Every plot function takes ``ax=None`` and returns a display object (``figure_``, ``ax_``, ``plot(ax)``,
``save(path)``, see :mod:`creditmodel.validation.plots`); it never saves, so ``plt.show()`` shows it in a
notebook. :func:`plot_waterfalls` is the report's helper that saves one file per loan. The plots are plain
matplotlib drawn from the SHAP values already computed (shap's own beeswarm and waterfall draw the same
pictures at several times the cost, and shap's beeswarm jitters differently on every run).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from creditmodel.features.catalogue import BY_NAME
from creditmodel.models.explanation import Explanation, explain, format_value, reason_codes, reason_text, shap_values  # noqa: F401  (re-exported: the explain API in one place)
from creditmodel.validation.plots import FigureDisplay, fixed_layout, new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from creditmodel.models.scorecard import ScorecardPD

DIRECTION_THRESHOLD = 0.1  # |Spearman rho| below this is too weak to call a direction
_EXPECTED_TEXT = {1: "expected: risk rises with value", -1: "expected: risk falls as value rises",
                  0: "no expected direction"}


# --- global -------------------------------------------------------------------------------------

def label(name: str) -> str:
    """The catalogue's business label of a feature (the name itself when it is not in the catalogue)."""
    return BY_NAME[name].label if name in BY_NAME else name


def global_importance(expl: Explanation) -> pd.Series:
    """Mean absolute SHAP value per feature, largest first."""
    return expl.values.abs().mean().sort_values(ascending=False).rename("mean_abs_shap")


def plot_importance(importance: pd.Series, top: int = 20, *, ax: Axes | None = None,
                    title: str = "What drives the PD (validation split)") -> FigureDisplay:
    """Horizontal bar chart of the `top` features by mean |SHAP|, labelled in business language."""
    shown = importance.head(top)[::-1]
    labels = [label(n) for n in shown.index]

    def draw(ax: Axes | None) -> tuple[Figure, Axes]:
        fig, ax = new_axes(ax, (8, 0.32 * len(shown) + 1.2))
        ax.barh(labels, shown.to_numpy(), color="#3b6ea5")
        ax.set(xlabel="mean |SHAP| (log-odds of default)", title=title)
        ax.tick_params(axis="y", labelsize=8)
        return fig, ax

    return FigureDisplay(title, draw).plot(ax)


def _is_categorical(expl: Explanation, name: str) -> bool:
    if name in expl.categorical:
        return True
    f = BY_NAME.get(name)
    return (f is not None and f.is_categorical) or not pd.api.types.is_numeric_dtype(expl.data[name])


def _numeric_data(expl: Explanation) -> np.ndarray:
    """Feature values as floats for colouring; a categorical feature becomes its category code."""
    out = np.empty(expl.data.shape, dtype=np.float64)
    for j, name in enumerate(expl.data.columns):
        col = expl.data[name]
        if _is_categorical(expl, name):
            f = BY_NAME.get(name)
            cats = list(f.categories) if f is not None and f.categories else None
            codes = pd.Categorical(col.astype(object), categories=cats).codes.astype(np.float64)
            codes[codes < 0] = np.nan
            out[:, j] = codes
        else:
            out[:, j] = pd.to_numeric(col, errors="coerce").astype("float64").to_numpy()
    return out


def _sample_rows(n: int, max_rows: int | None, seed: int) -> np.ndarray:
    if max_rows is None or n <= max_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))


SHAP_RED, SHAP_BLUE = "#ff0051", "#008bfb"  # raises / lowers the PD (shap's colours, readers know them)


def _value_colours(x: np.ndarray) -> np.ndarray:
    """A feature's values on [0, 1] for colouring: clipped to their 5th-95th percentiles (so that a few
    extreme loans do not wash out the rest, as shap does), NaN where the value is missing."""
    out = np.full(len(x), np.nan)
    ok = ~np.isnan(x)
    if ok.any():
        lo, hi = np.nanpercentile(x, [5, 95])
        if hi <= lo:
            lo, hi = np.nanmin(x), np.nanmax(x)
        out[ok] = (np.clip(x[ok], lo, hi) - lo) / (hi - lo) if hi > lo else 0.5
    return out


def swarm_offsets(s: np.ndarray, bins: int = 100, width: float = 0.4, seed: int = 0) -> np.ndarray:
    """Vertical offsets of a beeswarm row: points whose SHAP values fall into the same of `bins` equal
    bins are stacked outwards (0, +1, -1, +2, ...), scaled so that the tallest stack spans +-`width`.
    shap's own layout, vectorised, with its random order within a bin drawn from a seeded generator
    (the same figure every run)."""
    n = len(s)
    if n == 0:
        return np.zeros(0)
    span = float(np.max(s) - np.min(s))
    quant = np.round(bins * (s - np.min(s)) / (span + 1e-8))
    order = np.lexsort((np.random.default_rng(seed).random(n), quant))
    q = quant[order]
    start = np.r_[0, np.flatnonzero(np.diff(q)) + 1]
    layer = np.arange(n) - np.repeat(start, np.diff(np.r_[start, n]))  # rank within its bin
    ys = np.empty(n)
    ys[order] = np.ceil(layer / 2) * np.where(layer % 2 == 1, 1.0, -1.0)
    return ys * (width / (np.max(np.abs(ys)) + 1))


def plot_beeswarm(expl: Explanation, top: int = 20, max_rows: int | None = 5000, seed: int = 0, *,
                  ax: Axes | None = None) -> FigureDisplay:
    """SHAP beeswarm of the `top` features by mean |SHAP| on at most `max_rows` loans (seeded sample):
    each loan a dot at its SHAP value, coloured by the feature's value (blue low, red high, grey
    missing); with more features than `top`, the last row sums the others. The ranking uses every
    loan; only the dots are sampled. Drawn with plain matplotlib (shap's plotting costs several times
    more for the same picture)."""
    from matplotlib.colors import LinearSegmentedColormap

    order = list(global_importance(expl).index)
    rows = _sample_rows(len(expl.values), max_rows, seed)
    values = expl.values.to_numpy()[rows]
    data = _numeric_data(expl)[rows]
    col = {n: j for j, n in enumerate(expl.values.columns)}
    shown = order if len(order) <= top else order[:top - 1]
    lines = [(label(n), values[:, col[n]], data[:, col[n]]) for n in shown]
    if len(shown) < len(order):
        others = [col[n] for n in order[len(shown):]]
        lines.append((f"sum of {len(others)} other features", values[:, others].sum(axis=1),
                      np.full(len(rows), np.nan)))
    title = f"SHAP values of the top {len(shown)} features ({len(rows)} loans)"
    cmap = LinearSegmentedColormap.from_list("shap_value", [SHAP_BLUE, "#8a3ab9", SHAP_RED])

    def draw(ax: Axes | None) -> tuple[Figure, Axes]:
        fig, ax = new_axes(ax, (9, 0.34 * len(lines) + 1.5))
        ax.axvline(0, color="#999999", linewidth=0.8, zorder=0)
        for k, (_, s, x) in enumerate(lines):
            y = len(lines) - 1 - k + swarm_offsets(s, seed=seed)
            c = _value_colours(x)
            missing = np.isnan(c)
            if missing.any():
                ax.scatter(s[missing], y[missing], s=9, color="#777777", linewidths=0, alpha=0.8, rasterized=True)
            if (~missing).any():
                ax.scatter(s[~missing], y[~missing], s=9, c=c[~missing], cmap=cmap, vmin=0, vmax=1, linewidths=0,
                           alpha=0.8, rasterized=True)
        ax.set_yticks(range(len(lines)), [name for name, _, _ in lines][::-1], fontsize=8)
        ax.set_ylim(-0.7, len(lines) - 0.3)
        ax.set_xlabel("SHAP value (log-odds of default)")
        ax.set_title(title, fontsize=10)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        bar = fig.colorbar(_unit_scale(cmap), ax=ax, ticks=[0, 1], aspect=40, pad=0.01)
        bar.ax.set_yticklabels(["low", "high"], fontsize=8)
        bar.set_label("feature value", fontsize=8, labelpad=-10)
        bar.outline.set_visible(False)
        return fig, ax

    return FigureDisplay(title, draw).plot(ax)


def _unit_scale(cmap: Any) -> Any:
    """A colour scale from 0 to 1 for a colour bar (no data attached)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    return ScalarMappable(norm=Normalize(0, 1), cmap=cmap)


def direction_check(expl: Explanation, directions: dict[str, int] | None = None,
                    threshold: float = DIRECTION_THRESHOLD, min_rows: int = 10) -> pd.DataFrame:
    """Does each feature push the PD the way the catalogue says it should?

    Per feature, the Spearman correlation between its value and its SHAP value over the loans where
    the value is not null. With a declared direction d (+1 riskier as the value rises, -1 safer):
    "contradicts" when sign(rho) = -d and |rho| > threshold, "agrees" when sign(rho) = d and |rho| >
    threshold, "weak" otherwise; "n/a" for features with no declared direction (0 or not in
    `directions`), categorical features, features with fewer than `min_rows` non-null values and
    features whose value or SHAP is constant (e.g. unused by the model).

    `directions` defaults to the catalogue's. One row per feature, most important first, with columns
    feature, label, direction, spearman_rho, n, mean_abs_shap, status, contradicts.
    """
    if directions is None:
        directions = {n: int(BY_NAME[n].direction) for n in expl.values.columns if n in BY_NAME}
    importance = global_importance(expl)
    rows = []
    for name in importance.index:
        d = int(directions.get(name, 0))
        rho, n, status = np.nan, 0, "n/a"
        if d != 0 and not _is_categorical(expl, name):
            x = pd.to_numeric(expl.data[name], errors="coerce").to_numpy(dtype=np.float64)
            s = expl.values[name].to_numpy()
            keep = ~np.isnan(x)
            x, s, n = x[keep], s[keep], int(keep.sum())
            if n >= min_rows and np.ptp(x) > 0 and np.ptp(s) > 0:
                rho = float(stats.spearmanr(x, s).statistic)
                if abs(rho) <= threshold:
                    status = "weak"
                else:
                    status = "agrees" if np.sign(rho) == d else "contradicts"
        rows.append({"feature": name, "label": label(name), "direction": d, "spearman_rho": rho, "n": n,
                     "mean_abs_shap": float(importance[name]), "status": status,
                     "contradicts": status == "contradicts"})
    return pd.DataFrame(rows, columns=["feature", "label", "direction", "spearman_rho", "n", "mean_abs_shap",
                                       "status", "contradicts"])


def _binned_means(x: np.ndarray, s: np.ndarray, bins: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Mean SHAP in quantile bins of the value: the trend line of a dependence plot."""
    if len(np.unique(x)) <= bins:
        xs = np.unique(x)
        return xs, np.array([s[x == v].mean() for v in xs])
    edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    keep = [b for b in range(len(edges) - 1) if (which == b).any()]
    return (np.array([x[which == b].mean() for b in keep]), np.array([s[which == b].mean() for b in keep]))


def plot_dependence(expl: Explanation, top: int = 6, directions: dict[str, int] | None = None,
                    features: list[str] | None = None, max_points: int = 3000, seed: int = 0, *,
                    ax: Any = None) -> FigureDisplay:
    """SHAP dependence plots (value against SHAP) of the `top` features by mean |SHAP| (or of `features`),
    one panel each, with the binned mean SHAP, the catalogue's expected direction of risk (arrow and
    text) and the observed Spearman rho; a panel whose SHAP contradicts the expectation is framed red.
    `ax`: None (a new figure) or an array of at least as many axes as panels; ``ax_`` is the panels' array."""
    check = direction_check(expl, directions).set_index("feature")
    names = list(features) if features is not None else list(check.index[:top])
    if directions is None:
        directions = {n: int(BY_NAME[n].direction) for n in names if n in BY_NAME}
    ncols = min(3, max(len(names), 1))
    nrows = max(1, int(np.ceil(len(names) / ncols)))
    rows = _sample_rows(len(expl.values), max_points, seed)
    colours = {"agrees": "#2e7d32", "contradicts": "#c62828", "weak": "#757575", "n/a": "#757575"}

    def draw(ax: Any) -> tuple[Figure, np.ndarray]:
        if ax is None:
            import matplotlib.pyplot as plt

            fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.6 * nrows), squeeze=False)
            fixed_layout(fig, left=0.22 / ncols, right=0.99, bottom=0.22 / nrows, top=1 - 0.1 / nrows,
                         wspace=0.3, hspace=0.55)  # room for the panels' titles and rotated category names
        else:
            axes = np.atleast_1d(np.asarray(ax, dtype=object))
            if axes.size < len(names):
                raise ValueError(f"plot_dependence draws {len(names)} panels; ax holds {axes.size} axes")
            fig = axes.ravel()[0].figure
        for ax, name in zip(axes.ravel(), names):
            s_all = expl.values[name].to_numpy()
            status = check.loc[name, "status"] if name in check.index else "n/a"
            if _is_categorical(expl, name):
                col = expl.data[name].astype(object).where(expl.data[name].notna(), "(missing)").astype(str)
                cats = sorted(col.unique())
                ax.boxplot([s_all[(col == c).to_numpy()] for c in cats], showfliers=False)
                ax.set_xticks(range(1, len(cats) + 1), [c.replace("_", " ") for c in cats], rotation=30,
                              ha="right", fontsize=7)
                note = "categorical: no direction"
            else:
                x_all = pd.to_numeric(expl.data[name], errors="coerce").to_numpy(dtype=np.float64)
                x, s = x_all[rows], s_all[rows]
                ok = ~np.isnan(x)
                ax.scatter(x[ok], s[ok], s=5, alpha=0.35, color="#3b6ea5", linewidths=0)
                full = ~np.isnan(x_all)
                if full.any():
                    bx, bs = _binned_means(x_all[full], s_all[full])
                    ax.plot(bx, bs, color="black", linewidth=1.4, label="mean SHAP")
                    lo, hi = np.quantile(x_all[full], [0.005, 0.995])
                    if hi > lo:
                        ax.set_xlim(lo - 0.03 * (hi - lo), hi + 0.03 * (hi - lo))
                d = int(directions.get(name, 0))
                note = _EXPECTED_TEXT[d if d in (-1, 1) else 0]
                rho = check.loc[name, "spearman_rho"] if name in check.index else np.nan
                if not np.isnan(rho):
                    note += f"\nobserved Spearman rho = {rho:+.2f} ({status})"
                if (~full).any():
                    note += f"\n{int((~full).sum())} missing: mean SHAP {s_all[~full].mean():+.3f}"
                if d in (-1, 1):  # the expected slope as an arrow in axes coordinates
                    y0, y1 = (0.12, 0.42) if d == 1 else (0.42, 0.12)
                    ax.annotate("", xy=(0.93, y1), xytext=(0.73, y0), xycoords="axes fraction",
                                arrowprops={"arrowstyle": "->", "color": colours[status], "linewidth": 2})
                    ax.text(0.83, 0.45, "expected", transform=ax.transAxes, ha="center", fontsize=7,
                            color=colours[status])
            ax.axhline(0, color="grey", linestyle=":", linewidth=0.8)
            ax.text(0.02, 0.98, note, transform=ax.transAxes, va="top", fontsize=7,
                    bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})
            ax.set_title(label(name), fontsize=9)
            ax.set_xlabel(name, fontsize=7)
            ax.set_ylabel("SHAP (log-odds)", fontsize=8)
            ax.tick_params(labelsize=7)
            if status == "contradicts":
                for spine in ax.spines.values():
                    spine.set(color=colours["contradicts"], linewidth=2)
        for ax in axes.ravel()[len(names):]:
            ax.set_visible(False)
        return fig, axes

    return FigureDisplay("SHAP dependence", draw).plot(ax)


# --- local --------------------------------------------------------------------------------------

def select_loans(pd_: np.ndarray | pd.Series, y: np.ndarray | pd.Series, n: int = 3, seed: int = 0,
                 loan_id: np.ndarray | pd.Series | None = None) -> pd.DataFrame:
    """Loans worth a waterfall: the `n` with the highest PD, the `n` defaults with the lowest PD (the
    model's worst misses) and `n` others drawn at random (seeded), each loan at most once.

    Loan ids come from `loan_id`, else from the index of `pd_` when it is a Series, else the row
    position. Columns: loan_id, row (position in the inputs), pd, default, group.
    """
    p = np.asarray(pd_, dtype=np.float64)
    yy = np.asarray(y).astype(int)
    if len(p) != len(yy):
        raise ValueError(f"pd has {len(p)} rows, y {len(yy)}")
    if loan_id is not None:
        ids = np.asarray(loan_id)
    elif isinstance(pd_, pd.Series):
        ids = pd_.index.to_numpy()
    else:
        ids = np.arange(len(p))
    taken: list[int] = []
    groups: list[str] = []

    def take(candidates: np.ndarray, group: str) -> None:
        seen = set(taken)
        chosen = [int(i) for i in candidates if int(i) not in seen][:n]
        taken.extend(chosen)
        groups.extend([group] * len(chosen))

    take(np.argsort(-p, kind="mergesort"), "highest_pd")
    defaults = np.flatnonzero(yy == 1)
    take(defaults[np.argsort(p[defaults], kind="mergesort")], "default_lowest_pd")
    rest = np.setdiff1d(np.arange(len(p)), taken)
    take(np.random.default_rng(seed).permutation(rest), "random")
    rows = np.asarray(taken, dtype=int)
    return pd.DataFrame({"loan_id": ids[rows], "row": rows, "pd": p[rows], "default": yy[rows], "group": groups})


def _row(expl: Explanation, loan: object) -> int:
    positions = np.flatnonzero(expl.values.index.to_numpy() == loan)
    if len(positions) == 0:
        raise KeyError(f"loan {loan!r} is not in the explanation")
    return int(positions[0])


def plot_waterfall(expl: Explanation, loan: object, max_display: int = 12, title: str | None = None, *,
                   ax: Axes | None = None) -> FigureDisplay:
    """SHAP waterfall of one loan, as ``shap.plots.waterfall`` draws it: from the base value E[f(X)] at
    the bottom to the loan's margin f(x) at the top, one bar per feature (largest |SHAP| on top, red
    raises the PD, blue lowers it), the rest summed in one row; each feature labelled in business
    language with its value as a loan officer reads it. Plain matplotlib: shap's plotting costs
    several times more for the same picture."""
    i = _row(expl, loan)
    names = list(expl.values.columns)
    contrib = expl.values.to_numpy()[i].astype(np.float64)
    base = float(expl.base_value)
    margin = base + float(contrib.sum())
    order = np.argsort(-np.abs(contrib), kind="mergesort")
    shown = order if len(order) <= max_display else order[:max_display - 1]
    bars = [(f"{format_value(names[j], expl.data.iat[i, j])} = {label(names[j])}", float(contrib[j])) for j in shown]
    if len(shown) < len(order):
        rest = order[len(shown):]
        bars.append((f"{len(rest)} other features", float(contrib[rest].sum())))
    title = title or f"Loan {loan}: log-odds {margin:+.2f}, PD (uncalibrated) {1 / (1 + np.exp(-margin)):.2%}"

    def draw(ax: Axes | None) -> tuple[Figure, Axes]:
        fig, ax = new_axes(ax, (10, 0.42 * len(bars) + 1.6))
        n = len(bars)
        widths = np.array([v for _, v in bars])
        ends = margin - np.r_[0.0, np.cumsum(widths)[:-1]]  # top bar ends at f(x); the bottom one starts at E[f(X)]
        starts = ends - widths
        ypos = np.arange(n)[::-1]
        colours = [SHAP_RED if v > 0 else SHAP_BLUE for v in widths]
        ax.barh(ypos, widths, left=starts, height=0.62, color=colours)
        lo, hi = float(min(starts.min(), ends.min(), base)), float(max(starts.max(), ends.max(), base))
        pad = 0.08 * (hi - lo or 1.0)
        for y, s, e, v in zip(ypos, starts, ends, widths):
            ax.text(max(s, e) + pad * 0.1, y, f"{v:+.2f}", va="center", ha="left", fontsize=8,
                    color=SHAP_RED if v > 0 else SHAP_BLUE)
        for x in (base, margin):
            ax.axvline(x, color="#888888", linestyle=":", linewidth=0.9, zorder=0)
        box = {"facecolor": "white", "edgecolor": "none", "pad": 1}
        ax.text(base, -0.9, f"E[f(X)] = {base:.3f}", ha="center", va="top", fontsize=8, color="#555555", bbox=box)
        ax.text(margin, n - 0.3, f"f(x) = {margin:.3f}", ha="center", va="bottom", fontsize=8, color="#555555",
                bbox=box)
        ax.set_yticks(ypos, [name for name, _ in bars], fontsize=9)
        ax.set_ylim(-1.5, n + 0.2)
        ax.set_xlim(lo - pad, hi + 2.5 * pad)
        ax.set_xlabel("log-odds of default (SHAP)", fontsize=9)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        fig.suptitle(title, fontsize=10)
        return fig, ax

    return FigureDisplay(title, draw).plot(ax)


def plot_waterfalls(expl: Explanation, selection: pd.DataFrame, directory: Path, max_display: int = 12
                    ) -> list[Path]:
    """Save a waterfall per loan of `selection` (as from :func:`select_loans`) into `directory`, named
    ``waterfall_<group>_<loan_id>.png`` (the report's files); returns the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for r in selection.itertuples(index=False):
        group = getattr(r, "group", "loan")
        title = f"{str(group).replace('_', ' ')}: loan {r.loan_id}"
        if hasattr(r, "pd"):
            title += f", PD {r.pd:.2%}"
        if hasattr(r, "default"):
            title += f", defaulted: {'yes' if r.default else 'no'}"
        shown = plot_waterfall(expl, r.loan_id, max_display=max_display, title=title)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            paths.append(shown.save(directory / f"waterfall_{group}_{r.loan_id}.png"))
    return paths


# --- scorecard ----------------------------------------------------------------------------------

def scorecard_feature_points(scorecard: ScorecardPD, X: pd.DataFrame) -> pd.DataFrame:
    """Points each selected scorecard feature gives each row of X (their sum + intercept = ``points(X)``)."""
    inner = scorecard.scorecard_
    prepared = scorecard._prepare(X[list(scorecard.feature_names_in_)], scorecard.categorical_)
    out = inner.transform(prepared)
    out.index = X.index
    return out.astype(np.float64)


def scorecard_max_points(scorecard: ScorecardPD) -> pd.Series:
    """The most points each selected feature can give: the maximum over its bins (incl. special and missing)."""
    table = scorecard.table()
    return table.groupby("Variable", sort=False)["Points"].max().astype(np.float64).rename("max_points")


def scorecard_reasons(scorecard: ScorecardPD, X: pd.DataFrame, n: int = 3,
                      loan_id: pd.Series | np.ndarray | None = None) -> pd.DataFrame:
    """Per loan, the scorecard's adverse-action reasons by the "points lost" method: the `n` features
    where the loan's points fall furthest below the most points the feature can give, as the
    catalogue's reason text with the value, the feature and the points lost. A feature where the loan
    already has the maximum is never a reason. Loan ids from `loan_id`, else the index of X.

    Columns: loan_id, then per k: reason_<k>, reason_<k>_feature, reason_<k>_points_lost.
    """
    points = scorecard_feature_points(scorecard, X)
    ids = np.asarray(loan_id) if loan_id is not None else X.index.to_numpy()
    return points_lost_reasons(points.set_axis(ids, axis=0), scorecard_max_points(scorecard),
                               X.set_axis(ids, axis=0), n=n)


def points_lost_reasons(points: pd.DataFrame, max_points: pd.Series, X: pd.DataFrame, n: int = 3) -> pd.DataFrame:
    """Points-lost reasons from per-feature points already computed (e.g. logged with a run): per loan
    (the index of `points`, rows aligned with X), the `n` features furthest below their `max_points`."""
    best = max_points.reindex(points.columns).to_numpy(dtype=np.float64)
    lost = best[None, :] - points.to_numpy(dtype=np.float64)
    names = np.asarray(points.columns)
    order = np.argsort(-lost, axis=1, kind="mergesort")[:, :n]
    rows = []
    for i, loan in enumerate(points.index):
        row: dict[str, object] = {"loan_id": loan}
        for k in range(n):
            name, value = None, None
            if k < order.shape[1] and lost[i, order[i, k]] > 1e-9:
                j = order[i, k]
                name, value = names[j], float(lost[i, j])
            row[f"reason_{k + 1}"] = reason_text(name, X[name].iat[i]) if name is not None else None
            row[f"reason_{k + 1}_feature"] = name
            row[f"reason_{k + 1}_points_lost"] = value
        rows.append(row)
    return pd.DataFrame(rows)


def scorecard_iv(scorecard: ScorecardPD, selected_only: bool = False) -> pd.Series:
    """Information value per feature from the scorecard's binning process (``BinningProcess.summary()``),
    largest first; with `selected_only`, only the features the scorecard kept."""
    summary = scorecard.scorecard_.binning_process_.summary()
    if selected_only:
        summary = summary[summary["selected"].astype(bool)]
    return (summary.set_index("name")["iv"].astype(np.float64).rename("iv").rename_axis("feature")
            .sort_values(ascending=False))


def reasons_side_by_side(expl: Explanation, scorecard: ScorecardPD, X: pd.DataFrame, n: int = 3) -> pd.DataFrame:
    """Each loan of `expl` (rows of X in the same order) with its LightGBM SHAP reasons (``lightgbm_*``)
    beside the scorecard's points-lost reasons (``scorecard_*``), and whether the top reasons name the
    same feature (``same_top_feature``)."""
    if len(X) != len(expl.values):
        raise ValueError(f"X has {len(X)} rows, the explanation {len(expl.values)}")
    left = reason_codes(expl, n=n, features=True).set_index("loan_id").add_prefix("lightgbm_")
    right = scorecard_reasons(scorecard, X, n=n, loan_id=expl.values.index).set_index("loan_id").add_prefix(
        "scorecard_")
    out = pd.concat([left, right], axis=1)
    out["same_top_feature"] = (out["lightgbm_reason_1_feature"] == out["scorecard_reason_1_feature"]) & out[
        "lightgbm_reason_1_feature"].notna()
    return out.reset_index()


# --- consistency --------------------------------------------------------------------------------

def importance_agreement(shap_importance: pd.Series, iv: pd.Series, top: int = 10) -> dict:
    """Rank agreement between LightGBM's mean |SHAP| and the scorecard's information value over the
    features both have: Spearman rho, Kendall tau (tau-b), and the overlap of the two top-`top` lists
    (taken among the common features; ``top_overlap_share`` = overlap / list length)."""
    common = [f for f in shap_importance.index if f in iv.index]
    a = shap_importance.reindex(common).astype(np.float64)
    b = iv.reindex(common).astype(np.float64)
    out: dict[str, object] = {"n_common": len(common), "spearman_rho": np.nan, "kendall_tau": np.nan}
    if len(common) >= 2 and a.nunique() > 1 and b.nunique() > 1:
        out["spearman_rho"] = float(stats.spearmanr(a, b).statistic)
        out["kendall_tau"] = float(stats.kendalltau(a, b).statistic)
    k = min(top, len(common))
    top_a = list(a.sort_values(ascending=False, kind="mergesort").index[:k])
    top_b = list(b.sort_values(ascending=False, kind="mergesort").index[:k])
    shared = [f for f in top_a if f in set(top_b)]
    out.update({"top_k": k, "top_overlap": len(shared), "top_overlap_share": len(shared) / k if k else np.nan,
                "top_shared": shared, "top_only_shap": [f for f in top_a if f not in set(top_b)],
                "top_only_iv": [f for f in top_b if f not in set(top_a)]})
    return out
