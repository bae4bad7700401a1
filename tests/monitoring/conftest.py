"""The demo run's world and one `creditmodel monitor` run on it, shared by the monitoring tests."""

from __future__ import annotations

import pytest

from creditmodel.cli import main


@pytest.fixture(scope="session")
def world_dir(demo_run):
    d = demo_run["result"].output_dir / "world"
    assert (d / "balances.parquet").exists()
    return d


@pytest.fixture(scope="session")
def monitored(demo_run, world_dir, tmp_path_factory):
    """`creditmodel monitor` as of 2023-09-30 (the downturn) with the report in English."""
    out = tmp_path_factory.mktemp("mon") / "2023q3"
    assert main(["monitor", "--bundle", str(demo_run["result"].bundle_dir), "--data", str(world_dir),
                 "--as-of", "2023-09-30", "--out", str(out), "--lang", "en"]) == 0
    return out
