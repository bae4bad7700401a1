"""Batch scoring: chunked parquet scoring (and `creditmodel score`) equals the bundle in process, reason
codes match the HTTP service's, a bad row is named and leaves no output; Spark gives the same scores."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from creditmodel.cli import main
from creditmodel.exceptions import RequestError
from creditmodel.service.batch import score_frame, score_parquet
from creditmodel.service.scoring import reason_codes_from_bundle


@pytest.fixture(scope="module")
def features_file(demo_frame, tmp_path_factory):
    path = tmp_path_factory.mktemp("batch") / "features.parquet"
    demo_frame.to_parquet(path, index=False, row_group_size=1000)
    return path


def test_chunked_scores_equal_the_bundle(bundle, demo_frame, features_file, tmp_path):
    out = tmp_path / "scored.parquet"
    seen = []
    stats = score_parquet(bundle, features_file, out, batch_size=777, progress=lambda d, t: seen.append((d, t)))
    scored = pd.read_parquet(out)
    assert stats["rows"] == len(scored) == len(demo_frame)
    assert seen[-1] == (len(demo_frame), len(demo_frame)) and len(seen) > 3
    expected = bundle.predict_pd(demo_frame)
    assert np.max(np.abs(scored["pd"].to_numpy() - expected)) <= 1e-12
    assert list(scored["grade"]) == list(bundle.grade(expected))
    assert list(scored["loan_id"]) == list(demo_frame["loan_id"])  # order and kept columns
    kept = [c for c in demo_frame.columns if c not in bundle.schema.names]
    assert list(scored.columns) == [*kept, "pd", "grade"]


def test_reason_codes_in_batch_equal_the_shared_function(bundle, demo_frame, features_file, tmp_path):
    out = tmp_path / "scored.parquet"
    part = demo_frame.head(300)
    part.to_parquet(tmp_path / "part.parquet", index=False)
    score_parquet(bundle, tmp_path / "part.parquet", out, batch_size=128, reasons=True, keep=["loan_id"])
    scored = pd.read_parquet(out)
    assert list(scored.columns[:3]) == ["loan_id", "pd", "grade"]
    expected = reason_codes_from_bundle(bundle, part)
    for i, reasons in enumerate(expected):
        assert len(reasons) == 3
        for k, r in enumerate(reasons, start=1):
            assert scored.at[i, f"reason_{k}"] == r.reason
            assert scored.at[i, f"reason_{k}_feature"] == r.feature
            assert scored.at[i, f"reason_{k}_shap"] == pytest.approx(r.contribution, abs=1e-12)
    in_memory = score_frame(bundle, part, reasons=True)
    assert list(in_memory["reason_1"]) == list(scored["reason_1"])


def test_reason_codes_in_chinese_for_the_officers(bundle_dir, bundle, demo_frame, tmp_path, capsys):
    part = demo_frame.head(200)
    part.to_parquet(tmp_path / "part.parquet", index=False)
    out = {}
    for lang in ("en", "zh"):
        out[lang] = tmp_path / f"{lang}.parquet"
        assert main(["score", "--bundle", str(bundle_dir), "--input", str(tmp_path / "part.parquet"),
                     "--out", str(out[lang]), "--keep", "loan_id", "--reasons", "--lang", lang]) == 0
    en, zh = pd.read_parquet(out["en"]), pd.read_parquet(out["zh"])
    expected = reason_codes_from_bundle(bundle, part, lang="zh")
    for i, reasons in enumerate(expected):
        for k, r in enumerate(reasons, start=1):
            assert zh.at[i, f"reason_{k}"] == r.reason
            assert zh.at[i, f"reason_{k}_feature"] == en.at[i, f"reason_{k}_feature"] == r.feature
    texts = zh["reason_1"].dropna()
    assert len(texts) == len(part)
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in t) for t in texts)  # written in Chinese
    assert not set(texts) & set(en["reason_1"])
    np.testing.assert_array_equal(zh["pd"].to_numpy(), en["pd"].to_numpy())


def test_a_bad_row_is_named_and_nothing_is_written(bundle, demo_frame, tmp_path):
    bad = demo_frame.head(500).copy()
    share = next(n for n, b in bundle.schema.bounds.items() if b == (0.0, 1.0))
    bad.loc[321, share] = 4.0
    bad.to_parquet(tmp_path / "bad.parquet", index=False)
    out = tmp_path / "out" / "scored.parquet"
    with pytest.raises(RequestError, match=rf"row 321: feature '{share}'.*outside the allowed range"):
        score_parquet(bundle, tmp_path / "bad.parquet", out, batch_size=100)
    assert not out.exists()
    assert list((tmp_path / "out").iterdir()) == []  # no temporary file left either


def test_a_missing_feature_is_named(bundle, demo_frame, tmp_path):
    name = bundle.schema.names[5]
    demo_frame.head(10).drop(columns=[name]).to_parquet(tmp_path / "x.parquet", index=False)
    with pytest.raises(RequestError, match=f"feature '{name}' is missing"):
        score_parquet(bundle, tmp_path / "x.parquet", tmp_path / "y.parquet")


def test_score_command(bundle_dir, bundle, demo_frame, features_file, tmp_path, capsys):
    out = tmp_path / "cli.parquet"
    assert main(["score", "--bundle", str(bundle_dir), "--input", str(features_file), "--out", str(out),
                 "--keep", "loan_id", "--batch-size", "1000"]) == 0
    assert f"scored {len(demo_frame):,} rows" in capsys.readouterr().out
    scored = pd.read_parquet(out)
    assert list(scored.columns) == ["loan_id", "pd", "grade"]
    assert np.max(np.abs(scored["pd"].to_numpy() - bundle.predict_pd(demo_frame))) <= 1e-12
    assert pq.ParquetFile(out).schema_arrow.field("pd").type == "double"


@pytest.mark.parametrize("args, message", [
    (["--input", "{missing}"], "does not exist"),
    (["--out", "{tmp}/scored.csv"], "expected a .parquet"),
    (["--keep", "no_such_column"], "no_such_column"),
    (["--batch-size", "0"], "at least 1"),
    (["--lang", "zh"], "请加上 --reasons"),  # --lang zh: the error line is Chinese too
])
def test_score_command_errors_are_one_line(bundle_dir, features_file, tmp_path, capsys, args, message):
    argv = {"--bundle": str(bundle_dir), "--input": str(features_file), "--out": str(tmp_path / "o.parquet")}
    for flag, value in zip(args[::2], args[1::2]):
        argv[flag] = value.format(missing=tmp_path / "nope.parquet", tmp=tmp_path)
    assert main(["score", *[x for kv in argv.items() for x in kv]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "o.parquet").exists()


# --- Spark -------------------------------------------------------------------------------------


def _java_ok() -> bool:
    return shutil.which("java") is not None and subprocess.run(["java", "-version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _java_ok(), reason="no working `java` on PATH: Spark needs a Java 17+ runtime")
def test_spark_scores_equal_the_bundle(bundle_dir, bundle, demo_frame):
    pytest.importorskip("pyspark")
    from creditmodel.features.spark import SMALL_DATA_CONF, get_spark
    from creditmodel.service.batch import spark_score

    spark = get_spark("local[2]", shuffle_partitions=2, show_progress=False, driver_memory="1g",
                      log_level="ERROR", **SMALL_DATA_CONF)
    try:
        part = demo_frame.head(600)
        cols = ["loan_id", *bundle.schema.names]
        sdf = spark.createDataFrame(part[cols]).repartition(3)
        scored = spark_score(sdf, bundle_dir, reasons=True, keep=["loan_id"]).toPandas()
    finally:
        spark.stop()
    scored = scored.set_index("loan_id").loc[part["loan_id"]]
    expected = bundle.predict_pd(part)
    assert np.max(np.abs(scored["pd"].to_numpy() - expected)) <= 1e-12
    assert list(scored["grade"]) == list(bundle.grade(expected))
    batch = score_frame(bundle, part, reasons=True)
    assert list(scored["reason_1"]) == list(batch["reason_1"])
    assert list(scored["reason_3_feature"]) == list(batch["reason_3_feature"])


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_reason_columns_equal_the_reasons_row_by_row(bundle, demo_frame, lang):
    """The column-at-a-time reasons of batch scoring and monitoring are the frame the row-by-row reasons
    give, text for text, including nulls, categories, rows with fewer adverse factors and n past them."""
    from creditmodel.service.scoring import FastScorer, reasons_frame

    scorer = FastScorer(bundle, num_threads=0, self_check=False)
    frame = demo_frame.head(1500).copy()
    numeric = [n for n in bundle.schema.names if n not in bundle.schema.categories and n not in bundle.schema.required]
    frame.loc[frame.index[::7], numeric[:20]] = np.nan  # missing values behind reasons
    X = bundle.schema.encode(frame)
    every = len(bundle.schema.names)
    for n in (1, 3, every):
        got = scorer.reason_columns(X, n, lang)
        expected = reasons_frame(scorer.reasons(X, n, lang), n)
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got[f"reason_{every}"].isna().all() and got["reason_3"].notna().any()  # rows with fewer adverse factors
    empty = scorer.reason_columns(X[:0], 3, lang)
    pd.testing.assert_frame_equal(empty, reasons_frame([], 3), check_exact=True)
    # another language's texts of the same reasons beside them (monitoring's reason_<k>_zh)
    other = "zh" if lang == "en" else "en"
    both = scorer.reason_columns(X, 3, lang, also=(other,))
    pd.testing.assert_frame_equal(both[list(reasons_frame([], 3).columns)], scorer.reason_columns(X, 3, lang))
    for k in (1, 2, 3):
        assert list(both[f"reason_{k}_{other}"]) == list(reasons_frame(scorer.reasons(X, 3, other), 3)[f"reason_{k}"])


def test_reason_texts_are_written_per_value_as_one_value_is():
    """Each distinct value's text is written once and given to every row holding it; distinct means the
    same bits, so -0.0 keeps its own text ("-0.00") as one row at a time writes it."""
    from types import SimpleNamespace

    from creditmodel.features.reasons import reason_text
    from creditmodel.service.scoring import FastScorer

    scorer = FastScorer.__new__(FastScorer)
    scorer.names, scorer._categories, scorer._own_reasons = ("f_float", "f_cat"), {1: ("a", "b_c")}, {}
    scorer._labels, scorer._currency = {}, None
    scorer.bundle = SimpleNamespace(schema=SimpleNamespace(reason=lambda name, lang: f"own {name}"))
    values = np.array([0.0, -0.0, np.nan, 1.5, 0.0, -0.0, 1.5, np.nan])
    assert list(scorer._texts(0, values, "en")) == [reason_text("f_float", None if np.isnan(v) else float(v), "en",
                                                               reason="own f_float") for v in values]
    assert scorer._texts(0, values, "en")[1].endswith("-0.00")
    codes = np.array([1.0, np.nan, 0.0, 1.0])
    assert list(scorer._texts(1, codes, "zh")) == [reason_text("f_cat", v, "zh", reason="own f_cat")
                                                  for v in ("b_c", None, "a", "b_c")]
