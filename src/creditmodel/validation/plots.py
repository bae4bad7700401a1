"""Plots a validator looks at: ROC curves, calibration (reliability) and the PD distribution.

Each plot is a display object in the manner of scikit-learn's ``RocCurveDisplay``: build it with
``from_predictions(..., ax=None)`` (or the ``plot_*`` shortcut), and it holds what it computed plus
``figure_`` and ``ax_``. It draws on a given axes or a new figure and never saves: in a notebook the
figure shows inline (``plt.show()``), and the report saves what it needs with :meth:`Display.save`.
pyplot is imported only when something is drawn.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["Display", "FigureDisplay", "RocDisplay", "ReliabilityDisplay", "ScoreDistributionDisplay",
           "calibration_table", "plot_roc", "plot_calibration", "plot_score_distribution", "save_figure", "new_axes",
           "fixed_layout"]


_LAID_OUT: weakref.WeakSet = weakref.WeakSet()  # figures given fixed margins when they were made
MARGINS_SQUARE = {"left": 0.15, "right": 0.96, "bottom": 0.11, "top": 0.93}  # a 5x5 in. plot of rates
MARGINS_WIDE = {"left": 0.11, "right": 0.97, "bottom": 0.14, "top": 0.91}  # a 6-7 x 4 in. plot


def fixed_layout(fig: Figure, **margins: float) -> Figure:
    """Give a new figure fixed margins (``subplots_adjust`` fractions): a figure whose texts have known,
    short lengths needs no tight-layout pass, which measures every text and tick and costs a fifth to
    a third of a small figure's drawing. :func:`save_figure` then keeps these margins."""
    fig.subplots_adjust(**margins)
    _LAID_OUT.add(fig)
    return fig


def new_axes(ax: Axes | None, figsize: tuple[float, float], margins: dict[str, float] | None = None
             ) -> tuple[Figure, Axes]:
    """`ax` and its figure, or a new figure with one axes of `figsize` (pyplot imported here, lazily),
    laid out with `margins` when given (see :func:`fixed_layout`; a figure passed in is never changed)."""
    if ax is not None:
        return ax.get_figure(root=True), ax  # type: ignore[return-value]  # an axes' root figure is a Figure
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    if margins is not None:
        fixed_layout(fig, **margins)
    return fig, ax


def save_figure(fig: Figure, path: Path, dpi: int = 110) -> Path:
    """Lay out, write as PNG and release a figure (report plots are files, never kept open).

    The tight layout (skipped for a figure made with :func:`fixed_layout`) is computed once at the
    output's dpi and applied, but not left on the figure as its layout engine (as ``fig.tight_layout()``
    does): with an engine set, ``savefig`` draws the whole figure once more before writing it, and at
    another dpi it measures every text again. Laying out and text measuring are most of the cost of a
    report figure."""
    import matplotlib.pyplot as plt
    from matplotlib.layout_engine import TightLayoutEngine

    fig.set_dpi(dpi)
    if fig not in _LAID_OUT:
        TightLayoutEngine().execute(fig)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return Path(path)


@dataclass
class Display:
    """Base of the display objects: ``figure_``/``ax_`` once plotted; :meth:`save` writes and closes."""

    title: str = ""
    figure_: Any = field(default=None, init=False, repr=False)
    ax_: Any = field(default=None, init=False, repr=False)

    def plot(self, ax: Axes | None = None) -> Display:  # pragma: no cover - every display overrides it
        raise NotImplementedError

    def save(self, path: str | Path, dpi: int = 110) -> Path:
        """Write the figure as PNG at `path` and close it (plotting first if needed)."""
        if self.figure_ is None:
            self.plot()
        return save_figure(self.figure_, Path(path), dpi=dpi)


def _roc_points(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-score, kind="mergesort")
    y = np.asarray(y, dtype=float)[order]
    tpr = np.r_[0, np.cumsum(y) / max(y.sum(), 1)]
    fpr = np.r_[0, np.cumsum(1 - y) / max((1 - y).sum(), 1)]
    return fpr, tpr


@dataclass
class RocDisplay(Display):
    """ROC curves: ``curves`` maps a label to its (false positive rate, true positive rate) points."""

    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @classmethod
    def from_predictions(cls, curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str = "", *,
                         ax: Axes | None = None) -> RocDisplay:
        """One curve per label -> (y, score)."""
        points = {label: _roc_points(np.asarray(y), np.asarray(s)) for label, (y, s) in curves.items()}
        return cls(title=title, curves=points).plot(ax)

    def plot(self, ax: Axes | None = None) -> RocDisplay:
        self.figure_, self.ax_ = new_axes(ax, (5, 5), MARGINS_SQUARE)
        for label, (fpr, tpr) in self.curves.items():
            self.ax_.plot(fpr, tpr, label=label)
        self.ax_.plot([0, 1], [0, 1], color="grey", linestyle=":")
        self.ax_.set(xlabel="false positive rate", ylabel="true positive rate", title=self.title)
        self.ax_.legend(loc="lower right", fontsize=8)
        return self


def calibration_table(y: np.ndarray, pd_: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Observed default rate against mean PD in quantile bins of PD."""
    frame = pd.DataFrame({"y": np.asarray(y, dtype=float), "pd": np.asarray(pd_, dtype=float)})
    frame["bin"] = pd.qcut(frame["pd"].rank(method="first"), q=min(bins, len(frame)), labels=False)
    return frame.groupby("bin").agg(n=("y", "size"), mean_pd=("pd", "mean"), default_rate=("y", "mean")).reset_index()


@dataclass
class ReliabilityDisplay(Display):
    """Reliability diagram: ``tables`` maps a label to its :func:`calibration_table`."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    @classmethod
    def from_predictions(cls, curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str = "", *,
                         bins: int = 10, ax: Axes | None = None) -> ReliabilityDisplay:
        """One curve per label -> (y, PD), by PD decile (`bins` quantile bins)."""
        tables = {label: calibration_table(np.asarray(y), np.asarray(p), bins) for label, (y, p) in curves.items()}
        return cls(title=title, tables=tables).plot(ax)

    def plot(self, ax: Axes | None = None) -> ReliabilityDisplay:
        self.figure_, self.ax_ = new_axes(ax, (5, 5), MARGINS_SQUARE)
        top = 0.0
        for label, t in self.tables.items():
            self.ax_.plot(t["mean_pd"], t["default_rate"], marker="o", label=label)
            top = max(top, t["mean_pd"].max(), t["default_rate"].max())
        self.ax_.plot([0, top], [0, top], color="grey", linestyle=":")
        self.ax_.set(xlabel="mean predicted PD", ylabel="observed default rate", title=self.title)
        self.ax_.legend(loc="upper left", fontsize=8)
        return self


@dataclass
class ScoreDistributionDisplay(Display):
    """Histogram of log10 PD for defaults and non-defaults: where the two populations separate."""

    y: np.ndarray = field(default_factory=lambda: np.empty(0))
    log_pd: np.ndarray = field(default_factory=lambda: np.empty(0))

    @classmethod
    def from_predictions(cls, y: np.ndarray, pd_: np.ndarray, title: str = "", *, ax: Axes | None = None
                         ) -> ScoreDistributionDisplay:
        lp = np.log10(np.clip(np.asarray(pd_, dtype=float), 1e-6, 1))
        return cls(title=title, y=np.asarray(y), log_pd=lp).plot(ax)

    def plot(self, ax: Axes | None = None) -> ScoreDistributionDisplay:
        self.figure_, self.ax_ = new_axes(ax, (6, 4), MARGINS_WIDE)
        bins = np.linspace(self.log_pd.min(), self.log_pd.max(), 40)
        self.ax_.hist(self.log_pd[self.y == 0], bins=bins, density=True, alpha=0.6, label="non-default")
        self.ax_.hist(self.log_pd[self.y == 1], bins=bins, density=True, alpha=0.6, label="default")
        self.ax_.set(xlabel="log10 PD", ylabel="density", title=self.title)
        self.ax_.legend(fontsize=8)
        return self


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str = "", *, ax: Axes | None = None
             ) -> RocDisplay:
    """ROC curves, one per label -> (y, score)."""
    return RocDisplay.from_predictions(curves, title, ax=ax)


def plot_calibration(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str = "", *,
                     ax: Axes | None = None) -> ReliabilityDisplay:
    """Reliability diagram: mean PD against observed default rate, by PD decile."""
    return ReliabilityDisplay.from_predictions(curves, title, ax=ax)


def plot_score_distribution(y: np.ndarray, pd_: np.ndarray, title: str = "", *, ax: Axes | None = None
                            ) -> ScoreDistributionDisplay:
    """Histogram of log PD for defaults and non-defaults."""
    return ScoreDistributionDisplay.from_predictions(y, pd_, title, ax=ax)


@dataclass
class FigureDisplay(Display):
    """A display drawn by a function ``draw(ax) -> (figure, axes)``: the explanation plots, the CAP curve
    and the grade chart keep their data in the closure and redraw on any axes with :meth:`plot`."""

    draw: Any = field(default=None, repr=False)

    def plot(self, ax: Axes | None = None) -> FigureDisplay:
        self.figure_, self.ax_ = self.draw(ax)
        return self
