"""Every bundle defect is one line and exit 2, never a crash: a truncated or corrupted model.txt (even with its
hash rewritten and the manifest signed again by a trusted key), malformed manifest entries, and NaN, infinite or
out-of-range values in the JSON files. LightGBM's parser never sees a model text that was not checked whole.
"""

import re
import subprocess
import sys

import pandas as pd
import pytest

from creditmodel.cli import main
from creditmodel.exceptions import BundleError
from creditmodel.export.bundle import load_bundle
from creditmodel.export.model_text import check_model_text

from .bundle_tools import edit_json, edit_manifest, resign, rewrite


@pytest.fixture(scope="module")
def model_text(demo_run):
    return (demo_run["result"].bundle_dir / "model.txt").read_text()


@pytest.fixture(scope="module")
def features_file(demo_run, tmp_path_factory):
    frame = pd.read_parquet(demo_run["result"].features_path)
    path = tmp_path_factory.mktemp("features") / "oot.parquet"
    frame[frame["split"] == "oot"].head(200).to_parquet(path)
    return path


def _replace_first(text: str, prefix: str, new_line: str) -> str:
    lines = text.split("\n")
    i = next(k for k, ln in enumerate(lines) if ln.startswith(prefix))
    lines[i] = new_line
    return "\n".join(lines)


def _resized(text: str) -> str:
    """`text` with tree_sizes recomputed, as LightGBM would write it after an edit inside a tree."""
    start, end = text.index("\nTree=") + 1, text.index("\nend of trees")
    blocks = re.split(r"(?m)^(?=Tree=)", text[start:end])[1:]
    return _replace_first(text, "tree_sizes=", "tree_sizes=" + " ".join(str(len(b)) for b in blocks))


def _first_value_of(text: str, prefix: str, value: str) -> str:
    """The first `prefix` line's first value replaced (tree sizes kept right, so the field check is reached)."""
    line = next(ln for ln in text.split("\n") if ln.startswith(prefix))
    tokens = line[len(prefix):].split(" ")
    edited = _replace_first(text, prefix, prefix + " ".join([value, *tokens[1:]]))
    return edited if prefix == "tree_sizes=" else _resized(edited)


MODEL_DEFECTS = {
    "truncated at 40%": (lambda t: t[:int(len(t) * 0.4)], "truncated"),
    "truncated in the header": (lambda t: t[:300], "no 'Tree=' block"),
    "truncated after the trees": (lambda t: t[:t.index("end of trees") + 5], "expected 'end of trees'"),
    "empty": (lambda t: "", "no 'Tree=' block"),
    "tree size off by one": (lambda t: _first_value_of(t, "tree_sizes=", str(int(t.split("tree_sizes=")[1].split()[0]) + 1)),
                             "tree 0: block does not end with a blank line .tree_sizes does not match"),
    "child out of range": (lambda t: _first_value_of(t, "left_child=", "99"), "field left_child: value '99'"),
    "leaf value NaN": (lambda t: _first_value_of(t, "leaf_value=", "nan"), "field leaf_value: value 'nan'"),
    "leaf value not a number": (lambda t: _first_value_of(t, "leaf_value=", "1.2.3"), "is not a number"),
    "split feature unknown": (lambda t: _first_value_of(t, "split_feature=", "9999"), "field split_feature"),
    "line without =": (lambda t: t.replace("\nshrinkage=", "\nshrinkage", 1), "tree 0"),
    "not a binary model": (lambda t: t.replace("num_class=1", "num_class=3", 1), "num_class=3, expected 1"),
    "pandas categories": (lambda t: t.replace("pandas_categorical:null", 'pandas_categorical:[["a"]]'),
                          "after 'end of trees'"),
}


@pytest.mark.parametrize("defect", MODEL_DEFECTS)
def test_damaged_model_text_is_one_bundle_error(bundle_copy, model_text, signing_keys, defect):
    damage, match = MODEL_DEFECTS[defect]
    rewrite(bundle_copy, "model.txt", damage(model_text), sign_with=signing_keys["private"])
    with pytest.raises(BundleError, match=match) as err:
        load_bundle(bundle_copy)
    assert "\n" not in str(err.value) and "model.txt" in str(err.value)


def test_model_text_not_utf8(bundle_copy, signing_keys):
    rewrite(bundle_copy, "model.txt", b"tree\nversion=v4\n\xff\xfe", sign_with=signing_keys["private"])
    with pytest.raises(BundleError, match="model.txt: not UTF-8"):
        load_bundle(bundle_copy)


def test_every_truncation_of_the_model_text_is_refused_before_lightgbm(model_text):
    n = len(model_text)
    for cut in sorted({*range(0, n, max(n // 150, 1)), n - 1, n - 30}):
        with pytest.raises(BundleError):
            check_model_text(model_text[:cut], "model.txt")
    assert check_model_text(model_text, "model.txt") == model_text.count("\nTree=")


def test_random_corruption_never_crashes_the_process(model_text, tmp_path):
    """Mutated model texts: each is refused or, if the checks accept it, LightGBM reads and predicts without
    dying. Run in a child process so that a crash shows as a failure, not as a dead test session."""
    (tmp_path / "model.txt").write_text(model_text)
    code = f"""
import random, sys, numpy as np, lightgbm as lgb
from creditmodel.export.model_text import check_model_text
from creditmodel.exceptions import BundleError
text = open({str(tmp_path / 'model.txt')!r}).read()
rng = random.Random(7)
refused = accepted = 0
names = [ln for ln in text.splitlines() if ln.startswith('feature_names=')][0].split('=', 1)[1].split(' ')
X = np.random.default_rng(7).normal(size=(20, len(names)))
for _ in range(300):
    s = list(text)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(s)); op = rng.random()
        if op < 0.4: s[i] = rng.choice('0123456789-=. \\nTre:[]')
        elif op < 0.7: del s[i]
        else: s.insert(i, rng.choice('0123456789-=. \\nTre:[]'))
    m = ''.join(s)
    try:
        check_model_text(m, 'm')
    except BundleError:
        refused += 1
        continue
    accepted += 1
    try:
        lgb.Booster(model_str=m).predict(X, raw_score=True)
    except Exception:
        pass
print(refused, accepted)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    refused, accepted = map(int, proc.stdout.strip().splitlines()[-1].split())
    assert refused + accepted == 300 and refused > 200


MANIFEST_DEFECTS = {
    "entry is a string": (lambda m: m["files"].__setitem__("model.txt", "abc"), "files.model.txt"),
    "sha256 missing": (lambda m: m["files"]["calibration.json"].pop("sha256"), "expected exactly sha256 and bytes"),
    "bytes not a number": (lambda m: m["files"]["calibration.json"].__setitem__("bytes", "12"),
                           "files.calibration.json.bytes: '12'"),
    "sha256 not hex": (lambda m: m["files"]["calibration.json"].__setitem__("sha256", 5), "64 lower-case hex"),
    "extra key": (lambda m: m["files"]["model.txt"].__setitem__("mode", "0644"), "expected exactly sha256 and bytes"),
    "path traversal": (lambda m: m["files"].__setitem__("../x", {"sha256": "0" * 64, "bytes": 1}),
                       "'../x' is not a plain file name"),
    "absolute path": (lambda m: m["files"].__setitem__("/etc/passwd", {"sha256": "0" * 64, "bytes": 1}),
                      "not a plain file name"),
    "unknown file": (lambda m: m["files"].__setitem__("evil.pkl", {"sha256": "0" * 64, "bytes": 1}),
                     "unknown file 'evil.pkl'"),
    "files is a list": (lambda m: m.__setitem__("files", ["model.txt"]), "field files: expected an object"),
    "model not listed": (lambda m: m["files"].pop("model.txt"), "does not list model.txt"),
    "format version": (lambda m: m.__setitem__("format_version", 99), "version '99'"),
}


@pytest.mark.parametrize("defect", MANIFEST_DEFECTS)
def test_malformed_manifest_entry_is_one_bundle_error(bundle_copy, signing_keys, defect):
    change, match = MANIFEST_DEFECTS[defect]
    edit_manifest(bundle_copy, change, sign_with=signing_keys["private"])
    with pytest.raises(BundleError, match=match) as err:
        load_bundle(bundle_copy)
    assert "\n" not in str(err.value) and "manifest.json" in str(err.value)


def _categorical(change):
    def apply(doc):  # the first categorical feature's entry
        change(next(f for f in doc["features"] if f["kind"] == "categorical"))
    return apply


def _set(path: list, value):
    def change(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


JSON_DEFECTS = {
    "calibration slope NaN": ("calibration.json", _set(["slope"], float("nan")), "calibration.json: field slope"),
    "calibration shift infinite": ("calibration.json", _set(["level_shift"], float("inf")),
                                   "calibration.json: field level_shift"),
    "calibration floor out of range": ("calibration.json", _set(["pd_floor"], 1.5),
                                       "calibration.json: field pd_floor: value 1.5"),
    "calibration floor a string": ("calibration.json", _set(["pd_floor"], "0.001"), "field pd_floor"),
    "calibration method": ("calibration.json", _set(["method"], "magic"), "field method: 'magic'"),
    "scale bound infinite": ("master_scale.json", _set(["upper_bounds", 2], float("inf")),
                             r"master_scale.json: field upper_bounds\[2\]"),
    "scale bounds falling": ("master_scale.json", _set(["upper_bounds", 2], 0.001),
                             "master_scale.json: field upper_bounds"),
    "scale grades repeated": ("master_scale.json", _set(["grades", 1], "A1"), "master_scale.json: field grades"),
    "scale assigned PD outside band": ("master_scale.json", _set(["assigned_pd", 0], 0.5),
                                       "master_scale.json: field assigned_pd"),
    "schema min NaN": ("feature_schema.json", _set(["features", 0, "min"], float("nan")),
                       r"feature_schema.json: field features\[0\].min"),
    "schema min above max": ("feature_schema.json", _set(["features", 0, "min"], 1e300),
                             "feature_schema.json: feature .* fields min/max"),
    "schema kind unknown": ("feature_schema.json", _set(["features", 0, "kind"], "text"), "field kind 'text'"),
    "schema features not a list": ("feature_schema.json", _set(["features"], {"a": 1}), "field features"),
    "schema label of no category": ("feature_schema.json", _categorical(
        lambda f: f.setdefault("labels", {}).__setitem__("zzz", {"zh": "甲"})),
        r"feature_schema.json: feature '\w+': field labels: 'zzz' is not one of its categories"),
    "schema label not a text": ("feature_schema.json", _categorical(
        lambda f: f.__setitem__("labels", {f["categories"][0]: {"zh": 3}})), r"field labels\.\w+: expected"),
    "model card NaN": ("model_card.json", lambda d: d.__setitem__("auc", float("nan")), "model_card.json: field auc"),
}


@pytest.mark.parametrize("defect", JSON_DEFECTS)
def test_bad_json_value_names_file_and_field(bundle_copy, signing_keys, defect):
    name, change, match = JSON_DEFECTS[defect]
    edit_json(bundle_copy, name, change, sign_with=signing_keys["private"])
    with pytest.raises(BundleError, match=match) as err:
        load_bundle(bundle_copy)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("raw", ["[1, 2]", "NaN", "{\"a\": ", ""])
def test_json_file_that_is_not_an_object(bundle_copy, signing_keys, raw):
    edit_json(bundle_copy, "calibration.json", None, raw=raw, sign_with=signing_keys["private"])
    with pytest.raises(BundleError, match="calibration.json: (expected a JSON object|not valid JSON)"):
        load_bundle(bundle_copy)


CLI_CASES = {
    "truncated model": lambda b, t: rewrite(b, "model.txt", t[: len(t) // 2]),
    "manifest entry": lambda b, t: edit_manifest(b, lambda m: m["files"].__setitem__("model.txt", "abc")),
    "calibration NaN": lambda b, t: edit_json(b, "calibration.json", _set(["slope"], float("nan"))),
    "master scale infinite": lambda b, t: edit_json(b, "master_scale.json", _set(["upper_bounds", 0], float("inf"))),
    "schema NaN": lambda b, t: edit_json(b, "feature_schema.json", _set(["features", 0, "max"], float("nan"))),
}


@pytest.mark.parametrize("command", ["score", "price"])
@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_prints_one_line_and_exits_2(bundle_copy, model_text, signing_keys, features_file, tmp_path, capsys,
                                         case, command):
    CLI_CASES[case](bundle_copy, model_text)
    resign(bundle_copy, signing_keys["private"])  # signed by its trusted author: only the checks can refuse it
    out = tmp_path / ("scored.parquet" if command == "score" else "priced.csv")
    data = ["--input", str(features_file)] if command == "score" else ["--applications", str(features_file)]
    assert main([command, "--bundle", str(bundle_copy), *data, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    err = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("creditmodel: error: bundle ") and str(bundle_copy) in err[0]
    assert not out.exists()


def test_truncated_model_exits_2_not_134(bundle_copy, model_text, signing_keys, features_file, tmp_path):
    """The drill's crash: a truncated model.txt with its hash rewritten aborted the process (exit 134, 200+ lines
    of LightGBM fatal errors). Now: exit 2 and one line, in a real process."""
    rewrite(bundle_copy, "model.txt", model_text[: int(len(model_text) * 0.3)], sign_with=signing_keys["private"])
    proc = subprocess.run([sys.executable, "-m", "creditmodel.cli", "score", "--bundle", str(bundle_copy),
                           "--input", str(features_file), "--out", str(tmp_path / "o.parquet")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "model.txt" in lines[0] and "truncated" in lines[0]
    assert proc.stdout == "" and not (tmp_path / "o.parquet").exists()
