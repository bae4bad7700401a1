"""Batch scoring from a bundle: a parquet file (or directory) of millions of rows, and Spark.

:func:`score_frame` scores one pandas chunk: ``bundle.predict_pd`` (so ``check_request`` judges
every row), grades, and optionally the top-3 reason codes (:mod:`creditmodel.service.scoring`).
:func:`score_parquet` streams a parquet input in chunks (``pyarrow.dataset``, ``batch_size`` rows
at a time, only the columns needed), writes each scored chunk to a temporary file beside the
output and renames it into place only when every row scored: a failed run leaves no output.
:func:`spark_score` does the same on a Spark DataFrame with ``mapInPandas``: the bundle's files
travel with the task (a few hundred KB), each executor verifies and loads them once per Python
worker, so no shared file system is needed.

Output columns: the kept input columns (default: every column that is not a model feature), then
``pd`` (double), ``grade`` (string) and, with reasons, ``reason_<k>`` (text),
``reason_<k>_feature`` and ``reason_<k>_shap`` (TreeSHAP in log-odds) for k = 1..3.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from creditmodel.exceptions import ConfigError, DataContractError, RequestError
from creditmodel.outputs import Output
from creditmodel.service.scoring import N_REASONS, FastScorer
from creditmodel.texts import said

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame as SparkDataFrame

DEFAULT_BATCH_ROWS = 100_000


def _first_bad_row(bundle: Any, frame: pd.DataFrame) -> int:
    """Position of the first row bundle.check_request refuses (bisection; the whole frame is refused)."""
    lo, hi = 0, len(frame)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            bundle.check_request(frame.iloc[lo:mid])
        except RequestError:
            hi = mid
        else:
            lo = mid
    return lo


def output_columns(reasons: bool, n: int = N_REASONS) -> list[tuple[str, pa.DataType]]:
    cols = [("pd", pa.float64()), ("grade", pa.string())]
    if reasons:
        for k in range(1, n + 1):
            cols += [(f"reason_{k}", pa.string()), (f"reason_{k}_feature", pa.string()),
                     (f"reason_{k}_shap", pa.float64())]
    return cols


def encoded_if_clean(bundle: Any, frame: pd.DataFrame) -> np.ndarray | None:
    """``bundle.schema.encode(frame)`` when a vectorised screen finds nothing ``bundle.check_request``
    would refuse; None when a column has an unusual type (object, bool) or the screen flags a value
    (a null where none is allowed, an unknown category, an infinite or out-of-range number), so that
    the bundle judges the frame itself, as before. The screen checks what check_request checks, on
    the encoded matrix at once instead of column by column (a missing feature raises here, as there).
    """
    schema = bundle.schema
    bounds, required, cats = getattr(schema, "bounds", None), getattr(schema, "required", None), schema.categories
    if bounds is None or required is None:
        return None
    from creditmodel.features.matrix import ABSURD

    schema.check_columns(frame.columns)
    names = list(schema.names)
    numeric = [j for j, n in enumerate(names) if n not in cats]
    if any(frame[names[j]].dtype.kind not in "fiu" for j in numeric):
        return None
    N = frame[[names[j] for j in numeric]].to_numpy(dtype=np.float64, na_value=np.nan)  # one block, C order
    lo = np.array([bounds.get(names[j], (-ABSURD, ABSURD))[0] for j in numeric], dtype=np.float64)
    hi = np.array([bounds.get(names[j], (-ABSURD, ABSURD))[1] for j in numeric], dtype=np.float64)
    null = np.isnan(N).any(axis=0)
    with np.errstate(invalid="ignore"):
        if any(null[k] and names[j] in required for k, j in enumerate(numeric)) or np.isinf(N).any() \
                or ((N < lo) | (N > hi)).any():
            return None
    X = np.empty((len(frame), len(names)), dtype=np.float64)
    k = 0
    while k < len(numeric):  # copy runs of adjacent numeric features as slices (a scatter is much slower)
        end = k
        while end + 1 < len(numeric) and numeric[end + 1] == numeric[end] + 1:
            end += 1
        X[:, numeric[k]:numeric[end] + 1] = N[:, k:end + 1]
        k = end + 1
    for j, name in enumerate(names):
        if name in cats:
            col = frame[name]
            codes = pd.Categorical(col, categories=list(cats[name])).codes  # -1: null or not a category
            present = col.notna().to_numpy()
            if ((codes < 0) & present).any() or (name in required and not present.all()):
                return None
            X[:, j] = np.where(codes < 0, np.nan, codes)
    return X


def screened_pds(bundle: Any, frame: pd.DataFrame, num_threads: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """PDs of ``frame`` as ``bundle.predict_pd`` gives them, and the encoded matrix when the vectorised screen
    (:func:`encoded_if_clean`) took the frame; None when the bundle's own check judged it instead (which
    raises RequestError naming the first bad value)."""
    X = encoded_if_clean(bundle, frame) if hasattr(bundle, "margin") else None
    if X is not None:
        return np.asarray(bundle.calibrator.predict(bundle.margin(X, num_threads)), dtype=np.float64), X
    return np.asarray(bundle.predict_pd(frame), dtype=np.float64), None


def score_frame(bundle: Any, frame: pd.DataFrame, *, reasons: bool = False, keep: Sequence[str] = (),
                num_threads: int = 0, row_offset: int = 0, lang: str = "en") -> pd.DataFrame:
    """Kept columns, PD, grade (and reason codes, written in `lang`) of each row of `frame`; index reset.

    A row the bundle refuses raises RequestError naming its position (counted from `row_offset`).
    Clean frames of plain numeric and text columns take a vectorised screen (:func:`encoded_if_clean`)
    and the bundle's margin (its compiled trees when it uses them); anything else goes through
    ``bundle.predict_pd``, whose check names the first bad value.
    """
    try:
        pd_, X = screened_pds(bundle, frame, num_threads)
    except RequestError:
        i = _first_bad_row(bundle, frame)
        try:
            bundle.check_request(frame.iloc[i:i + 1])
        except RequestError as row_exc:
            exc = row_exc
        raise RequestError.of("error.batch.row", row=row_offset + i, msg=said(exc)) from None
    out = pd.DataFrame({c: frame[c].to_numpy() for c in keep})
    out["pd"] = pd_
    out["grade"] = np.asarray(bundle.grade(pd_), dtype=object)
    if reasons:
        scorer = FastScorer(bundle, num_threads=num_threads, self_check=False)
        found = scorer.reason_columns(X if X is not None else bundle.schema.encode(frame), N_REASONS, lang)
        out = pd.concat([out, found], axis=1)
    return out


def score_parquet(
    bundle: Any,
    input_path: str | Path,
    out_path: str | Path,
    *,
    batch_size: int = DEFAULT_BATCH_ROWS,
    reasons: bool = False,
    keep: Sequence[str] | None = None,
    num_threads: int = 0,
    progress: Callable[[int, int], None] | None = None,
    force: bool = False,
    lang: str = "en",
) -> dict[str, Any]:
    """Score a parquet file or directory in chunks into `out_path` (.parquet), atomically; reason codes
    (`reasons`) are written in `lang` ("en" or "zh").

    `out_path` must be new or an earlier output of creditmodel (`creditmodel.outputs`; `force` also
    replaces one changed since); it may not be, contain or lie inside the input or the bundle.

    Returns {"rows", "seconds", "rows_per_s", "out"}.
    """
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    input_path, out_path = Path(input_path), Path(out_path)
    if not input_path.exists():
        raise DataContractError.of("error.batch.no_input", path=input_path)
    if out_path.suffix != ".parquet":
        raise ConfigError.of("error.batch.out_not_parquet", path=out_path)
    if batch_size < 1:
        raise ConfigError.of("error.batch.batch_size", n=batch_size)
    try:
        dataset = ds.dataset(str(input_path), format="parquet")
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataContractError.of("error.batch.not_parquet", path=input_path, detail=str(exc)) from None
    names = list(bundle.schema.names)
    columns = dataset.schema.names
    bundle.schema.check_columns(columns, where=f"input {input_path}")
    features = set(names)
    keep = [c for c in columns if c not in features] if keep is None else list(keep)
    unknown = [c for c in keep if c not in columns]
    if unknown:
        raise ConfigError.of("error.batch.keep_unknown", column=unknown[0], path=input_path)
    clash = [c for c in keep if c in {name for name, _ in output_columns(reasons)}]
    if clash:
        raise ConfigError.of("error.batch.keep_clash", column=clash[0])
    schema = pa.schema([dataset.schema.field(c) for c in keep] + [pa.field(n, t) for n, t in output_columns(reasons)])
    total = dataset.count_rows()
    output = Output(out_path, kind="file", command="score", force=force,
                    inputs={"--input": input_path, "--bundle": getattr(bundle, "path", None)})
    tmp = str(output.tmp)
    start = time.perf_counter()
    done = 0
    read = list(dict.fromkeys([*keep, *names]))
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            for batch in dataset.to_batches(columns=read, batch_size=batch_size):
                if batch.num_rows == 0:
                    continue
                frame = batch.select(names).to_pandas()
                scored = score_frame(bundle, frame, reasons=reasons, num_threads=num_threads, row_offset=done,
                                     lang=lang)
                arrays = [batch.column(c) for c in keep]
                arrays += [pa.array(scored[n].to_numpy(), type=t, from_pandas=True) for n, t in output_columns(reasons)]
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
                done += batch.num_rows
                if progress is not None:
                    progress(done, total)
        output.commit()
    except BaseException:
        output.discard()
        raise
    seconds = time.perf_counter() - start
    return {"rows": done, "seconds": seconds, "rows_per_s": done / seconds if seconds > 0 else float("inf"),
            "out": str(out_path)}


# --- Spark ---------------------------------------------------------------------------------------

_EXECUTOR_BUNDLES: dict[str, Any] = {}


def _bundle_files(bundle_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(bundle_dir.iterdir()) if p.is_file()}


def _executor_bundle(files: dict[str, bytes], trusted: Sequence[bytes] = (), allow_unsigned: bool = False) -> Any:
    """The bundle of `files`, verified and loaded once per Python worker (cached by its manifest).

    `trusted`: the raw bytes of the public keys the driver trusted (executors need no key files).
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from creditmodel.export.bundle import load_bundle

    key = hashlib.sha256(b"".join([files["manifest.json"], files.get("manifest.sig", b""), *trusted,
                                   bytes([allow_unsigned])])).hexdigest()
    bundle = _EXECUTOR_BUNDLES.get(key)
    if bundle is None:
        with tempfile.TemporaryDirectory(prefix="creditmodel-bundle-") as tmp:
            for name, data in files.items():
                (Path(tmp) / name).write_bytes(data)
            bundle = load_bundle(tmp, trusted_keys=[Ed25519PublicKey.from_public_bytes(k) for k in trusted],
                                 allow_unsigned=allow_unsigned)  # signature and checksums verified here too
        _EXECUTOR_BUNDLES[key] = bundle
    return bundle


def spark_score(spark_df: SparkDataFrame, bundle_dir: str | Path, *, reasons: bool = False,
                keep: Sequence[str] | None = None, num_threads: int = 1, trusted_keys: Sequence[Any] | None = None,
                allow_unsigned: bool = False) -> SparkDataFrame:
    """Score a Spark DataFrame holding the bundle's features with ``mapInPandas`` (lazy, nothing collected).

    `keep`: input columns to carry through (default: every column that is not a model feature).
    `num_threads`: LightGBM threads per Python worker (Spark already runs one worker per core).
    `trusted_keys`, `allow_unsigned`: as for load_bundle, on the driver and on every executor.
    """
    from cryptography.hazmat.primitives import serialization
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    from creditmodel.export.bundle import load_bundle
    from creditmodel.export.signing import resolve_trusted_keys

    bundle_dir = Path(bundle_dir)
    trusted = resolve_trusted_keys(trusted_keys)
    raw_keys = [k.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) for k in trusted.values()]
    bundle = load_bundle(bundle_dir, trusted_keys=trusted.values(),
                         allow_unsigned=allow_unsigned)  # fail on the driver, before any task starts
    files = _bundle_files(bundle_dir)
    names = list(bundle.schema.names)
    columns = spark_df.columns
    bundle.schema.check_columns(columns, where="Spark DataFrame")
    features = set(names)
    keep = [c for c in columns if c not in features] if keep is None else list(keep)
    spark_types = {"double": DoubleType(), "string": StringType()}
    out_fields = [spark_df.schema[c] for c in keep]
    out_fields += [StructField(n, spark_types["double" if pa.types.is_floating(t) else "string"], True)
                   for n, t in output_columns(reasons)]
    out_schema = StructType(out_fields)
    keep_ = list(keep)

    def score_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        b = _executor_bundle(files, raw_keys, allow_unsigned)
        for pdf in batches:
            if len(pdf):
                yield score_frame(b, pdf, reasons=reasons, keep=keep_, num_threads=num_threads)

    return spark_df.select(*dict.fromkeys([*keep_, *names])).mapInPandas(score_batches, out_schema)
