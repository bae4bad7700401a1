"""Ways to damage a bundle as an attacker or a broken disk would: change a file and rewrite its manifest entry,
with or without signing the new manifest again."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from creditmodel.export.signing import load_private_key, sign_bundle


def resign(bundle: Path, private_key: Path) -> None:
    """Sign the bundle's manifest as it is now (a trusted author who wrote a bad bundle)."""
    sign_bundle(bundle, load_private_key(private_key))


def rewrite(bundle: Path, name: str, data: bytes | str, *, sign_with: Path | None = None) -> None:
    """Replace one listed file and rewrite its sha256 and size in manifest.json (the checks every file has)."""
    raw = data.encode() if isinstance(data, str) else data
    (bundle / name).write_bytes(raw)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"][name] = {"sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)}
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    if sign_with is not None:
        resign(bundle, sign_with)


def edit_manifest(bundle: Path, change, *, sign_with: Path | None = None) -> None:
    """Apply `change(manifest_dict)` to manifest.json, then optionally sign it again."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    change(manifest)
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    if sign_with is not None:
        resign(bundle, sign_with)


def edit_json(bundle: Path, name: str, change, *, sign_with: Path | None = None, raw: str | None = None) -> None:
    """Apply `change(doc)` to one JSON file of the bundle (or write `raw` text) and rewrite its manifest entry."""
    if raw is None:
        doc = json.loads((bundle / name).read_text())
        change(doc)
        raw = json.dumps(doc, indent=2)  # allow_nan: NaN and Infinity written as JSON's common extension
    rewrite(bundle, name, raw, sign_with=sign_with)
