"""Compiled trees: they score as LightGBM to 1e-9 in PD or are not used; a tampered object file is refused."""

from __future__ import annotations

import json
import logging
import sys

import numpy as np
import pandas as pd
import pytest

from creditmodel.exceptions import BundleError, ConfigError, RequestError
from creditmodel.export.bundle import load_bundle, write_bundle
from creditmodel.export.compiled import (
    COMPILED_FILE,
    compile_bundle,
    compile_model,
    parity_rows,
    unavailable,
)
from creditmodel.export.signing import generate_keys, load_public_key
from creditmodel.models.calibration import PDCalibrator
from creditmodel.models.gbm import LightGBMPD
from creditmodel.models.master_scale import MasterScale

from .bundle_tools import edit_manifest, rewrite

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=f"compiled trees unavailable: {unavailable()}")


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"income": rng.lognormal(10, 1, n), "age": rng.integers(0, 40, n).astype(float),
                      "ratio": rng.normal(0, 1, n), "sector": rng.choice(["farm", "shop", "mill", "inn"], n)})
    X.loc[rng.random(n) < 0.1, "income"] = np.nan  # missing values take their own branch
    X.loc[rng.random(n) < 0.05, "sector"] = None
    return X


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A signed bundle of a small LightGBM model (numeric, missing and categorical splits) and its keys."""
    root = tmp_path_factory.mktemp("compiled")
    X = _frame(3000, 0)
    logit = 0.8 * np.log(X["income"].fillna(20000)) - 8 + 0.05 * X["age"] + X["ratio"] + (X["sector"] == "inn") * 0.7
    y = (np.random.default_rng(1).random(len(X)) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    model = LightGBMPD(n_estimators=60, num_leaves=7, min_child_samples=20, num_threads=1).fit(X, y)
    calibrator = PDCalibrator().fit(model.decision_function(X), y)
    scale = MasterScale(grades=("A", "B", "C"), upper_bounds=(0.05, 0.2, 1.0))
    private, public, _ = generate_keys(root / "keys")
    src = write_bundle(root / "bundle", model, calibrator, scale, signing_key=private)
    compiled = root / "compiled"
    compile_bundle(src, compiled, signing_key=private, trusted_keys=[public])
    return {"src": src, "compiled": compiled, "private": private, "public": public, "booster": model.booster_,
            "calibrator": calibrator, "schema": model.schema_, "root": root}


def _copy(made, tmp_path):
    import shutil

    dst = tmp_path / "bundle"
    shutil.copytree(made["compiled"], dst)
    return dst


def _reference_pd(made, X: pd.DataFrame) -> np.ndarray:
    """LightGBM's own PDs: the booster's raw margin through the calibrator, without the bundle."""
    return made["calibrator"].predict(made["booster"].predict(made["schema"].encode(X), raw_score=True))


def test_compiled_bundle_scores_as_lightgbm_to_1e9(made):
    bundle = load_bundle(made["compiled"], trusted_keys=[made["public"]])
    assert bundle.compiled is not None and bundle.compiled_note is None
    manifest = bundle.manifest
    assert COMPILED_FILE in manifest["files"] and manifest["compiled"]["model_sha256"] == \
        manifest["files"]["model.txt"]["sha256"]
    assert manifest["compiled"]["parity"]["max_abs_pd_diff"] <= 1e-9
    X = _frame(5000, 42)  # rows the model never saw
    got, expected = bundle.predict_pd(X), _reference_pd(made, X)
    assert np.max(np.abs(got - expected)) <= 1e-9
    np.testing.assert_array_equal(bundle.grade(got), bundle.grade(expected))
    margin = made["booster"].predict(made["schema"].encode(X), raw_score=True)
    for threads in (1, 2):  # the multi-threaded split of rows gives the same margins
        np.testing.assert_allclose(bundle.compiled.raw_score(made["schema"].encode(X), threads), margin,
                                   rtol=0, atol=1e-12)


def test_the_service_and_spark_executors_score_with_the_compiled_trees(made):
    from cryptography.hazmat.primitives import serialization

    from creditmodel.service.batch import _bundle_files, _executor_bundle, score_frame
    from creditmodel.service.scoring import FastScorer

    bundle = load_bundle(made["compiled"], trusted_keys=[made["public"]])
    X = _frame(300, 5)
    scorer = FastScorer(bundle)  # proves its parity with bundle.predict_pd at construction
    rows = X.astype(object).where(X.notna(), None).to_dict("records")
    assert np.max(np.abs(scorer.pd(scorer.encode_rows(rows)) - _reference_pd(made, X))) <= 1e-9
    raw_key = load_public_key(made["public"]).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    executor = _executor_bundle(_bundle_files(made["compiled"]), [raw_key])
    assert executor.compiled is not None
    scored = score_frame(executor, X)
    assert np.max(np.abs(scored["pd"].to_numpy() - _reference_pd(made, X))) <= 1e-9


def test_parity_rows_reach_every_leaf_that_data_reaches(made):
    booster = made["booster"]
    P = parity_rows(booster, made["schema"])
    reached = booster.predict(P, pred_leaf=True)
    seen = booster.predict(made["schema"].encode(_frame(20000, 3)), pred_leaf=True)
    for t in range(booster.num_trees()):
        assert set(seen[:, t]) <= set(reached[:, t]), f"tree {t}"


def test_parity_rows_catch_evaluators_that_round_inputs_or_compare_strictly(made):
    """Two classic defects of tree compilers, emulated with LightGBM itself: inputs rounded to float32
    (as ONNX runtimes do) and `<` instead of `<=` at the threshold (the row one ulp above)."""
    booster, calibrator = made["booster"], made["calibrator"]
    P = parity_rows(booster, made["schema"])
    pd_ = calibrator.predict(booster.predict(P, raw_score=True))
    float32 = calibrator.predict(booster.predict(P.astype(np.float32).astype(np.float64), raw_score=True))
    strict = calibrator.predict(booster.predict(np.nextafter(P, np.inf), raw_score=True))
    assert np.max(np.abs(float32 - pd_)) > 1e-6 and np.max(np.abs(strict - pd_)) > 1e-6


def test_a_tampered_compiled_file_is_refused(made, tmp_path):
    bundle = _copy(made, tmp_path)
    obj = bytearray((bundle / COMPILED_FILE).read_bytes())
    obj[len(obj) // 2] ^= 0xFF
    (bundle / COMPILED_FILE).write_bytes(bytes(obj))
    with pytest.raises(BundleError, match=rf"{COMPILED_FILE}: sha256 .* tampered or corrupted"):
        load_bundle(bundle, trusted_keys=[made["public"]])
    rewrite(bundle, COMPILED_FILE, bytes(obj))  # checksum rewritten in the manifest, but not signed again
    with pytest.raises(BundleError, match="does not verify"):
        load_bundle(bundle, trusted_keys=[made["public"]])
    other, _, _ = generate_keys(tmp_path / "other")  # signed again, by a key nobody trusts
    rewrite(bundle, COMPILED_FILE, bytes(obj), sign_with=other)
    with pytest.raises(BundleError, match="not trusted"):
        load_bundle(bundle, trusted_keys=[made["public"]])


def test_compiled_trees_that_score_differently_are_refused_at_load(made, tmp_path, caplog):
    bundle = _copy(made, tmp_path)
    text = (bundle / "model.txt").read_text()
    head, _, rest = text.partition("leaf_value=")
    first, _, tail = rest.partition(" ")
    other = f"{head}leaf_value={float(first) + 1e-3!r} {tail}"  # one leaf of one tree moved by 0.001
    obj, _ = compile_model(other)
    rewrite(bundle, COMPILED_FILE, obj, sign_with=made["private"])  # a trusted signer, a wrong object
    with caplog.at_level(logging.WARNING, logger="creditmodel.export.compiled"):
        loaded = load_bundle(bundle, trusted_keys=[made["public"]])
    assert loaded.compiled is None
    assert "differ from LightGBM's" in loaded.compiled_note and "scoring with LightGBM" in loaded.compiled_note
    assert [r.getMessage() for r in caplog.records] == [loaded.compiled_note]
    X = _frame(500, 9)
    np.testing.assert_array_equal(loaded.predict_pd(X), _reference_pd(made, X))  # LightGBM's own numbers


def test_compiled_file_from_another_model_or_without_its_description_is_refused(made, tmp_path):
    bundle = _copy(made, tmp_path)
    edit_manifest(bundle, lambda m: m["compiled"].update(model_sha256="0" * 64), sign_with=made["private"])
    with pytest.raises(BundleError, match="compiled from another model"):
        load_bundle(bundle, trusted_keys=[made["public"]])
    edit_manifest(bundle, lambda m: m.pop("compiled"), sign_with=made["private"])
    with pytest.raises(BundleError, match="expected both or neither"):
        load_bundle(bundle, trusted_keys=[made["public"]])


def test_native_code_runs_only_from_a_bundle_signed_by_a_trusted_key(made):
    loaded = load_bundle(made["compiled"], trusted_keys=[], allow_unsigned=True)
    assert loaded.compiled is None and "signed by a trusted key" in loaded.compiled_note


def test_an_object_for_cpu_features_this_machine_lacks_is_not_run(made, tmp_path):
    bundle = _copy(made, tmp_path)
    edit_manifest(bundle, lambda m: m["compiled"].update(features=m["compiled"]["features"] + ",+imaginary-isa"),
                  sign_with=made["private"])
    loaded = load_bundle(bundle, trusted_keys=[made["public"]])
    assert loaded.compiled is None and "lacks imaginary-isa" in loaded.compiled_note


def test_without_lleaves_compiling_is_one_line_and_loading_falls_back(made, tmp_path, monkeypatch, caplog):
    for name in [m for m in sys.modules if m == "lleaves" or m.startswith("lleaves.")] + ["lleaves"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if it were not installed
    with pytest.raises(ConfigError, match=r"^cannot compile trees: lleaves is not installed \(pip install lleaves\)$"):
        compile_bundle(made["src"], tmp_path / "out", signing_key=made["private"], trusted_keys=[made["public"]])
    assert not (tmp_path / "out").exists()
    with caplog.at_level(logging.WARNING, logger="creditmodel.export.compiled"):
        loaded = load_bundle(made["compiled"], trusted_keys=[made["public"]])
    assert loaded.compiled is None and len(caplog.records) == 1
    assert "lleaves is not installed" in loaded.compiled_note
    X = _frame(500, 11)
    np.testing.assert_array_equal(loaded.predict_pd(X), _reference_pd(made, X))


def test_compiling_needs_a_signing_key_and_writes_nothing_without_one(made, tmp_path):
    with pytest.raises(ConfigError, match="must then be signed .* pass --signing-key"):
        compile_bundle(made["src"], tmp_path / "out", trusted_keys=[made["public"]])
    assert not (tmp_path / "out").exists()


def test_cli_compiles_in_place_and_score_uses_the_compiled_trees(made, tmp_path, capsys):
    import shutil

    from creditmodel.cli import main

    shutil.copytree(made["src"], tmp_path / "bundle")  # not an output creditmodel recorded: refused in place
    trust = ["--trusted-key", str(made["public"])]
    code = main(["bundle", "compile", "--bundle", str(tmp_path / "bundle"), "--signing-key", str(made["private"]),
                 *trust])
    err = capsys.readouterr().err
    assert code == 2 and "which creditmodel did not write" in err and "elsewhere with --out DIR" in err
    out = tmp_path / "out" / "bundle"
    rows = tmp_path / "rows.parquet"
    X = _frame(400, 13)
    X.assign(loan_id=np.arange(len(X)), split="oot").to_parquet(rows)
    assert main(["bundle", "compile", "--bundle", str(made["src"]), "--out", str(out), "--signing-key",
                 str(made["private"]), "--parity-rows", str(rows), *trust]) == 0
    said = capsys.readouterr().out
    assert f"{COMPILED_FILE}; its PDs match LightGBM's on 2,400 parity rows" in said
    assert main(["bundle", "compile", "--bundle", str(out), "--portable", "--signing-key", str(made["private"]),
                 *trust]) == 0  # in place this time: the output is creditmodel's
    assert json.loads((out / "manifest.json").read_text())["compiled"]["cpu"] == "x86-64"
    assert main(["score", "--bundle", str(out), "--input", str(rows), "--out", str(tmp_path / "s.parquet"),
                 *trust]) == 0
    assert "compiled trees" in capsys.readouterr().out
    scored = pd.read_parquet(tmp_path / "s.parquet")
    assert np.max(np.abs(scored["pd"].to_numpy() - _reference_pd(made, X))) <= 1e-9



def test_export_compile_checks_the_out_of_time_split_and_needs_a_key(demo_run, signing_keys, tmp_path):
    from creditmodel.export.from_registry import export_model

    uri = demo_run["tracking_uri"]
    with pytest.raises(ConfigError, match="--compile: compiled trees run only from a signed bundle"):
        export_model("models:/sme_pd@challenger", tmp_path / "unsigned", tracking_uri=uri, compiled=True)
    assert not (tmp_path / "unsigned").exists()
    out = tmp_path / "bundle"
    result = export_model("models:/sme_pd@challenger", out, tracking_uri=uri, signing_key=signing_keys["private"],
                          compiled=True)
    scored = pd.read_parquet(demo_run["result"].output_dir / "scored.parquet")
    oot = scored[scored["split"] == "oot"]
    assert result["compiled"]["parity"]["rows"] == 2000 + len(oot)
    bundle = load_bundle(out)
    assert bundle.compiled is not None
    features = pd.read_parquet(demo_run["result"].features_path).set_index("loan_id").loc[oot["loan_id"]]
    # the training-time PDs of the run, which LightGBM computed before any bundle existed
    assert np.max(np.abs(bundle.predict_pd(features) - oot["pd_lightgbm"].to_numpy())) <= 1e-9


def test_serve_answers_from_the_compiled_trees(made):
    import socket
    import subprocess
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "creditmodel.cli", "serve", "--bundle", str(made["compiled"]),
                             "--port", str(port), "--log-level", "warning", "--trusted-key", str(made["public"])],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        X = _frame(50, 21)
        rows = X.astype(object).where(X.notna(), None).to_dict("records")
        r = httpx.post(f"{url}/v1/score", json={"applications": [{"id": str(i), "features": f}
                                                                  for i, f in enumerate(rows)]}, timeout=30)
        assert r.status_code == 200, r.text
        got = np.array([a["pd"] for a in r.json()["results"]])
        assert np.max(np.abs(got - _reference_pd(made, X))) <= 1e-9
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert "features, compiled trees) on http" in out and "not used" not in out


def test_batch_screen_encodes_as_the_schema_and_leaves_every_refusal_to_the_bundle(made):
    from creditmodel.service.batch import encoded_if_clean, score_frame

    bundle = load_bundle(made["compiled"], trusted_keys=[made["public"]])
    X = _frame(2000, 23)
    np.testing.assert_array_equal(encoded_if_clean(bundle, X), bundle.schema.encode(X))
    scored = score_frame(bundle, X)
    assert np.max(np.abs(scored["pd"].to_numpy() - _reference_pd(made, X))) <= 1e-9
    bad_values = {"sector": "zoo", "income": np.inf, "age": 1e16}  # unknown category, infinite, outside the range
    for name, value in bad_values.items():
        bad = X.copy()
        bad.loc[1234, name] = value
        assert encoded_if_clean(bundle, bad) is None
        with pytest.raises(RequestError) as caught:
            bundle.check_request(bad.iloc[1234:1235])
        with pytest.raises(RequestError) as batch:
            score_frame(bundle, bad)
        assert str(batch.value) == f"row 1234: {caught.value}"
    for odd in (X.assign(age=X["age"].astype(object)), X.assign(ratio=X["ratio"] > 0)):  # object, bool columns
        assert encoded_if_clean(bundle, odd) is None
    with pytest.raises(RequestError, match="^row 0: .*is not a number"):
        score_frame(bundle, X.assign(ratio=X["ratio"] > 0))
