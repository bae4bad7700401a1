"""MLflow with a real tracking server backed by PostgreSQL, both on loopback: run, register, promote.

Skips cleanly where PostgreSQL's server programs are not installed (`.ci/run` installs them).
"""

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient

from conftest import SMALL_RUN
from conftest import free_port as _free_port

pytestmark = pytest.mark.slow  # starts PostgreSQL and an MLflow server

@pytest.fixture(scope="module")
def postgres(postgres_server):
    return postgres_server("mlflow")


@pytest.fixture(scope="module")
def mlflow_server(postgres, tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow_server")
    port = _free_port()
    exe = Path(sys.executable).parent / "mlflow"
    log = open(root / "server.log", "w")
    proc = subprocess.Popen([str(exe), "server", "--backend-store-uri", postgres,
                             "--default-artifact-root", (root / "artifacts").as_uri(),
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
            if proc.poll() is not None:
                break
        else:
            pytest.fail("mlflow server did not become healthy: " + (root / "server.log").read_text()[-2000:])
        if proc.poll() is not None:
            pytest.fail("mlflow server exited: " + (root / "server.log").read_text()[-2000:])
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_run_register_and_promote_on_a_postgres_backed_server(mlflow_server, tmp_path):
    from creditmodel.cli import main
    from creditmodel.config import build_config
    from creditmodel.pipeline import run_pipeline

    # the session's small-run configuration: this tests the server, not the model
    config = build_config({**SMALL_RUN, "output_dir": str(tmp_path / "out")})
    result = run_pipeline(config, tracking_uri=mlflow_server)
    client = MlflowClient(mlflow_server)
    assert client.get_model_version_by_alias("sme_pd", "challenger").run_id == result.tracked.run_id
    assert client.get_run(result.tracked.run_id).data.metrics["lightgbm.oot.auc"] > 0.5
    rc = main(["promote", "--tracking-uri", mlflow_server, "--by", "validator", "--reason", "server test",
               "--force"])
    assert rc == 0
    champion = client.get_model_version_by_alias("sme_pd", "champion")
    assert champion.run_id == result.tracked.run_id
    assert champion.tags["promoted_to_champion_by"] == "validator"
    assert main(["export", "--out", str(tmp_path / "bundle"), "--alias", "champion",
                 "--tracking-uri", mlflow_server]) == 0
    assert (tmp_path / "bundle" / "manifest.json").is_file()
