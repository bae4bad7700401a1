"""Fault injection: `creditmodel run` killed inside each of its eight stages.

A small world's run is started as a real process, its progress lines ("k/8 ...") tell when stage k
has begun, and after a random part of that stage's duration (measured on a first, successful run)
it receives SIGTERM. Every time: the previous outputs are byte-identical, no staging file is
visible, the registry is unchanged (same alias -> version, no new version), the killed MLflow run is
not left RUNNING. Then one hard kill (SIGKILL) during the report, and a re-run that succeeds and
marks the hard-killed run FAILED. The random delays come from a seeded generator (printed on
failure, set CREDITMODEL_FAULT_SEED to replay).
"""

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SEED = int(os.environ.get("CREDITMODEL_FAULT_SEED", "11"))
STAGE_TIMING = {1: "data", 2: "features", 3: "train", 4: "validate", 5: "export", 6: "price", 7: "track",
                8: "report"}
def registry_state(uri: str) -> dict:
    client = MlflowClient(uri)
    versions = sorted(int(v.version) for v in client.search_model_versions("name='sme_pd'"))
    return {"versions": versions,
            "aliases": {k: str(v) for k, v in client.get_registered_model("sme_pd").aliases.items()}}


def run_statuses(uri: str) -> dict[str, str]:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("creditmodel")
    return {r.info.run_id: r.info.status for r in client.search_runs([exp.experiment_id], max_results=1000)}


def digest(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


class Run:
    """`creditmodel run` as a child process whose stdout lines are collected as they come."""

    def __init__(self, world: dict):
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)}
        self.stderr_path = world["logs"] / "stderr.txt"
        with open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "creditmodel.cli", "run", "--config", str(world["toml"]),
                 "--out", str(world["out"]), "--tracking-uri", world["uri"]],
                stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=world["root"])
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()
        with self.changed:
            self.lines.append("<eof>")
            self.changed.notify_all()

    def wait_for_stage(self, k: int, timeout: float = 240) -> None:
        def started() -> bool:
            return any(line.startswith(f"{k}/8 ") for line in self.lines)

        with self.changed:
            self.changed.wait_for(lambda: started() or "<eof>" in self.lines, timeout)
            assert started(), f"stage {k} never started: {self.lines[-5:]} {self.stderr()[-500:]}"

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def finish(self, timeout: float = 240) -> int:
        rc = self.proc.wait(timeout)
        self.reader.join(30)  # the pipe ends when every process holding it has ended
        assert not self.reader.is_alive(), "a process the run started outlived it, holding its output pipe"
        self.proc.stdout.close()
        return rc


@pytest.fixture(scope="module")
def world(small_run, tmp_path_factory):
    """The session's small successful run: the outputs and registry every killed run must leave as
    they are; it is run from the CLI with the same configuration."""
    return {**small_run, "rng": random.Random(SEED), "logs": tmp_path_factory.mktemp("faults-logs")}


def snapshot(world: dict) -> dict:
    return {"files": digest(world["out"]), "entries": sorted(p.name for p in world["root"].iterdir()),
            "registry": registry_state(world["uri"]), "runs": run_statuses(world["uri"])}


@pytest.mark.parametrize("stage", list(STAGE_TIMING))
def test_sigterm_inside_a_stage_changes_nothing(world, stage):
    before = snapshot(world)
    delay = world["rng"].uniform(0, 0.5) * world["timings"][STAGE_TIMING[stage]]
    run = Run(world)
    run.wait_for_stage(stage)
    time.sleep(delay)
    assert run.proc.poll() is None, f"the run ended before the kill (delay {delay:.2f} s, seed {SEED})"
    run.proc.send_signal(signal.SIGTERM)
    rc = run.finish()
    last = run.stderr().strip().splitlines()[-1]
    where = f"stage {stage}, delay {delay:.2f} s, seed {SEED}: {last}"
    assert rc == 128 + signal.SIGTERM and "terminated by signal SIGTERM" in last, where
    after = snapshot(world)
    assert after["files"] == before["files"], where
    assert after["entries"] == before["entries"], where  # no staging directory or file left visible
    assert after["registry"] == before["registry"], where
    new = {k: v for k, v in after["runs"].items() if k not in before["runs"]}
    assert "RUNNING" not in after["runs"].values(), where
    # the MLflow run starts early in stage 7: a kill before it leaves none, one after it a KILLED one
    expected = [["KILLED"]] if stage == 8 else [[], ["KILLED"]] if stage == 7 else [[]]
    assert list(new.values()) in expected, where


def test_sigkill_then_a_rerun_that_succeeds_and_cleans_up(world):
    before = snapshot(world)
    run = Run(world)
    run.wait_for_stage(8)
    time.sleep(world["rng"].uniform(0, 0.5) * world["timings"]["report"])
    run.proc.send_signal(signal.SIGKILL)
    assert run.finish() == -signal.SIGKILL
    after = snapshot(world)
    assert after["files"] == before["files"] and after["registry"] == before["registry"]
    killed = [k for k, v in after["runs"].items() if k not in before["runs"]]
    assert [after["runs"][k] for k in killed] == ["RUNNING"]  # nothing can end a SIGKILLed run but a later one

    rerun = Run(world)
    assert rerun.finish(timeout=400) == 0, rerun.stderr()[-2000:]
    said = rerun.stderr() + "\n".join(rerun.lines)  # the kit's own lines, not MLflow's English INFO and prints
    assert not [w for w in ("Successfully registered", "Created version", " INFO mlflow") if w in said], said[-2000:]
    client = MlflowClient(world["uri"])
    assert client.get_run(killed[0]).info.status == "FAILED"
    assert "RUNNING" not in run_statuses(world["uri"]).values()
    state = registry_state(world["uri"])
    added = [v for v in state["versions"] if v not in before["registry"]["versions"]]
    assert len(added) == 1 and added[0] > max(before["registry"]["versions"])  # (deleted numbers are not reused)
    new = client.get_model_version_by_alias("sme_pd", "challenger")
    assert int(new.version) == added[0] and new.tags["validation_status"] in ("green", "amber", "red")
    run_json = json.loads((world["out"] / "run.json").read_text())
    assert run_json["mlflow_run_id"] == new.run_id and run_json["validation_status"] == new.tags["validation_status"]
