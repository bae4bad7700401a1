"""Who wrote a bundle: an Ed25519 signature over the bytes of its manifest.

The manifest lists the SHA-256 of every other file, so one signature over manifest.json proves the
author of the whole bundle. The signature lives next to it in manifest.sig (JSON):

    {"format": "creditmodel-bundle-signature", "version": 1, "algorithm": "ed25519",
     "key_id": "<first 32 hex digits of SHA-256 of the raw public key>",
     "public_key": "<base64 of the raw 32-byte public key>",
     "manifest_sha256": "<hex>", "signature": "<base64 of the 64-byte signature of manifest.json>"}

A reader trusts a public key it was given (--trusted-key FILE, or $CREDITMODEL_TRUSTED_KEYS), never
the one inside manifest.sig: that copy only names the signer and lets a development load (allow
unsigned) still tell a corrupted signature from an untrusted one. Keys are PEM files: the private
key PKCS#8 (written 0600), the public key SubjectPublicKeyInfo.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from creditmodel.exceptions import BundleError, ConfigError
from creditmodel.outputs import write_atomically

SIGNATURE_FILE = "manifest.sig"
SIGNED_FILE = "manifest.json"
SIGNATURE_FORMAT = "creditmodel-bundle-signature"
SIGNATURE_VERSION = 1
ENV_SIGNING_KEY = "CREDITMODEL_SIGNING_KEY"
ENV_TRUSTED_KEYS = "CREDITMODEL_TRUSTED_KEYS"
PRIVATE_KEY_NAME = "bundle_signing_key.pem"
PUBLIC_KEY_NAME = "bundle_signing_key.pub.pem"
HOW_TO_SIGN = ("create a key pair with `creditmodel keys generate --out DIR`, then write bundles with "
               f"--signing-key DIR/{PRIVATE_KEY_NAME} (or ${ENV_SIGNING_KEY}, or [bundle] signing_key in the config)")
_MAX_SIG_BYTES = 4096
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_KEY_ID = re.compile(r"^[0-9a-f]{32}$")


def key_id(public_key: Ed25519PublicKey) -> str:
    """The key's id: the first 32 hex digits of the SHA-256 of its raw 32 bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


def generate_keys(out_dir: str | Path) -> tuple[Path, Path, str]:
    """Write a new Ed25519 key pair into `out_dir`: the private key 0600, the public key 0644 (PEM).

    Existing key files are never overwritten. Returns (private key path, public key path, key id).
    """
    out_dir = Path(out_dir)
    private_path, public_path = out_dir / PRIVATE_KEY_NAME, out_dir / PUBLIC_KEY_NAME
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: exists and is not a directory")
    for p in (private_path, public_path):
        if p.exists() or p.is_symlink():
            raise ConfigError(f"--out {out_dir}: {p.name} exists already; keys are never overwritten "
                              f"(choose another directory)")
    out_dir.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, private_pem)
    finally:
        os.close(fd)
    fd = os.open(public_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, public_pem)
    finally:
        os.close(fd)
    return private_path, public_path, key_id(key.public_key())


def _key_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot be read ({exc.strerror or exc})") from None


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """The Ed25519 private key of a PEM file; ConfigError names the file and what was expected."""
    path = Path(path)
    data = _key_bytes(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"signing key {path}: expected an unencrypted Ed25519 private key in PEM "
                          f"(from `creditmodel keys generate`): {str(exc).splitlines()[0] if str(exc) else 'unreadable'}"
                          ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"signing key {path}: a {type(key).__name__}, expected an Ed25519 private key")
    return key


def load_public_key(path: str | os.PathLike) -> Ed25519PublicKey:
    """The Ed25519 public key of a PEM file; ConfigError names the file and what was expected."""
    path = Path(path)
    data = _key_bytes(path, "trusted key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        hint = " (this is a private key: trust its .pub.pem)" if b"PRIVATE KEY" in data else ""
        raise ConfigError(f"trusted key {path}: expected an Ed25519 public key in PEM{hint}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"trusted key {path}: a {type(key).__name__}, expected an Ed25519 public key")
    return key


TrustedKey = str | os.PathLike | Ed25519PublicKey


def trusted_keys_from_env() -> list[Path]:
    """The public key files named by $CREDITMODEL_TRUSTED_KEYS (separated by os.pathsep)."""
    return [Path(p) for p in os.environ.get(ENV_TRUSTED_KEYS, "").split(os.pathsep) if p.strip()]


def resolve_trusted_keys(keys: Iterable[TrustedKey] | None) -> dict[str, Ed25519PublicKey]:
    """Key id -> public key; `None` reads $CREDITMODEL_TRUSTED_KEYS."""
    out: dict[str, Ed25519PublicKey] = {}
    if isinstance(keys, (str, os.PathLike, Ed25519PublicKey)):  # one key, not a list of them
        keys = [keys]
    for k in trusted_keys_from_env() if keys is None else keys:
        pub = k if isinstance(k, Ed25519PublicKey) else load_public_key(k)
        out[key_id(pub)] = pub
    return out


def sign_bundle(bundle_dir: str | Path, private_key: Ed25519PrivateKey) -> str:
    """Sign the bundle's manifest.json as it is now: write manifest.sig (atomically); return the key id."""
    bundle_dir = Path(bundle_dir)
    manifest = (bundle_dir / SIGNED_FILE).read_bytes()
    public = private_key.public_key()
    kid = key_id(public)
    doc = {"format": SIGNATURE_FORMAT, "version": SIGNATURE_VERSION, "algorithm": "ed25519", "key_id": kid,
           "public_key": base64.b64encode(public.public_bytes(serialization.Encoding.Raw,
                                                              serialization.PublicFormat.Raw)).decode(),
           "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
           "signature": base64.b64encode(private_key.sign(manifest)).decode()}
    write_atomically(bundle_dir / SIGNATURE_FILE, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return kid


@dataclass(frozen=True)
class Signature:
    """What a bundle's signature proved: the signer's key id and whether that key is trusted."""

    key_id: str | None
    trusted: bool

    def describe(self) -> str:
        if self.key_id is None:
            return "unsigned"
        return f"signed by {'trusted' if self.trusted else 'UNTRUSTED'} key {self.key_id}"


def _b64(value: object, size: int, where: str) -> bytes:
    if not isinstance(value, str):
        raise BundleError(f"{where}: expected base64 text")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BundleError(f"{where}: not valid base64") from None
    if len(raw) != size:
        raise BundleError(f"{where}: {len(raw)} bytes, expected {size}")
    return raw


def verify_manifest(bundle: Path, manifest: bytes, signature: bytes | None,
                    trusted: dict[str, Ed25519PublicKey], *, allow_unsigned: bool = False) -> Signature:
    """Check manifest.sig against the manifest's bytes and the trusted keys; BundleError on any doubt.

    Always refused: a malformed manifest.sig, or a signature that does not verify. Refused unless
    `allow_unsigned` (development): no manifest.sig, or a signature by a key that is not trusted.
    """
    where = f"bundle {bundle}: {SIGNATURE_FILE}"
    trusted_ids = ", ".join(sorted(trusted)) or "none configured"
    if signature is None:
        if allow_unsigned:
            return Signature(None, False)
        raise BundleError(f"bundle {bundle}: {SIGNATURE_FILE} is missing: the bundle is unsigned, expected a "
                          f"signature of {SIGNED_FILE} by a trusted key ({trusted_ids}); {HOW_TO_SIGN}; "
                          f"--allow-unsigned accepts it for development only")
    if len(signature) > _MAX_SIG_BYTES:
        raise BundleError(f"{where}: {len(signature)} bytes, expected a small JSON signature document")
    try:
        doc = json.loads(signature.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise BundleError(f"{where}: expected a JSON object")
    if doc.get("format") != SIGNATURE_FORMAT or doc.get("version") != SIGNATURE_VERSION \
            or doc.get("algorithm") != "ed25519":
        raise BundleError(f"{where}: format {doc.get('format')!r} version {doc.get('version')!r} algorithm "
                          f"{doc.get('algorithm')!r}, expected {SIGNATURE_FORMAT!r} version {SIGNATURE_VERSION} "
                          f"algorithm 'ed25519'")
    kid = doc.get("key_id")
    if not isinstance(kid, str) or not _KEY_ID.match(kid):
        raise BundleError(f"{where}: field key_id {kid!r}, expected 32 lower-case hex digits")
    try:
        embedded = Ed25519PublicKey.from_public_bytes(_b64(doc.get("public_key"), 32, f"{where}: field public_key"))
    except ValueError:
        raise BundleError(f"{where}: field public_key is not an Ed25519 public key") from None
    if key_id(embedded) != kid:
        raise BundleError(f"{where}: field public_key has id {key_id(embedded)}, expected the key_id {kid}")
    sig = _b64(doc.get("signature"), 64, f"{where}: field signature")
    digest = hashlib.sha256(manifest).hexdigest()
    expected_digest = doc.get("manifest_sha256")
    if not isinstance(expected_digest, str) or not _HEX64.match(expected_digest):
        raise BundleError(f"{where}: field manifest_sha256 {expected_digest!r}, expected 64 hex digits")
    key = trusted.get(kid, embedded)
    try:
        key.verify(sig, manifest)
    except InvalidSignature:
        changed = (f"{SIGNED_FILE} has sha256 {digest[:12]}..., the signed one {expected_digest[:12]}..."
                   if digest != expected_digest else f"{SIGNATURE_FILE} or {SIGNED_FILE} was changed")
        raise BundleError(f"{where}: the signature of {SIGNED_FILE} by key {kid} does not verify "
                          f"({changed}: tampered or corrupted after signing)") from None
    if digest != expected_digest:  # the signature holds, so only this field was edited
        raise BundleError(f"{where}: field manifest_sha256 {expected_digest[:12]}... is not the sha256 of "
                          f"{SIGNED_FILE} ({digest[:12]}...)")
    if kid in trusted:
        return Signature(kid, True)
    if allow_unsigned:
        return Signature(kid, False)
    raise BundleError(f"{where}: signed by key {kid}, which is not trusted; expected one of: {trusted_ids} "
                      f"(--trusted-key FILE or ${ENV_TRUSTED_KEYS})")


def read_signature_key_id(bundle_dir: str | Path) -> str | None:
    """The key id a bundle's manifest.sig names (not verified: for messages about a bundle just written)."""
    try:
        doc = json.loads((Path(bundle_dir) / SIGNATURE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc.get("key_id") if isinstance(doc, dict) and isinstance(doc.get("key_id"), str) else None
