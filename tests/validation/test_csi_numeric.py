"""csi's numpy path for numeric features gives exactly psi()'s value, bins and status, feature by feature."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from creditmodel.validation import stats


def _frame(n, seed):
    rng = np.random.default_rng(seed)
    f = pd.DataFrame({
        "normal": rng.normal(size=n),
        "skewed": rng.lognormal(size=n) * 1000,
        "with_nan": np.where(rng.random(n) < 0.3, np.nan, rng.normal(size=n)),
        "few_values": rng.integers(0, 3, n).astype(float),
        "ints": rng.integers(0, 50, n),
        "constant": np.ones(n),
        "all_nan": np.full(n, np.nan),
        "nullable": pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(0, 9, n)), dtype="Int64"),
        "category": rng.choice(["a", "b", "c"], n),
    })
    return f


@pytest.mark.parametrize("eps", [1e-4, 0.01])
def test_csi_equals_psi_column_by_column(eps):
    dev, later = _frame(3000, 1), _frame(800, 2)
    later["normal"] += 0.5  # a shift
    later.loc[:100, "all_nan"] = 1.0  # values where development had none
    table = stats.csi(dev, later, eps=eps, amber=0.1, red=0.25)
    for row in table.itertuples():
        numeric = stats._is_numeric(dev[row.feature]) and stats._is_numeric(later[row.feature])
        r = stats.psi(dev[row.feature], later[row.feature], bins=10, categorical=not numeric, eps=eps)
        assert row.psi == r.value, row.feature  # exactly: the same cuts, counts and arithmetic
        assert row.bins == r.detail["bins"] and row.status == r.status
        assert row.kind == ("numeric" if numeric else "categorical")
    assert table.loc[table["feature"] == "normal", "psi"].iloc[0] > 0.1


def test_csi_of_an_empty_later_frame_is_refused():
    dev = _frame(100, 1)
    with pytest.raises(ValueError, match="actual is empty"):
        stats.csi(dev[["normal"]], dev[["normal"]].iloc[:0])


@pytest.mark.parametrize("eps", [1e-4, 0.01])
def test_csi_against_a_carried_reference_equals_csi_with_the_sample(eps):
    """A monitoring run carries the development side of csi (cuts and counts, categories and counts)
    through JSON instead of the sample: the later sample's CSI is the same, value for value."""
    import json

    dev, later = _frame(3000, 1), _frame(800, 2)
    later["normal"] += 0.5
    later.loc[:100, "all_nan"] = 1.0
    later.loc[:50, "category"] = "new"  # a category development never had
    dev.loc[:20, "category"] = None  # and missing values there
    columns = list(dev.columns)
    reference = json.loads(json.dumps(stats.csi_reference(dev, columns)))
    expected = stats.csi(dev, later, columns, eps=eps)
    got = stats.csi_against(reference, later, eps=eps)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    with pytest.raises(ValueError, match="category"):
        stats.csi_against({"category": reference["normal"]}, later)
