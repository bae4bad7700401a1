"""Bundles prove their author: an Ed25519 signature over manifest.json, checked against trusted public keys.

A changed model.txt whose hash is rewritten in the manifest, a bundle signed by another key, an unsigned bundle
and a flipped byte in the manifest or its signature are all refused with one line, in the library and through
`creditmodel score` / `price`; --allow-unsigned is the development escape and says so.
"""

import json
import os
import stat

import numpy as np
import pandas as pd
import pytest

from creditmodel.cli import main
from creditmodel.exceptions import BundleError, ConfigError
from creditmodel.export.bundle import load_bundle, write_bundle
from creditmodel.export.signing import (
    ENV_TRUSTED_KEYS,
    PRIVATE_KEY_NAME,
    PUBLIC_KEY_NAME,
    generate_keys,
    key_id,
    load_private_key,
    load_public_key,
)

from .bundle_tools import resign, rewrite


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory):
    private, public, kid = generate_keys(tmp_path_factory.mktemp("other-keys"))
    return {"private": private, "public": public, "key_id": kid}


@pytest.fixture(scope="module")
def features_file(demo_run, tmp_path_factory):
    frame = pd.read_parquet(demo_run["result"].features_path)
    path = tmp_path_factory.mktemp("features") / "oot.parquet"
    frame[frame["split"] == "oot"].head(300).to_parquet(path)
    return path


def _score(bundle, features_file, tmp_path, *extra):
    return main(["score", "--bundle", str(bundle), "--input", str(features_file), "--out",
                 str(tmp_path / "scored.parquet"), *extra])


def _one_error_line(capsys) -> str:
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln]
    assert len(err) == 1, err
    return err[0]


def _tamper_leaves(bundle):
    """model.txt with every leaf value negated, written by LightGBM itself (what an attacker would do)."""
    import lightgbm as lgb

    booster = lgb.Booster(model_str=(bundle / "model.txt").read_text())
    leaves = [int(ln.split("=")[1]) for ln in (bundle / "model.txt").read_text().splitlines()
              if ln.startswith("num_leaves=")]
    for tree, n in enumerate(leaves):
        for leaf in range(n):
            booster.set_leaf_output(tree, leaf, -booster.get_leaf_output(tree, leaf))
    return booster.model_to_string()


def test_the_demo_bundle_is_signed_by_the_session_key(demo_run, signing_keys):
    bundle = load_bundle(demo_run["result"].bundle_dir)  # trusted key from $CREDITMODEL_TRUSTED_KEYS
    assert bundle.signature.key_id == signing_keys["key_id"] and bundle.signature.trusted
    sig = json.loads((demo_run["result"].bundle_dir / "manifest.sig").read_text())
    assert sig["algorithm"] == "ed25519" and sig["key_id"] == signing_keys["key_id"]
    assert sig["key_id"] == key_id(load_public_key(signing_keys["public"]))


def test_tampered_model_with_rewritten_hash_is_refused(bundle_copy, features_file, tmp_path, capsys):
    rewrite(bundle_copy, "model.txt", _tamper_leaves(bundle_copy))  # hash and size rewritten, not re-signed
    with pytest.raises(BundleError, match=r"manifest.sig: the signature of manifest.json by key [0-9a-f]{32} "
                                          r"does not verify .*sha256") as err:
        load_bundle(bundle_copy)
    assert "\n" not in str(err.value) and str(bundle_copy) in str(err.value)
    # even for development, a signature that does not verify is refused
    with pytest.raises(BundleError, match="does not verify"):
        load_bundle(bundle_copy, allow_unsigned=True)
    assert _score(bundle_copy, features_file, tmp_path) == 2
    assert "does not verify" in _one_error_line(capsys)
    assert not (tmp_path / "scored.parquet").exists()


def test_a_forged_model_would_change_grades(bundle_copy, features_file, signing_keys):
    """The attack of the drill: the forged model is valid LightGBM and grades differently, so the signature is
    what stops it (re-signed here with the trusted key only to show what would otherwise be served)."""
    oot = pd.read_parquet(features_file)
    before = load_bundle(bundle_copy)
    rewrite(bundle_copy, "model.txt", _tamper_leaves(bundle_copy), sign_with=signing_keys["private"])
    after = load_bundle(bundle_copy)
    changed = np.mean(before.grade(before.predict_pd(oot)) != after.grade(after.predict_pd(oot)))
    assert changed > 0.5


def test_a_bundle_signed_by_another_key_is_refused(bundle_copy, other_keys, signing_keys, features_file, tmp_path,
                                                  capsys):
    resign(bundle_copy, other_keys["private"])
    with pytest.raises(BundleError, match=f"signed by key {other_keys['key_id']}, which is not trusted; expected "
                                          f"one of: {signing_keys['key_id']}"):
        load_bundle(bundle_copy)
    assert _score(bundle_copy, features_file, tmp_path) == 2
    assert f"signed by key {other_keys['key_id']}, which is not trusted" in _one_error_line(capsys)
    # trusting that key (also next to the usual one) accepts it
    assert _score(bundle_copy, features_file, tmp_path, "--trusted-key", str(other_keys["public"])) == 0
    capsys.readouterr()
    assert load_bundle(bundle_copy, trusted_keys=[signing_keys["public"], other_keys["public"]]).signature.trusted
    assert load_bundle(bundle_copy, trusted_keys=other_keys["public"]).signature.trusted  # one key, not a list
    # development: accepted, and the bundle says by whom and that the key is not trusted
    dev = load_bundle(bundle_copy, allow_unsigned=True).signature
    assert (dev.key_id, dev.trusted) == (other_keys["key_id"], False) and "UNTRUSTED" in dev.describe()


def test_trusted_keys_from_the_environment(bundle_copy, other_keys, signing_keys, monkeypatch):
    resign(bundle_copy, other_keys["private"])
    monkeypatch.setenv(ENV_TRUSTED_KEYS, os.pathsep.join([str(signing_keys["public"]), str(other_keys["public"])]))
    assert load_bundle(bundle_copy).signature.key_id == other_keys["key_id"]
    monkeypatch.delenv(ENV_TRUSTED_KEYS)
    with pytest.raises(BundleError, match="which is not trusted; expected one of: none configured"):
        load_bundle(bundle_copy)


def test_an_unsigned_bundle_needs_allow_unsigned(bundle_copy, features_file, tmp_path, capsys):
    (bundle_copy / "manifest.sig").unlink()
    with pytest.raises(BundleError, match="manifest.sig is missing: the bundle is unsigned.*keys generate"):
        load_bundle(bundle_copy)
    assert _score(bundle_copy, features_file, tmp_path) == 2
    assert "the bundle is unsigned" in _one_error_line(capsys)
    assert not (tmp_path / "scored.parquet").exists()
    assert _score(bundle_copy, features_file, tmp_path, "--allow-unsigned") == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "warning: --allow-unsigned (development only)" in err[0] and "unsigned" in err[0]
    assert load_bundle(bundle_copy, allow_unsigned=True).signature.key_id is None


def test_price_refuses_an_unsigned_bundle_and_warns_when_allowed(bundle_copy, features_file, tmp_path, capsys):
    (bundle_copy / "manifest.sig").unlink()
    argv = ["price", "--bundle", str(bundle_copy), "--applications", str(features_file), "--out",
            str(tmp_path / "priced.csv")]
    assert main(argv) == 2
    assert "unsigned" in _one_error_line(capsys)
    assert main([*argv, "--allow-unsigned"]) == 0
    assert "warning: --allow-unsigned" in capsys.readouterr().err


@pytest.mark.parametrize("target, offset", [("manifest.json", 0.5), ("manifest.json", 0.0),
                                            ("manifest.sig", "signature"), ("manifest.sig", "key_id")])
def test_one_flipped_byte_in_manifest_or_signature_is_refused(bundle_copy, target, offset):
    if target == "manifest.json":
        raw = bytearray((bundle_copy / target).read_bytes())
        i = int(len(raw) * offset) + 2
        raw[i] ^= 0x01
        (bundle_copy / target).write_bytes(bytes(raw))
        expected = "does not verify"
    else:
        doc = json.loads((bundle_copy / target).read_text())
        value = doc[offset]
        doc[offset] = value[:5] + ("B" if value[5] != "B" else "C") + value[6:] if offset == "signature" else \
            value[:-1] + ("0" if value[-1] != "0" else "1")
        (bundle_copy / target).write_text(json.dumps(doc))
        expected = "does not verify" if offset == "signature" else "field public_key has id"
    for allow in (False, True):
        with pytest.raises(BundleError, match=expected) as err:
            load_bundle(bundle_copy, allow_unsigned=allow)
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("content, match", [
    ("not json", "manifest.sig: not valid JSON"),
    ('["a"]', "manifest.sig: expected a JSON object"),
    ('{"format": "creditmodel-bundle-signature", "version": 1, "algorithm": "rsa"}', "algorithm 'rsa'"),
    ('{"format": "creditmodel-bundle-signature", "version": 1, "algorithm": "ed25519", "key_id": 5}',
     "field key_id 5"),
])
def test_malformed_signature_file_is_one_line(bundle_copy, content, match):
    (bundle_copy / "manifest.sig").write_text(content)
    with pytest.raises(BundleError, match=match):
        load_bundle(bundle_copy, allow_unsigned=True)


def test_keys_generate_writes_a_private_key_only_the_owner_can_read(tmp_path, capsys):
    out = tmp_path / "keys"
    assert main(["keys", "generate", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    private, public = out / PRIVATE_KEY_NAME, out / PUBLIC_KEY_NAME
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(public.stat().st_mode) & 0o077 == 0o044 & stat.S_IMODE(public.stat().st_mode)
    kid = key_id(load_private_key(private).public_key())
    assert kid == key_id(load_public_key(public)) and kid in printed and "--trusted-key" in printed
    before = private.read_bytes()
    assert main(["keys", "generate", "--out", str(out)]) == 2  # never overwrites a key
    assert "exists already" in _one_error_line(capsys)
    assert private.read_bytes() == before


def test_bad_key_files_are_one_line(bundle_copy, features_file, signing_keys, tmp_path, capsys):
    assert _score(bundle_copy, features_file, tmp_path, "--trusted-key", str(tmp_path / "nope.pem")) == 2
    assert "trusted key" in _one_error_line(capsys)
    assert _score(bundle_copy, features_file, tmp_path, "--trusted-key", str(signing_keys["private"])) == 2
    assert "this is a private key" in _one_error_line(capsys)
    with pytest.raises(ConfigError, match="expected an unencrypted Ed25519 private key"):
        load_private_key(signing_keys["public"])


def test_write_bundle_signs_with_a_key_file(demo_run, signing_keys, tmp_path):
    src = load_bundle(demo_run["result"].bundle_dir)
    out = write_bundle(tmp_path / "b", src.booster, src.calibrator, src.master_scale, schema=src.schema,
                       model_card=src.model_card, signing_key=signing_keys["private"])
    assert load_bundle(out).signature.key_id == signing_keys["key_id"]
    unsigned = write_bundle(tmp_path / "u", src.booster, src.calibrator, src.master_scale, schema=src.schema)
    assert not (unsigned / "manifest.sig").exists()


def test_export_signs_with_signing_key_and_says_so(demo_run, other_keys, tmp_path, capsys, monkeypatch):
    out = tmp_path / "exported"
    monkeypatch.setenv("CREDITMODEL_SIGNING_KEY", str(other_keys["private"]))
    assert main(["export", "--out", str(out), "--tracking-uri", demo_run["tracking_uri"]]) == 0
    assert f"signed by key {other_keys['key_id']}" in capsys.readouterr().out
    assert load_bundle(out, trusted_keys=[other_keys["public"]]).signature.key_id == other_keys["key_id"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["verification"]["parity"]["max_abs_pd_diff"] <= 1e-9  # signed after the verification


def test_run_output_explains_an_unsigned_bundle(bundle_copy):
    from creditmodel.cli import _signature_note

    assert _signature_note(bundle_copy).startswith("signed by key ")
    (bundle_copy / "manifest.sig").unlink()
    note = _signature_note(bundle_copy)
    assert note.startswith("UNSIGNED") and "creditmodel keys generate --out DIR" in note and "--signing-key" in note


@pytest.mark.parametrize("key, message", [("missing", "cannot be read"), ("public", "expected an unencrypted Ed25519")])
def test_run_with_a_bad_signing_key_is_one_line_and_writes_nothing(signing_keys, tmp_path, capsys, monkeypatch,
                                                                   key, message):
    path = tmp_path / "nope.pem" if key == "missing" else signing_keys["public"]
    monkeypatch.setenv("CREDITMODEL_SIGNING_KEY", str(path))
    out = tmp_path / "run"
    assert main(["run", "--out", str(out), "--enterprises", "60", "--tracking-uri",
                 f"sqlite:///{tmp_path / 'mlflow.db'}"]) == 2
    line = _one_error_line(capsys)
    assert line.startswith(f"creditmodel: error: signing key {path}") and message in line
    assert not out.exists() and not (tmp_path / "mlflow.db").exists()


def test_the_signed_manifest_hash_must_match_too(bundle_copy):
    doc = json.loads((bundle_copy / "manifest.sig").read_text())
    doc["manifest_sha256"] = "0" * 64
    (bundle_copy / "manifest.sig").write_text(json.dumps(doc))
    with pytest.raises(BundleError, match="field manifest_sha256 000000000000... is not the sha256 of manifest.json"):
        load_bundle(bundle_copy)
