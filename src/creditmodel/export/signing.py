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
from creditmodel.texts import Phrase

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
# the same advice as a text of the message catalogue, in the language of the text it fills
HOW_TO_SIGN_PHRASE = Phrase("error.signing.how_to_sign", {"key_name": PRIVATE_KEY_NAME, "env": ENV_SIGNING_KEY})
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
        raise ConfigError.of("error.signing.out_not_dir", out=out_dir)
    for p in (private_path, public_path):
        if p.exists() or p.is_symlink():
            raise ConfigError.of("error.signing.key_exists", out=out_dir, name=p.name)
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


def _key_bytes(path: Path, private: bool) -> bytes:
    """The bytes of a key file: the signing (private) key or a trusted (public) key."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError.of("error.signing.private_unreadable" if private else "error.signing.public_unreadable",
                             path=path, detail=str(exc.strerror or exc)) from None


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """The Ed25519 private key of a PEM file; ConfigError names the file and what was expected."""
    path = Path(path)
    data = _key_bytes(path, private=True)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError.of("error.signing.private_not_pem", path=path,
                             detail=str(exc).splitlines()[0] if str(exc) else Phrase("error.signing.unreadable")
                             ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError.of("error.signing.private_wrong_kind", path=path, kind=type(key).__name__)
    return key


def load_public_key(path: str | os.PathLike) -> Ed25519PublicKey:
    """The Ed25519 public key of a PEM file; ConfigError names the file and what was expected."""
    path = Path(path)
    data = _key_bytes(path, private=False)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError.of("error.signing.public_is_private" if b"PRIVATE KEY" in data
                             else "error.signing.public_not_pem", path=path) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError.of("error.signing.public_wrong_kind", path=path, kind=type(key).__name__)
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


def _b64(value: object, size: int, bundle: Path, field: str) -> bytes:
    """The `size` bytes of manifest.sig's base64 field `field`; BundleError naming the bundle and the field."""
    if not isinstance(value, str):
        raise BundleError.of("error.signing.b64_not_text", path=bundle, field=field)
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BundleError.of("error.signing.b64_invalid", path=bundle, field=field) from None
    if len(raw) != size:
        raise BundleError.of("error.signing.b64_size", path=bundle, field=field, size=len(raw), expected=size)
    return raw


def verify_manifest(bundle: Path, manifest: bytes, signature: bytes | None,
                    trusted: dict[str, Ed25519PublicKey], *, allow_unsigned: bool = False) -> Signature:
    """Check manifest.sig against the manifest's bytes and the trusted keys; BundleError on any doubt.

    Always refused: a malformed manifest.sig, or a signature that does not verify. Refused unless
    `allow_unsigned` (development): no manifest.sig, or a signature by a key that is not trusted.
    """
    # the messages name manifest.sig (SIGNATURE_FILE) and manifest.json (SIGNED_FILE) in their text
    trusted_ids: str | Phrase = ", ".join(sorted(trusted)) or Phrase("error.signing.none_configured")
    if signature is None:
        if allow_unsigned:
            return Signature(None, False)
        raise BundleError.of("error.signing.unsigned", path=bundle, trusted=trusted_ids, how=HOW_TO_SIGN_PHRASE)
    if len(signature) > _MAX_SIG_BYTES:
        raise BundleError.of("error.signing.too_large", path=bundle, size=len(signature))
    try:
        doc = json.loads(signature.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError.of("error.signing.json_invalid", path=bundle, detail=str(exc)) from None
    if not isinstance(doc, dict):
        raise BundleError.of("error.signing.not_object", path=bundle)
    if doc.get("format") != SIGNATURE_FORMAT or doc.get("version") != SIGNATURE_VERSION \
            or doc.get("algorithm") != "ed25519":
        raise BundleError.of("error.signing.format_version", path=bundle, format=doc.get("format"),
                             version=doc.get("version"), algorithm=doc.get("algorithm"),
                             expected_format=SIGNATURE_FORMAT, expected_version=SIGNATURE_VERSION)
    kid = doc.get("key_id")
    if not isinstance(kid, str) or not _KEY_ID.match(kid):
        raise BundleError.of("error.signing.key_id_invalid", path=bundle, key_id=kid)
    try:
        embedded = Ed25519PublicKey.from_public_bytes(_b64(doc.get("public_key"), 32, bundle, "public_key"))
    except ValueError:
        raise BundleError.of("error.signing.public_key_invalid", path=bundle) from None
    if key_id(embedded) != kid:
        raise BundleError.of("error.signing.public_key_id", path=bundle, actual=key_id(embedded), key_id=kid)
    sig = _b64(doc.get("signature"), 64, bundle, "signature")
    digest = hashlib.sha256(manifest).hexdigest()
    expected_digest = doc.get("manifest_sha256")
    if not isinstance(expected_digest, str) or not _HEX64.match(expected_digest):
        raise BundleError.of("error.signing.digest_invalid", path=bundle, signed=expected_digest)
    key = trusted.get(kid, embedded)
    try:
        key.verify(sig, manifest)
    except InvalidSignature:
        changed = (Phrase("error.signing.changed_manifest", {"digest": digest[:12], "signed": expected_digest[:12]})
                   if digest != expected_digest else Phrase("error.signing.changed_either"))
        raise BundleError.of("error.signing.not_verified", path=bundle, key_id=kid, changed=changed) from None
    if digest != expected_digest:  # the signature holds, so only this field was edited
        raise BundleError.of("error.signing.digest_mismatch", path=bundle, signed=expected_digest[:12],
                             digest=digest[:12])
    if kid in trusted:
        return Signature(kid, True)
    if allow_unsigned:
        return Signature(kid, False)
    raise BundleError.of("error.signing.untrusted", path=bundle, key_id=kid, trusted=trusted_ids,
                         env=ENV_TRUSTED_KEYS)


def read_signature_key_id(bundle_dir: str | Path) -> str | None:
    """The key id a bundle's manifest.sig names (not verified: for messages about a bundle just written)."""
    try:
        doc = json.loads((Path(bundle_dir) / SIGNATURE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc.get("key_id") if isinstance(doc, dict) and isinstance(doc.get("key_id"), str) else None
