"""Bins fixed by the analyst: kept by the scorecard as given, saved to and read from the run configuration,
and refused in one line when they name no numeric feature of the run."""

import numpy as np
import pandas as pd
import pytest

from creditmodel.config import build_config, load_config, user_splits_toml
from creditmodel.exceptions import ConfigError
from creditmodel.features.matrix import FeatureSchema
from creditmodel.models.scorecard import ScorecardPD
from creditmodel.pipeline import check_user_splits


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 3000
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(0, 100, size=n),
                      "kind": pd.Categorical(rng.choice(["x", "y"], size=n))})
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(-2 + X["a"] + 0.02 * X["b"])))).astype(int).to_numpy()
    return X, y


def test_user_splits_are_kept_as_given_and_counted_right(data):
    X, y = data
    s = ScorecardPD(user_splits={"b": [20, 50, 80]}, monotonic_trends={"b": "descending"}).fit(X, y)
    binned = s.scorecard_.binning_process_.get_binned_variable("b")
    np.testing.assert_array_equal(binned.splits, [20.0, 50.0, 80.0])
    counts = binned.binning_table.build()["Count"].iloc[:4].to_numpy()
    expected = pd.cut(X["b"], [-np.inf, 20, 50, 80, np.inf], right=False).value_counts(sort=False).to_numpy()
    np.testing.assert_array_equal(counts, expected)


def test_user_splits_of_an_unknown_or_categorical_feature_are_refused(data):
    X, y = data
    with pytest.raises(ValueError, match="user_splits: 'z' is not a feature of X"):
        ScorecardPD(user_splits={"z": [1.0]}).fit(X, y)
    with pytest.raises(ValueError, match="user_splits: 'kind' is categorical"):
        ScorecardPD(user_splits={"kind": [1.0]}).fit(X, y)
    schema = FeatureSchema.infer(X)
    with pytest.raises(ConfigError, match="scorecard.user_splits: 'z' is not a feature of this run"):
        check_user_splits({"z": [1.0]}, list(X.columns), schema)
    with pytest.raises(ConfigError, match="scorecard.user_splits: 'kind' is categorical"):
        check_user_splits({"kind": [1.0]}, list(X.columns), schema)


@pytest.mark.parametrize("splits", [[], [2.0, 1.0], [1.0, 1.0], [float("nan")]])
def test_user_splits_must_be_finite_and_increasing(splits):
    with pytest.raises(ConfigError, match="expected finite, strictly increasing split points"):
        build_config({"scorecard": {"user_splits": {"b": splits}}})


def test_user_splits_round_trip_through_a_config_file(tmp_path):
    splits = {"fs_inventory_to_revenue": [0.1, 0.25, 0.5], "txn_inflow_3m": [10000.0, 250000.0]}
    path = tmp_path / "run.toml"
    path.write_text("[synthetic]\nenterprises = 800\n\n" + user_splits_toml(splits))
    assert load_config(path).scorecard.user_splits == splits


def test_user_splits_hold_where_the_event_rate_is_not_monotone():
    """Fixed splits over a zig-zag event rate: optbinning's default trend search finds them infeasible and
    silently drops every split; the scorecard keeps them (no trend) or says why it cannot."""
    rng = np.random.default_rng(3)
    n = 900
    x = rng.uniform(0, 1, size=n)
    rate = np.select([x < 0.25, x < 0.5, x < 0.75], [0.15, 0.02, 0.12], 0.03)
    y = (rng.uniform(size=n) < rate).astype(int)
    s = ScorecardPD(user_splits={"x": [0.25, 0.5, 0.75]}, min_iv=0.0).fit(pd.DataFrame({"x": x}), y)
    np.testing.assert_array_equal(s.scorecard_.binning_process_.get_binned_variable("x").splits, [0.25, 0.5, 0.75])
