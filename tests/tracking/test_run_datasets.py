"""What an MLflow user sees of a run, read back from the SQLite store: a name that says what was trained on
what, a description with the fingerprints, the label and the splits, the input tables and the feature
matrix as datasets whose digests are the kit's fingerprints, and the validation report linked from the
registered version."""

from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd
from mlflow import MlflowClient

from conftest import mlflow_store
from creditmodel.data.fingerprint import fingerprints, table_fingerprint
from creditmodel.data.synthetic import generate_world
from creditmodel.pipeline import config_sha256, modelling_frame
from creditmodel.tracking.mlflow_tracking import (
    DIGEST_CHARS,
    SCHEMA_SAMPLE_ROWS,
    RunDataset,
    dataset_schema,
    log_datasets,
    logged_datasets,
    pipeline_run,
    run_description,
    run_name,
)


def inputs_of(client: MlflowClient, run_id: str) -> dict[str, dict]:
    out = {}
    for di in client.get_run(run_id).inputs.dataset_inputs:
        tags = {t.key: t.value for t in di.tags}
        out[di.dataset.name] = {"digest": di.dataset.digest, "context": tags["mlflow.data.context"], "tags": tags,
                                "source_type": di.dataset.source_type}
    return out


def test_datasets_are_logged_with_the_kits_fingerprint_as_digest(tmp_path):
    frame = pd.DataFrame({"x": np.arange(6, dtype=float), "industry": pd.Categorical(list("abcabc")),
                          "default": [0, 1, 0, 0, 1, 0]})
    sha = table_fingerprint(frame)
    uri = mlflow_store(tmp_path / "mlflow.db")
    with pipeline_run(uri, "datasets", run_name=run_name(["scorecard", "lightgbm"], "synthetic", 6, "oot 2023-04", "1a2b3c4"),
                      description=run_description(data="synthetic", extraction_date="2024-06-30",
                                                  label={"en": "90+ dpd", "zh": "逾期90天以上"},
                                                  splits={"en": "train; valid; oot", "zh": "训练；验证；测试"},
                                                  fingerprints={"loans": {"rows": 6, "sha256": sha}})) as run:
        log_datasets([RunDataset("loans", frame, sha, "input", source=str(tmp_path)),
                      RunDataset("features_train", frame, sha, "training", targets="default")])
    client = MlflowClient(uri)
    got = inputs_of(client, run.run_id)
    assert got["loans"]["digest"] == sha[:DIGEST_CHARS] and got["loans"]["tags"]["sha256"] == sha
    assert got["loans"]["context"] == "input" and got["loans"]["tags"]["rows"] == "6"
    assert got["loans"]["source_type"] == "local"
    assert got["features_train"]["context"] == "training"
    table = logged_datasets(uri, run.run_id).set_index("name")
    assert table.loc["loans", "rows"] == 6 and table.loc["loans", "sha256"] == sha
    assert table.loc["features_train", "context"] == "training"
    info = client.get_run(run.run_id)
    assert info.info.run_name == "lightgbm+scorecard · synthetic 6 enterprises · oot 2023-04 · config 1a2b3c4"
    assert f"| loans | 6 | `{sha[:DIGEST_CHARS]}` |" in info.data.tags["mlflow.note.content"]


def test_the_pipeline_run_is_named_described_and_lists_its_datasets(demo_run):
    config, r, uri = demo_run["config"], demo_run["result"], demo_run["tracking_uri"]
    client = MlflowClient(uri)
    run = client.get_run(r.tracked.run_id)
    s = config.synthetic
    assert run.info.run_name == (f"lightgbm+scorecard · synthetic {s.enterprises} enterprises · "
                                 f"oot {config.split.oot_start:%Y-%m} · config {config_sha256(config)[:7]}")
    # independent reference: the same world generated again, fingerprinted by the kit's function
    world = generate_world(s.enterprises, s.seed, start=str(s.start), extraction_date=str(s.extraction_date),
                           transaction_density=s.transaction_density)
    expected = fingerprints(world.tables)
    got = inputs_of(client, r.tracked.run_id)
    assert {n for n, d in got.items() if d["context"] == "input"} == set(expected)
    for name, fp in expected.items():
        assert got[name]["digest"] == fp["sha256"][:DIGEST_CHARS], name
        assert got[name]["tags"]["rows"] == str(fp["rows"])
    # the feature matrix built again from that world (a parquet round trip would change dtypes, so hashes)
    frame = modelling_frame(world.tables, pd.Timestamp(world.extraction_date), config)
    assert len(frame) == len(pd.read_parquet(r.features_path))
    matrix = table_fingerprint(frame)
    for split, context in {"train": "training", "valid": "validation", "oot": "oot"}.items():
        part = frame[frame["split"] == split]
        d = got[f"features_{split}"]
        assert d["context"] == context and d["tags"]["rows"] == str(len(part))
        assert d["digest"] == table_fingerprint(part)[:DIGEST_CHARS]
        assert d["tags"]["feature_matrix_sha256"] == matrix
    note = run.data.tags["mlflow.note.content"]
    assert f"| feature_matrix | {len(frame)} | `{matrix[:DIGEST_CHARS]}` |" in note
    assert "90+ days past due on a repayment record within 12 months after the decision date" in note
    assert "违约定义：决策日后12个月内任一还款记录逾期达到90天及以上" in note
    n_oot, d_oot = int((frame["split"] == "oot").sum()), int(frame.loc[frame["split"] == "oot", "default"].sum())
    assert f"out-of-time from {config.split.oot_start} ({n_oot} loans, {d_oot} defaults)" in note
    assert f"跨时间测试集：{config.split.oot_start}起（{n_oot}笔，违约{d_oot}笔）" in note


def test_the_registered_version_links_its_validation_report(demo_run):
    r, uri = demo_run["result"], demo_run["tracking_uri"]
    client = MlflowClient(uri)
    version = client.get_model_version(r.tracked.model_name, r.tracked.model_version)
    link = version.tags["validation_report_artifact"]
    assert link.endswith("/validation/validation_report.html") and r.tracked.run_id in link
    assert f"**Validation report** ({version.tags['validation_status']}): {link}" in version.description
    assert client.get_run(r.tracked.run_id).info.run_name in version.description
    report = Path(unquote(urlparse(link).path))
    html = report.read_text(encoding="utf-8")
    # the run's report, or the same model's report logged again by `creditmodel report` on the registered
    # version (other tests of the session do that to this run)
    assert html.startswith("<!DOCTYPE html>") and "</html>" in html
    assert f"run {r.tracked.run_id[:8]}" in html or f"{r.tracked.model_name} version {r.tracked.model_version}" in html


def test_dataset_schema_is_mlflows_own_at_a_fraction_of_its_cost():
    from mlflow.types.utils import _infer_schema

    rng = np.random.default_rng(1)
    n = 3 * SCHEMA_SAMPLE_ROWS
    amount = rng.normal(size=n)
    amount[-1] = np.nan  # the only missing value, outside any head of the table
    frame = pd.DataFrame({"id": np.arange(n), "amount": amount, "kind": pd.Categorical(rng.choice(["a", "b"], n)),
                          "date": pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 900, n), "D"),
                          "note": rng.choice(["x", "y"], n).astype(object)})
    assert dataset_schema(frame).to_json() == _infer_schema(frame).to_json()
    assert [c.required for c in dataset_schema(frame).inputs] == [True, False, True, True, True]
