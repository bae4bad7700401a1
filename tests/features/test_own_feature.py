"""An analyst's own feature, declared like the catalogue's, is built with the run's features and known by name."""

from dataclasses import replace

import numpy as np
import pytest

from creditmodel.config import build_config
from creditmodel.data.synthetic import generate_world
from creditmodel.features.catalogue import BY_NAME, feature
from creditmodel.pipeline import modelling_frame, risk_directions


@pytest.fixture(scope="module")
def world():
    return generate_world(600, seed=0)


def test_an_own_feature_is_built_and_registered(world):
    reference = feature("txn_inflow_3m")
    mine = replace(reference, name="my_receipts_3m", label="My receipts", direction=-1)  # same SQL: same values
    config = build_config({"synthetic": {"enterprises": 600, "seed": 0}})
    frame = modelling_frame(world.tables, world.extraction_date, config, extra=[mine])
    np.testing.assert_array_equal(frame["my_receipts_3m"].to_numpy(), frame["txn_inflow_3m"].to_numpy())
    assert BY_NAME["my_receipts_3m"] is mine and risk_directions(["my_receipts_3m"]) == {"my_receipts_3m": -1}
    assert frame["my_receipts_3m"].notna().sum() > 0.5 * len(frame)  # most loans had receipts in the window
