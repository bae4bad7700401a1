"""Shared fixtures: a small synthetic world, generated once per test session."""

import pytest

from creditmodel.data.synthetic import generate_world


@pytest.fixture(scope="session")
def small_world():
    return generate_world(400, seed=7)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The demo pipeline, run once on a small world into a private output dir and MLflow store."""
    from creditmodel.config import build_config
    from creditmodel.pipeline import run_pipeline

    root = tmp_path_factory.mktemp("demo")
    config = build_config({"output_dir": str(root / "out"), "synthetic": {"enterprises": 2500, "seed": 3},
                           "lightgbm": {"n_estimators": 150}})
    uri = f"sqlite:///{root / 'mlflow.db'}"
    result = run_pipeline(config, tracking_uri=uri)
    return {"config": config, "result": result, "tracking_uri": uri, "root": root}
