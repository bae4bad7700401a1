"""The errors of loading and writing a bundle and of its signature are texts of the message catalogue: the
English as it always was, and the same in Chinese on one line (raised through the real code)."""

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from creditmodel.exceptions import BundleError, ConfigError
from creditmodel.export.bundle import FILES, FORMAT, FORMAT_VERSION, PDBundle, load_bundle, write_bundle
from creditmodel.export.signing import (
    HOW_TO_SIGN,
    HOW_TO_SIGN_PHRASE,
    generate_keys,
    key_id,
    load_public_key,
    sign_bundle,
    verify_manifest,
)
from creditmodel.texts import text


def _said(exc_info: pytest.ExceptionInfo) -> tuple[str, str]:
    exc = exc_info.value
    zh = exc.in_lang("zh")
    assert zh is not None and "\n" not in zh and "\n" not in str(exc)
    return str(exc), zh


def _fake_bundle(tmp_path: Path, manifest: dict | str) -> Path:
    """A bundle directory whose manifest lists the required files (none of them as written)."""
    path = tmp_path / "bundle"
    path.mkdir()
    (path / "manifest.json").write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    return path


def _manifest(**over) -> dict:
    files = {name: {"sha256": hashlib.sha256(b"x").hexdigest(), "bytes": 1} for name in FILES}
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "files": files, **over}


def test_a_missing_bundle_directory(tmp_path):
    with pytest.raises(BundleError) as e:
        load_bundle(tmp_path / "nowhere", allow_unsigned=True)
    assert _said(e) == (f"bundle directory {tmp_path / 'nowhere'} does not exist",
                        f"模型包目录 {tmp_path / 'nowhere'} 不存在")


def test_a_manifest_that_is_not_json(tmp_path):
    path = _fake_bundle(tmp_path, "{")
    with pytest.raises(BundleError) as e:
        load_bundle(path, allow_unsigned=True)
    detail = "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    assert _said(e) == (f"bundle {path}: manifest.json: not valid JSON ({detail})",
                        f"模型包 {path}：manifest.json：不是有效的 JSON（{detail}）")


def test_a_manifest_of_another_format(tmp_path):
    path = _fake_bundle(tmp_path, _manifest(format="other", format_version=1))
    with pytest.raises(BundleError) as e:
        load_bundle(path, allow_unsigned=True)
    assert _said(e) == (
        f"bundle {path}: manifest.json: format 'other' version '1', expected 'creditmodel-pd-bundle' version 2",
        f"模型包 {path}：manifest.json：格式 'other' 版本 '1'，应为格式 'creditmodel-pd-bundle' 版本 2")


def test_a_listed_file_that_is_missing_or_changed(tmp_path):
    path = _fake_bundle(tmp_path, _manifest())
    with pytest.raises(BundleError) as e:
        load_bundle(path, allow_unsigned=True)
    assert _said(e) == (f"bundle {path}: file model.txt is missing (the manifest lists it)",
                        f"模型包 {path}：缺少文件 model.txt（清单中列有该文件）")
    (path / "model.txt").write_bytes(b"y")
    with pytest.raises(BundleError) as e:
        load_bundle(path, allow_unsigned=True)
    got, want = hashlib.sha256(b"y").hexdigest()[:12], hashlib.sha256(b"x").hexdigest()[:12]
    assert _said(e) == (
        f"bundle {path}: model.txt: sha256 {got}... (1 bytes) does not match the manifest's {want}... (1 bytes): "
        f"tampered or corrupted",
        f"模型包 {path}：model.txt：sha256 {got}...（1 字节）与清单记载的 {want}...（1 字节）不符：已被篡改或损坏")


def test_an_unsigned_bundle_says_how_to_sign(tmp_path):
    with pytest.raises(BundleError) as e:
        verify_manifest(tmp_path, b"{}", None, {})
    assert text(HOW_TO_SIGN_PHRASE.id, "en", **HOW_TO_SIGN_PHRASE.fields) == HOW_TO_SIGN
    assert _said(e) == (
        f"bundle {tmp_path}: manifest.sig is missing: the bundle is unsigned, expected a signature of manifest.json "
        f"by a trusted key (none configured); {HOW_TO_SIGN}; --allow-unsigned accepts it for development only",
        f"模型包 {tmp_path}：缺少 manifest.sig：模型包未签名，应有受信任密钥对 manifest.json 的签名（未配置）；"
        f"请用 `creditmodel keys generate --out DIR` 生成密钥对，再以 --signing-key DIR/bundle_signing_key.pem"
        f"（或 $CREDITMODEL_SIGNING_KEY，或配置中的 [bundle] signing_key）写出模型包；"
        f"--allow-unsigned 仅供开发时接受未签名的模型包")


def test_a_tampered_or_untrusted_signature(tmp_path):
    (tmp_path / "manifest.json").write_bytes(b'{"a": 1}\n')
    key = Ed25519PrivateKey.generate()
    kid = sign_bundle(tmp_path, key)
    sig = (tmp_path / "manifest.sig").read_bytes()
    trusted = {kid: key.public_key()}
    with pytest.raises(BundleError) as e:
        verify_manifest(tmp_path, b'{"a": 2}\n', sig, trusted)
    now, signed = hashlib.sha256(b'{"a": 2}\n').hexdigest()[:12], hashlib.sha256(b'{"a": 1}\n').hexdigest()[:12]
    assert _said(e) == (
        f"bundle {tmp_path}: manifest.sig: the signature of manifest.json by key {kid} does not verify "
        f"(manifest.json has sha256 {now}..., the signed one {signed}...: tampered or corrupted after signing)",
        f"模型包 {tmp_path}：manifest.sig：密钥 {kid} 对 manifest.json 的签名验证未通过"
        f"（manifest.json 的 sha256 为 {now}...，签名时为 {signed}...：签名后被篡改或损坏）")
    other = key_id(Ed25519PrivateKey.generate().public_key())
    with pytest.raises(BundleError) as e:
        verify_manifest(tmp_path, b'{"a": 1}\n', sig, {other: Ed25519PrivateKey.generate().public_key()})
    assert _said(e) == (
        f"bundle {tmp_path}: manifest.sig: signed by key {kid}, which is not trusted; expected one of: {other} "
        f"(--trusted-key FILE or $CREDITMODEL_TRUSTED_KEYS)",
        f"模型包 {tmp_path}：manifest.sig：签名密钥 {kid} 不受信任；应为以下之一：{other}"
        f"（--trusted-key FILE 或 $CREDITMODEL_TRUSTED_KEYS）")


def test_keys_are_never_overwritten_and_a_private_key_is_not_trusted(tmp_path):
    private, _, _ = generate_keys(tmp_path)
    with pytest.raises(ConfigError) as e:
        generate_keys(tmp_path)
    assert _said(e) == (
        f"--out {tmp_path}: bundle_signing_key.pem exists already; keys are never overwritten (choose another "
        f"directory)",
        f"--out {tmp_path}：bundle_signing_key.pem 已存在；密钥从不覆盖（请另选目录）")
    with pytest.raises(ConfigError) as e:
        load_public_key(private)
    assert _said(e) == (
        f"trusted key {private}: expected an Ed25519 public key in PEM (this is a private key: trust its .pub.pem)",
        f"受信任的公钥 {private}：应为 PEM 格式的 Ed25519 公钥（这是私钥：请信任与之对应的 .pub.pem）")


def test_write_bundle_and_the_currency_of_amounts(tmp_path):
    with pytest.raises(ConfigError) as e:
        write_bundle(tmp_path / "out", None)
    assert _said(e) == ("write_bundle: a LightGBMPD or Booster needs its calibrator and master_scale",
                        "write_bundle：LightGBMPD 或 Booster 须同时传入其校准器（calibrator）和主标尺（master_scale）")
    bundle = PDBundle(tmp_path, None, None, None, None, {}, {"data_dictionary": {"currency": "CNY"}})
    with pytest.raises(ConfigError) as e:
        bundle.check_currency(SimpleNamespace(currency="USD", source="usd.toml"), "price")
    assert _said(e) == (
        f"price: the data dictionary (usd.toml) is in USD, but bundle {tmp_path} was trained on amounts in CNY; "
        f"use the data dictionary of the bundle's training run",
        f"price：数据字典（usd.toml）的金额以 USD 计，而模型包 {tmp_path} 训练时的金额以 CNY 计；"
        f"请使用该模型包训练时所用的数据字典")


def test_the_contents_checks_name_the_bundle_and_file_in_the_language_of_the_message(tmp_path):
    path = tmp_path / "bundle"
    path.mkdir()
    docs = {"model.txt": b"tree\n", "calibration.json": b'{"method": "nope"}', "master_scale.json": b"{}",
            "feature_schema.json": b"{}", "model_card.json": b"{}"}
    for name, raw in docs.items():
        (path / name).write_bytes(raw)
    files = {name: {"sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)} for name, raw in docs.items()}
    (path / "manifest.json").write_text(json.dumps(_manifest(files=files)))
    with pytest.raises(BundleError) as e:
        load_bundle(path, allow_unsigned=True)
    en, zh = _said(e)
    assert en.startswith(f"bundle {path}: calibration.json: field method: 'nope'")
    assert zh.startswith(f"模型包 {path}：calibration.json：") and "bundle" not in zh.replace(str(path), "")
