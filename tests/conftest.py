"""Shared fixtures: a small synthetic world, generated once per test session, and a real PostgreSQL."""

import atexit
import functools
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import tomllib
from pathlib import Path

import pytest

# One xdist worker per core, and each LightGBM fit runs on two threads (num_threads=2, the default): an OpenMP
# thread that waits passively leaves its core to the other worker instead of spinning on it. Set before
# LightGBM is loaded here, and inherited by the commands, servers and notebook kernels the tests start.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from creditmodel.data.synthetic import generate_world  # noqa: E402 - after the environment above

# Fixtures that run the whole pipeline once per session: a test using one (directly or through another
# fixture) is end-to-end and marked slow, so `make test-fast` (pytest -m "not slow") leaves it out.
SLOW_FIXTURES = frozenset({"demo_run", "small_run"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: _rank(item.nodeid))  # stable: a module keeps its order


# `make test` runs the suite on one pytest-xdist worker per core (--dist loadscope, the units below). A unit
# of work is a module: its tests stay on one worker, in order, sharing its module fixtures. Each notebook, a
# kernel of its own, is a unit apart; the modules that start Spark are one unit, so one worker starts a JVM.
NOTEBOOK = "tests/test_notebooks.py::test_notebook_runs"
SHARED_UNITS = {"tests/features/test_spark_parity.py": "spark", "tests/features/test_online_pg.py": "spark",
                "tests/service/test_batch.py": "spark"}
# the longest units, measured, handed out first so that the last ones to finish are short (longest first)
LONG_UNITS = ("spark", "tests/test_fault_injection.py", NOTEBOOK, "tests/monitoring/test_out_of_core.py",
              "tests/service/test_applications_pg.py", "tests/export/test_bundle.py",
              "tests/monitoring/test_monitor_cli.py", "tests/tracking/test_postgres_server.py")


def _unit(nodeid: str) -> str:
    module = nodeid.split("::")[0]
    return nodeid if nodeid.startswith(NOTEBOOK) else SHARED_UNITS.get(module, module)


def _rank(nodeid: str) -> int:
    unit = _unit(nodeid)
    return next((i for i, long in enumerate(LONG_UNITS) if unit.startswith(long)), len(LONG_UNITS))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """With --dist loadscope, the units of work above in collection order (longest first); xdist's own
    `loadgroup` marks do not reach its scheduler under pytest 9 (pytest-xdist issue 1386)."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _unit(nodeid)

    return ByUnit(config, log)


@pytest.fixture(scope="module", autouse=True)
def _features_known_by_name():
    """Each module finds the features known by name (``catalogue.BY_NAME``) as shipped, and leaves them so: a
    run registers its dictionary's vocabularies and attributes there, for the rest of the process, and which
    module ran before another on a worker is up to the scheduler."""
    from creditmodel.features import catalogue

    before = dict(catalogue.BY_NAME)
    yield
    catalogue.BY_NAME.clear()
    catalogue.BY_NAME.update(before)


@pytest.fixture(scope="session")
def small_world():
    return generate_world(400, seed=7)


@pytest.fixture(scope="session")
def signing_keys(tmp_path_factory):
    """A bundle-signing key pair for the session; its public key is trusted through $CREDITMODEL_TRUSTED_KEYS
    (inherited by the servers and commands the tests start), as a deployment would configure it."""
    from creditmodel.export.signing import ENV_TRUSTED_KEYS, generate_keys

    private, public, kid = generate_keys(tmp_path_factory.mktemp("keys"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV_TRUSTED_KEYS, str(public))
        yield {"private": private, "public": public, "key_id": kid}


@functools.cache
def _mlflow_template() -> Path:
    """An MLflow SQLite store at the installed MLflow's schema with no experiment, made once per process."""
    from mlflow import MlflowClient

    db = Path(tempfile.mkdtemp(prefix="creditmodel-mlflow-template-")) / "mlflow.db"
    atexit.register(shutil.rmtree, db.parent, ignore_errors=True)
    MlflowClient(f"sqlite:///{db}").search_experiments()  # creates the tables: 3 s of migrations
    with sqlite3.connect(db) as con:  # MLflow makes its default experiment when it opens a store that has none
        con.execute("DELETE FROM experiments")
    return db


def mlflow_store(db: Path) -> str:
    """The URI of a new MLflow store at `db`: a copy of an empty, migrated one, which MLflow opens in 0.04 s
    where it would migrate a new file for 3.4 s; opened, it is the same as a new store (default experiment
    included)."""
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_mlflow_template(), db)
    return f"sqlite:///{db}"


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, signing_keys):
    """The demo pipeline, run once on a small world into a private output dir and MLflow store; its bundle is
    signed with the session's key."""
    from creditmodel.config import build_config
    from creditmodel.pipeline import run_pipeline

    root = tmp_path_factory.mktemp("demo")
    config = build_config({"output_dir": str(root / "out"), "synthetic": {"enterprises": 2500, "seed": 3},
                           "lightgbm": {"n_estimators": 150}, "bundle": {"signing_key": str(signing_keys["private"])}})
    uri = mlflow_store(root / "mlflow.db")
    result = run_pipeline(config, tracking_uri=uri)
    return {"config": config, "result": result, "tracking_uri": uri, "root": root}


SMALL_RUN_TOML = """experiment = "creditmodel"
[synthetic]
enterprises = 1000
seed = 3
transaction_density = 0.2
[lightgbm]
n_estimators = 30
[segments]
enabled = false
[features]  # the machinery, not the model: 54 features, not 147, keep binning and validation short
include_sources = ["application", "enterprises", "repayment_history", "financial_statements", "transactions_monthly",
                   "court_cases"]
"""
SMALL_RUN = tomllib.loads(SMALL_RUN_TOML)  # the same configuration for run_pipeline


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """One successful pipeline run on a small world (the previous state that failed, interrupted and
    killed runs must leave alone), with `small.toml` to run the same configuration from the CLI."""
    import json

    from creditmodel.config import build_config
    from creditmodel.pipeline import run_pipeline

    root = tmp_path_factory.mktemp("small")
    (root / "small.toml").write_text(SMALL_RUN_TOML)
    config = build_config({**SMALL_RUN, "output_dir": str(root / "out")})
    uri = mlflow_store(root / "mlflow.db")
    result = run_pipeline(config, tracking_uri=uri)
    timings = json.loads((root / "out" / "run.json").read_text())["timings_s"]
    return {"root": root, "uri": uri, "config": config, "result": result, "toml": root / "small.toml",
            "out": root / "out", "timings": timings}


PG_BIN = next((p for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None) \
    if Path("/usr/lib/postgresql").is_dir() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI runs as root, a developer usually does not
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server on loopback for the session (`.ci/run` installs the server programs;
    skipped cleanly without them); call it with a database name to get that new database's URL."""
    if PG_BIN is None or not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL server programs are not installed")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL")
    # not under pytest's tmp dir: that is private to root, and the server runs as postgres
    root = Path(tempfile.mkdtemp(prefix="creditmodel-pg-"))
    data = root / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
    port = free_port()
    subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "tester"]),
                   check=True, capture_output=True)
    subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(data / "log"), "-o",
                                 f"-h 127.0.0.1 -p {port} -k {data}", "start"]), check=True, capture_output=True)

    def database(name: str) -> str:
        subprocess.run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "tester", name],
                       check=True, capture_output=True)
        return f"postgresql://tester@127.0.0.1:{port}/{name}"

    try:
        yield database
    finally:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
