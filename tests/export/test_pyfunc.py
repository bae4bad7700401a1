"""The registered MLflow model is the bundle as a pyfunc: loaded from the registry or served by
`mlflow models serve`, it gives the bundle's calibrated PDs and grades, and refuses a bad row in one
line naming the feature."""

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from conftest import free_port
from creditmodel.exceptions import RequestError
from creditmodel.export.bundle import load_bundle


@pytest.fixture(scope="module")
def sample(demo_run):
    """A sample of out-of-time loans as the run scored them (its features and training-time PDs)."""
    r = demo_run["result"]
    features = pd.read_parquet(r.features_path)
    scored = pd.read_parquet(r.output_dir / "scored.parquet").set_index("loan_id")
    rows = features[features["split"] == "oot"].sample(300, random_state=11)
    return rows, scored.loc[rows["loan_id"]]


@pytest.fixture(scope="module")
def registered(demo_run):
    import mlflow

    mlflow.set_tracking_uri(demo_run["tracking_uri"])
    return mlflow.pyfunc.load_model("models:/sme_pd@challenger")


def test_the_registered_model_gives_the_bundles_pds_and_grades(demo_run, sample, registered):
    import mlflow

    rows, scored = sample
    bundle = load_bundle(demo_run["result"].bundle_dir)
    expected = bundle.predict_pd(rows)
    out = registered.predict(rows)
    assert list(out.columns) == ["pd", "grade"] and len(out) == len(rows)
    np.testing.assert_allclose(out["pd"].to_numpy(), expected, rtol=0, atol=1e-12)
    assert (out["grade"].to_numpy() == bundle.grade(expected)).all()
    # the PDs are calibrated: the run's training-time PDs, not the booster's raw output
    np.testing.assert_allclose(out["pd"].to_numpy(), scored["pd_lightgbm"].to_numpy(), rtol=0, atol=1e-12)
    assert (out["grade"].to_numpy() == scored["grade_lightgbm"].to_numpy()).all()
    raw = 1 / (1 + np.exp(-bundle.booster.predict(bundle.schema.encode(rows), raw_score=True)))
    assert np.abs(raw - out["pd"].to_numpy()).max() > 1e-4
    # by run too, and the model's signature names the bundle's features
    by_run = mlflow.pyfunc.load_model(f"runs:/{demo_run['result'].tracked.run_id}/model").predict(rows.head(20))
    np.testing.assert_allclose(by_run["pd"].to_numpy(), expected[:20], rtol=0, atol=1e-12)
    assert [c.name for c in registered.metadata.get_input_schema().inputs] == list(bundle.schema.names)


def test_the_registered_model_unpickles_nothing(demo_run):
    from urllib.parse import urlparse

    import yaml
    from mlflow import MlflowClient

    uri = MlflowClient(demo_run["tracking_uri"]).get_model_version_download_uri(
        "sme_pd", demo_run["result"].tracked.model_version)
    model_dir = Path(urlparse(uri).path)
    flavor = yaml.safe_load((model_dir / "MLmodel").read_text())["flavors"]["python_function"]
    assert flavor["loader_module"] == "mlflow.pyfunc.loaders.code_model" and "python_model" not in flavor
    assert not list(model_dir.rglob("*.pkl")) and (model_dir / "artifacts" / "bundle" / "model.txt").is_file()


@pytest.mark.parametrize("change, match", [
    (lambda f, s: f.drop(columns=[s.names[0]]), "feature '{0}' is missing"),
    (lambda f, s: f.assign(**{s.names[1]: "abc"}), "feature '{1}': value 'abc' is not a number"),
    (lambda f, s: f.assign(**{next(iter(s.categories)): "zzz"}), "value 'zzz' is not one of"),
    (lambda f, s: f.assign(**{next(iter(s.required)): np.nan}), "null is not allowed"),
])
def test_a_bad_row_is_refused_in_one_line_naming_the_feature(sample, registered, demo_run, change, match):
    schema = load_bundle(demo_run["result"].bundle_dir).schema
    with pytest.raises(RequestError) as err:
        registered.predict(change(sample[0].head(3), schema))
    message = str(err.value)
    assert "\n" not in message and match.format(*schema.names[:2]) in message, message


def _json_rows(frame: pd.DataFrame) -> list[list]:
    """Rows as JSON values, floats exactly (Python's shortest repr round-trips), missing as null."""
    def value(v):
        v = v.item() if hasattr(v, "item") else v
        return None if v is None or (isinstance(v, float) and np.isnan(v)) else v
    return [[value(v) for v in row] for row in frame.itertuples(index=False)]


def _serve_prerequisites() -> str | None:
    """Why `mlflow models serve` cannot run here (None: it can). It starts uvicorn from PATH."""
    bindir = Path(sys.executable).parent
    for module in ("uvicorn", "fastapi"):
        if importlib.util.find_spec(module) is None:
            return f"mlflow models serve needs {module}, not installed"
    if shutil.which("uvicorn", path=os.pathsep.join([str(bindir), os.environ.get("PATH", "")])) is None:
        return "mlflow models serve needs the uvicorn command"
    return None


@pytest.mark.slow
@pytest.mark.skipif(_serve_prerequisites() is not None, reason=str(_serve_prerequisites()))
def test_mlflow_models_serve_returns_the_bundles_pds(demo_run, sample):
    rows, scored = sample
    port = free_port()
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "MLFLOW_TRACKING_URI": demo_run["tracking_uri"], "PYTHONUNBUFFERED": "1",
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
           "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/sme_pd@challenger",
                             "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, f"mlflow models serve exited with {proc.returncode}: {proc.stdout.read()}"
            assert time.monotonic() < deadline, "mlflow models serve did not answer /ping"
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        names = list(load_bundle(demo_run["result"].bundle_dir).schema.names)
        table = {"columns": names, "data": _json_rows(rows.head(100)[names])}
        answer = httpx.post(f"{url}/invocations", json={"dataframe_split": table}, timeout=60)
        assert answer.status_code == 200, answer.text[:2000]
        served = pd.DataFrame(answer.json()["predictions"])
        np.testing.assert_allclose(served["pd"].to_numpy(), scored["pd_lightgbm"].to_numpy()[:100], rtol=0,
                                   atol=1e-12)
        assert (served["grade"].to_numpy() == scored["grade_lightgbm"].to_numpy()[:100]).all()
        # a bad row: 400, and the message names the feature
        name = names[1]
        row = table["data"][0]
        row[names.index(name)] = "abc"
        refused = httpx.post(f"{url}/invocations", json={"dataframe_split": {"columns": names, "data": [row]}},
                             timeout=60)
        assert refused.status_code == 400 and f"feature '{name}': value 'abc' is not a number" in refused.text
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.communicate()
