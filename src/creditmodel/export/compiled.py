"""Compiled trees: the bundle's model.txt as native code, several times faster than Booster.predict.

The trees are compiled with lleaves' LightGBM code generator (its parser and LLVM IR emitter) and
LLVM's optimiser through llvmlite, into one object file, ``model_compiled.o``, that sits beside
model.txt. It is optional: without it, or without lleaves on the scoring machine, every score comes
from LightGBM as before.

Why it is trusted, and when it is not:

* it is native code, run in-process; so it is listed in manifest.json like every other file (size,
  SHA-256) and loaded only from a bundle signed by a trusted key. A checksum beside it, outside the
  signature, would prove nothing: whoever can replace the file can rewrite that checksum too.
  Compiling therefore signs the bundle again (`creditmodel bundle compile --signing-key`), after
  verifying its signature; a tampered file fails its checksum and the bundle is refused;
* the object is verified in memory and handed to LLVM from those bytes (never read again from disk);
* it was built for one CPU family: a machine lacking one of the instruction-set features it was
  compiled with (or of another architecture) scores with LightGBM instead (one logged line);
  ``--portable`` compiles for the baseline x86-64 instruction set, runnable everywhere but slower;
* it must score as LightGBM does: at compile time and again at every load, its PDs (after the
  bundle's calibration) are compared with LightGBM's on the parity rows (:func:`parity_rows`, rows
  that put every feature on, just below and just above each split threshold of the model, anywhere
  in its training range, one ulp off a round amount, missing, and every category) and on the
  out-of-time rows when the export has them; a difference above 1e-9 refuses it: compiling fails,
  loading falls back to LightGBM with one logged line.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import hashlib
import importlib.metadata
import logging
import math
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from creditmodel.exceptions import BundleError, ConfigError
from creditmodel.texts import Phrase, said, text

log = logging.getLogger(__name__)

COMPILED_FILE = "model_compiled.o"
COMPILER = "lleaves"
ENTRY = "forest_root"
PARITY_TOLERANCE = 1e-9
PARITY_ROWS = 2000
PORTABLE_CPU = "x86-64"
_ROWS_PER_THREAD = 2048  # below this a call runs in one thread (thread start-up costs more)


def unavailable() -> str | None:
    """Why trees cannot be compiled or loaded here (lleaves or llvmlite missing or unusable), or None."""
    why = _unavailable()
    return None if why is None else text(why.id, "en", **why.fields)


def _unavailable() -> Phrase | None:
    """unavailable(), as a text of the message catalogue (said in the language of the message it is part of)."""
    try:
        import llvmlite.binding as llvm
        from lleaves.compiler.ast import parse_to_ast  # noqa: F401
        from lleaves.compiler.codegen import gen_forest  # noqa: F401
    except ImportError as exc:
        package = (exc.name or "lleaves").split(".")[0]
        return Phrase("error.compiled.not_installed", {"package": package})
    if not hasattr(llvm, "create_pass_builder"):
        return Phrase("error.compiled.old_llvmlite", {"version": _version("llvmlite")})
    return None


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _host() -> dict[str, str]:
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    try:
        features = llvm.get_host_cpu_features().flatten()
    except RuntimeError:  # LLVM cannot tell on some hosts
        features = ""
    return {"triple": llvm.get_process_triple(), "cpu": llvm.get_host_cpu_name(), "features": features}


def _target_machine(cpu: str, features: str) -> Any:
    import llvmlite.binding as llvm

    target = llvm.Target.from_triple(llvm.get_process_triple())
    return target.create_target_machine(cpu=cpu, features=features, reloc="pic", codemodel="large")


def compile_model(model_text: str, *, portable: bool = False) -> tuple[bytes, dict[str, Any]]:
    """Compile a LightGBM text model to an object file returning raw margins; (bytes, its description).

    Raises ConfigError when lleaves/llvmlite are not usable here."""
    reason = _unavailable()
    if reason:
        raise ConfigError.of("error.compiled.cannot_compile", reason=reason)
    import llvmlite.binding as llvm
    import llvmlite.ir
    from lleaves.compiler.ast import parse_to_ast
    from lleaves.compiler.codegen import gen_forest

    host = _host()
    cpu, features = (PORTABLE_CPU, "") if portable else (host["cpu"], host["features"])
    with tempfile.TemporaryDirectory(prefix="creditmodel-compile-") as tmp:
        path = Path(tmp) / "model.txt"  # lleaves' parser reads a file
        path.write_text(model_text, encoding="utf-8")
        forest = parse_to_ast(str(path))
    forest.raw_score = True  # margins: the bundle's calibrator maps them to PDs
    ir = llvmlite.ir.Module(name="forest")
    gen_forest(forest, ir, 34, ENTRY, True)  # lleaves' defaults: blocks of 34 trees, float64
    ir.triple = host["triple"]
    module = llvm.parse_assembly(str(ir))
    module.verify()
    machine = _target_machine(cpu, features)
    builder = llvm.create_pass_builder(machine, llvm.create_pipeline_tuning_options(speed_level=3))
    builder.getModulePassManager().run(module, builder)
    obj = bytes(machine.emit_object(module))
    info = {"compiler": COMPILER, "lleaves_version": _version("lleaves"), "llvmlite_version": _version("llvmlite"),
            "triple": host["triple"], "cpu": cpu, "features": features, "portable": portable, "entry": ENTRY,
            "precision": "float64"}
    return obj, info


def _missing_features(required: str, host: str) -> list[str]:
    need = {f[1:] for f in required.split(",") if f.startswith("+")}
    have = {f[1:] for f in host.split(",") if f.startswith("+")}
    return sorted(need - have)


class CompiledForest:
    """The compiled trees of one object file: ``raw_score(X)`` is Booster.predict(X, raw_score=True)."""

    def __init__(self, obj: bytes, info: dict[str, Any], n_features: int):
        import llvmlite.binding as llvm

        host = _host()
        self.info = dict(info)
        self.n_features = n_features
        machine = _target_machine(host["cpu"], host["features"])
        self._engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), machine)
        self._engine.add_object_file(llvm.ObjectFileRef.from_data(obj))  # the verified bytes, not the file
        self._engine.finalize_object()
        address = self._engine.get_function_address(info.get("entry", ENTRY))
        if not address:
            raise BundleError.of("error.compiled.no_entry", file=COMPILED_FILE, entry=info.get("entry", ENTRY))
        ptr = ctypes.POINTER(ctypes.c_double)
        self._fn = ctypes.CFUNCTYPE(None, ptr, ptr, ctypes.c_int32, ctypes.c_int32)(address)  # releases the GIL

    def raw_score(self, X: np.ndarray, num_threads: int = 0) -> np.ndarray:
        """Raw margins of an encoded float matrix (n, n_features); num_threads 0 = all cores."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected a matrix of {self.n_features} feature columns, got shape {X.shape}")
        n = len(X)
        if n >= 2**31 - 1:
            raise ValueError(f"{n} rows in one call; score at most 2**31 - 2 rows at a time")
        out = np.zeros(n, dtype=np.float64)
        if n == 0:
            return out
        dptr = ctypes.POINTER(ctypes.c_double)
        data, result = X.ctypes.data_as(dptr), out.ctypes.data_as(dptr)
        threads = min(num_threads or (os.cpu_count() or 1), math.ceil(n / _ROWS_PER_THREAD))
        if threads <= 1:
            self._fn(data, result, 0, n)
            return out
        step = math.ceil(n / threads)
        with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
            for f in [pool.submit(self._fn, data, result, i, min(i + step, n)) for i in range(0, n, step)]:
                f.result()
        return out


# --- parity ---------------------------------------------------------------------------------------


def _split_values(booster: Any) -> dict[int, set[float]]:
    """Per feature index, the values that decide its splits: each threshold, one ulp either side, and 0."""
    values: dict[int, set[float]] = {}

    def walk(node: dict[str, Any]) -> None:
        if "split_feature" not in node:
            return
        vals = values.setdefault(int(node["split_feature"]), {0.0})
        t = node["threshold"]
        if node.get("decision_type") == "==":
            vals.update(float(c) for c in str(t).split("||"))
        else:
            t = float(t)
            vals.update((t, float(np.nextafter(t, -np.inf)), float(np.nextafter(t, np.inf))))
        walk(node["left_child"])
        walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    return values


def parity_rows(booster: Any, schema: Any, n: int = PARITY_ROWS, seed: int = 0) -> np.ndarray:
    """Encoded rows that exercise every split of the model, seeded. A numeric feature is, with equal
    chance, (a) one of its split thresholds or one ulp either side of one (or zero, or missing), (b) a
    value drawn uniformly over its training range (LightGBM's feature_infos), or (c) such a value
    rounded to cents and moved one ulp down or up, as sums of money come out of a database (a defect
    of tl2cgen 1.0.0 shows only on such values); a categorical feature is one of its categories'
    codes or missing. Row 0 is all missing."""
    rng = np.random.default_rng(seed)
    names = list(schema.names)
    split = _split_values(booster)
    infos = booster.dump_model().get("feature_infos", {})
    X = np.full((n, len(names)), np.nan)
    for j, name in enumerate(names):
        cats = schema.categories.get(name)
        pool = np.array(sorted(split.get(j, {0.0}) if cats is None else set(range(len(cats)))), dtype=np.float64)
        pool = np.append(pool, np.nan)
        X[1:, j] = pool[rng.integers(0, len(pool), n - 1)]
        info = infos.get(name) or {}
        lo, hi = info.get("min_value"), info.get("max_value")
        if cats is None and isinstance(lo, (int, float)) and isinstance(hi, (int, float)) \
                and math.isfinite(lo) and math.isfinite(hi) and lo <= hi:
            kind = rng.integers(0, 3, n - 1)
            spread = rng.uniform(lo, hi, n - 1)
            cents = np.nextafter(np.round(spread, 2), np.where(rng.random(n - 1) < 0.5, -np.inf, np.inf))
            X[1:, j] = np.where(kind == 1, spread, np.where(kind == 2, cents, X[1:, j]))
    return X


def parity_gap(forest: CompiledForest, booster: Any, calibrator: Any, rows: Iterable[np.ndarray]) -> dict[str, float]:
    """Largest |difference| of raw margins and of calibrated PDs between the compiled trees and LightGBM."""
    raw = pd_ = 0.0
    count = 0
    for X in rows:
        if not len(X):
            continue
        ours = forest.raw_score(X, num_threads=1)
        ref = np.asarray(booster.predict(X, raw_score=True, num_threads=1), dtype=np.float64)
        raw = max(raw, float(np.max(np.abs(ours - ref))))
        pd_ = max(pd_, float(np.max(np.abs(calibrator.predict(ours) - calibrator.predict(ref)))))
        count += len(X)
    return {"rows": count, "max_abs_raw_diff": raw, "max_abs_pd_diff": pd_}


# --- in a bundle ----------------------------------------------------------------------------------


class Note(str):
    """One line why a bundle's model_compiled.o is not used: the English, as a str (logged, and kept as the
    bundle's ``compiled_note``); ``phrase``, the same as a text of the catalogue, for a message in any
    language (:func:`note_phrase`)."""

    phrase: Phrase


def _note(phrase: Phrase) -> Note:
    note = Note(text(phrase.id, "en", **phrase.fields))
    note.phrase = phrase
    return note


def note_phrase(note: str | None) -> Phrase | str | None:
    """A bundle's ``compiled_note`` as a field of a catalogue text (said in that text's language); a plain
    str (or None) as it is."""
    return getattr(note, "phrase", note)


@dataclass(frozen=True)
class Loaded:
    """What became of a bundle's compiled trees at load: the forest, or None and why not."""

    forest: CompiledForest | None
    note: str | None


def load_compiled(where: str, obj: bytes, info: Any, *, model_sha256: str, signed: bool, booster: Any,
                  calibrator: Any, schema: Any) -> Loaded:
    """The bundle's compiled trees if they may and do score as LightGBM; else None and one line why.

    `obj` was checked against the manifest already; `info` is the manifest's "compiled" section."""
    def refused(why: Phrase) -> Loaded:
        note = _note(Phrase("error.compiled.not_used", {"where": where, "file": COMPILED_FILE, "why": why}))
        log.warning(note)
        return Loaded(None, note)

    if not isinstance(info, dict) or info.get("compiler") != COMPILER or not isinstance(info.get("features"), str):
        raise BundleError.of("error.compiled.manifest_section", where=where, file=COMPILED_FILE, compiler=COMPILER)
    if info.get("model_sha256") != model_sha256:
        raise BundleError.of("error.compiled.other_model", where=where, sha=str(info.get("model_sha256"))[:12],
                             model_sha=model_sha256[:12])
    if not signed:
        return refused(Phrase("error.compiled.unsigned_bundle"))
    reason = _unavailable()
    if reason:
        return refused(reason)
    host = _host()
    if info.get("triple") != host["triple"]:
        return refused(Phrase("error.compiled.other_triple", {"compiled": info.get("triple"), "host": host["triple"]}))
    missing = _missing_features(info["features"], host["features"])
    if missing:
        return refused(Phrase("error.compiled.cpu_lacks", {
            "cpu": info.get("cpu"), "host": host["cpu"],
            "missing": f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"}))
    forest = CompiledForest(obj, info, booster.num_feature())
    gap = parity_gap(forest, booster, calibrator, [parity_rows(booster, schema)])
    if not gap["max_abs_pd_diff"] <= PARITY_TOLERANCE:
        return refused(Phrase("error.compiled.parity_gap", {"diff": gap["max_abs_pd_diff"], "tolerance": PARITY_TOLERANCE,
                                                             "rows": gap["rows"]}))
    return Loaded(forest, None)


def add_compiled(directory: Path, bundle: Any, *, portable: bool = False, parity_frame: Any = None) -> dict[str, Any]:
    """Compile the trees of the bundle being written in `directory` (loaded as `bundle`), check them
    against LightGBM, write model_compiled.o and list it in manifest.json (which must be signed next).

    Parity: the parity rows and `parity_frame`'s feature rows (a frame with a `split` column gives its
    "oot" rows), 1e-9 in PD, else BundleError. Returns the manifest's "compiled" section."""
    import json

    model_raw = (directory / "model.txt").read_bytes()
    model_sha = hashlib.sha256(model_raw).hexdigest()
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    if not model_sha == manifest["files"]["model.txt"]["sha256"] == bundle.manifest["files"]["model.txt"]["sha256"]:
        raise BundleError.of("error.compiled.model_changed", path=bundle.path)
    extra = []
    if parity_frame is not None:
        if "split" in parity_frame.columns and (parity_frame["split"] == "oot").any():
            parity_frame = parity_frame[parity_frame["split"] == "oot"]
        bundle.check_request(parity_frame)
        extra.append(np.asarray(bundle.schema.encode(parity_frame), dtype=np.float64))
    obj, info = compile_model(model_raw.decode("utf-8"), portable=portable)
    forest = CompiledForest(obj, info, bundle.booster.num_feature())
    gap = parity_gap(forest, bundle.booster, bundle.calibrator, [parity_rows(bundle.booster, bundle.schema), *extra])
    if not gap["max_abs_pd_diff"] <= PARITY_TOLERANCE:
        raise BundleError.of("error.compiled.parity_failed", path=bundle.path, diff=gap["max_abs_pd_diff"],
                             rows=gap["rows"], tolerance=PARITY_TOLERANCE)
    info.update(model_sha256=model_sha, parity=gap)
    (directory / COMPILED_FILE).write_bytes(obj)
    manifest["files"][COMPILED_FILE] = {"sha256": hashlib.sha256(obj).hexdigest(), "bytes": len(obj)}
    manifest["compiled"] = info
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False) + "\n",
                                             encoding="utf-8")
    return info


def compile_bundle(bundle_dir: str | Path, out: str | Path | None = None, *, signing_key: Any = None,
                   trusted_keys: Any = None, allow_unsigned: bool = False, portable: bool = False,
                   parity_frame: Any = None, force: bool = False) -> dict[str, Any]:
    """Add compiled trees to a verified bundle, in place (`out` None) or as a new bundle `out`.

    The bundle is verified first (signature, checksums); its trees are compiled and must score as
    LightGBM (:func:`add_compiled`); the manifest then lists model_compiled.o and is signed with
    `signing_key` (required: native code runs only from a signed bundle). Written all at once
    (`creditmodel.outputs`). Returns the manifest's "compiled" section."""
    import json
    import shutil

    from creditmodel.export.bundle import load_bundle
    from creditmodel.export.signing import load_private_key, sign_bundle
    from creditmodel.outputs import Output, check_output

    bundle_dir = Path(bundle_dir)
    target = Path(out) if out is not None else bundle_dir
    inputs = {"--bundle": bundle_dir} if out is not None else None
    label = "--out" if out is not None else "--bundle"
    try:  # before any work: may the output be written there?
        check_output(target, kind="dir", inputs=inputs, force=force, label=label)
    except ConfigError as exc:
        if out is not None:
            raise exc from None
        raise ConfigError.of("error.compiled.write_elsewhere", error=said(exc)) from None
    bundle = load_bundle(bundle_dir, trusted_keys=trusted_keys, allow_unsigned=allow_unsigned)
    key = load_private_key(Path(signing_key)) if isinstance(signing_key, (str, os.PathLike)) else signing_key
    if key is None:
        raise ConfigError.of("error.compiled.needs_key", path=bundle_dir, file=COMPILED_FILE)
    reason = _unavailable()
    if reason:
        raise ConfigError.of("error.compiled.cannot_compile", reason=reason)
    with Output(target, kind="dir", command="bundle compile", inputs=inputs, force=force, label=label) as output:
        for name in [*bundle.manifest["files"], "manifest.json"]:
            shutil.copyfile(bundle_dir / name, output.tmp / name)
        if json.loads((output.tmp / "manifest.json").read_text(encoding="utf-8")) != bundle.manifest:
            raise BundleError.of("error.compiled.manifest_changed", path=bundle_dir)
        info = add_compiled(output.tmp, bundle, portable=portable, parity_frame=parity_frame)
        sign_bundle(output.tmp, key)
        check = load_bundle(output.tmp, trusted_keys=[key.public_key()])
        if check.compiled is None:
            raise BundleError.of("error.compiled.not_loaded", path=bundle_dir,
                                 note=note_phrase(check.compiled_note))
    return info
