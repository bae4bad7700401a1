"""Figures are objects: a plot function draws and returns a display, pyplot shows it inline in a kernel,
and the validation result is addressed by name."""

import textwrap

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbclient import NotebookClient

from creditmodel.validation import plots
from creditmodel.validation.suite import Section


def test_display_keeps_its_numbers_and_draws_on_the_axes_given():
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    score = y + rng.normal(size=400)
    fig, (left, right) = plt.subplots(1, 2)
    try:
        d = plots.plot_roc({"model": (y, score)}, "ROC", ax=right)
        assert d.figure_ is fig and d.ax_ is right and not left.lines
        fpr, tpr = d.curves["model"]
        assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc_score(y, score), abs=1e-12)  # the area is the AUC
        rel = plots.ReliabilityDisplay.from_predictions({"model": (y, 1 / (1 + np.exp(-score)))}, ax=left)
        assert rel.tables["model"]["n"].sum() == 400 and rel.ax_ is left
    finally:
        plt.close(fig)


def test_saving_keeps_fixed_margins_and_lays_out_the_others(tmp_path):
    """A figure made with fixed margins is saved with them (no tight-layout pass); any other figure is
    laid out tightly, once, and left without a layout engine (savefig would draw it twice)."""
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    roc = plots.plot_roc({"model": (y, y + rng.normal(size=200))}, "ROC")
    params = roc.figure_.subplotpars
    assert (params.left, params.right, params.bottom, params.top) == pytest.approx(
        tuple(plots.MARGINS_SQUARE[k] for k in ("left", "right", "bottom", "top")))
    fig = roc.figure_
    roc.save(tmp_path / "roc.png")
    assert (fig.subplotpars.left, fig.subplotpars.top) == pytest.approx((plots.MARGINS_SQUARE["left"],
                                                                          plots.MARGINS_SQUARE["top"]))
    other, ax = plt.subplots(figsize=(5, 5))
    ax.set_ylabel("a long label " * 3)
    before = other.subplotpars.left
    plots.save_figure(other, tmp_path / "other.png")
    assert other.subplotpars.left != before and other.get_layout_engine() is None
    mine, (a, b) = plt.subplots(1, 2)
    try:
        plots.plot_roc({"model": (y, y.astype(float))}, ax=b)
        assert mine.subplotpars.left == pytest.approx(plt.rcParams["figure.subplot.left"])  # a given figure: untouched
    finally:
        plt.close(mine)
    assert (tmp_path / "roc.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "other.png").stat().st_size > 1000


def test_plt_show_displays_the_figure_inline_in_a_kernel(tmp_path):
    """In a Jupyter kernel (inline backend), `plt.show()` after a plot function shows exactly one figure."""
    import os

    src = str(__import__("creditmodel").__path__[0].rsplit("/creditmodel", 1)[0])
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {src!r})
        import numpy as np
        import matplotlib.pyplot as plt
        from creditmodel.validation.plots import plot_score_distribution
        rng = np.random.default_rng(1)
        shown = plot_score_distribution(rng.integers(0, 2, 300), rng.uniform(0.001, 0.3, 300), "PD")
        plt.show()
        """)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code),
                                         nbformat.v4.new_code_cell("print(type(shown).__name__, plt.get_fignums())")])
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    first, second = (c.outputs for c in nb.cells)
    assert [o.output_type for o in first] == ["display_data"] and "image/png" in first[0]["data"], first
    assert second[0]["text"].strip() == "ScoreDistributionDisplay []"  # shown once, then released
    assert os.listdir(tmp_path) == []  # nothing saved


def test_sections_are_addressed_by_name():
    sec = Section("stability", "Stability")
    psi, csi = pd.DataFrame({"psi": [0.1]}), pd.DataFrame({"feature": ["x"], "psi": [0.3]})
    sec.add_table("psi", "PSI by period", psi)
    sec.add_table("csi", "CSI per feature", csi)
    sec.add_table("top", "Top first", psi, first=True)
    assert sec.table("csi") is csi and sec.tables[2] == ("CSI per feature", csi)  # report order kept
    assert sec.table_names == ["top", "psi", "csi"]
    with pytest.raises(KeyError, match="no table 'migration'.*'psi', 'csi'"):
        sec.table("migration")
    with pytest.raises(ValueError, match="already has a table named 'csi'"):
        sec.add_table("csi", "again", csi)
