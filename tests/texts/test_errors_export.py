"""The errors of a bundle's contents, its model.txt, compiled trees, ONNX export and the MLflow model are texts
of the message catalogue: the English as it always was, and the same error in Chinese, on one line."""

import logging
import re
import sys
from types import SimpleNamespace

import pandas as pd
import pytest

from creditmodel.exceptions import BundleError, ConfigError, RequestError
from creditmodel.export import compiled, contents, model_text, onnx
from creditmodel.texts import text

CJK = re.compile(r"[\u4e00-\u9fff]")


def _raised(exc_type, call, *args, **kwargs):
    with pytest.raises(exc_type) as info:
        call(*args, **kwargs)
    zh = info.value.in_lang("zh")
    assert zh is not None and "\n" not in zh and CJK.search(zh), zh
    return str(info.value), zh


def test_a_number_outside_its_range_in_a_json_file():
    en, zh = _raised(BundleError, contents.check_calibration, {"method": "platt", "pd_floor": 1.0},
                     "bundle b: calibration.json")
    assert en == "bundle b: calibration.json: field pd_floor: value 1.0, expected a number in [0.0, 1.0)"
    assert zh == "bundle b: calibration.json：字段 pd_floor：取值 1.0，应为 [0.0, 1.0) 之间的数"


def test_a_nan_at_the_top_of_a_json_file():
    en, zh = _raised(BundleError, contents.check_finite, float("nan"), "model_card.json")
    assert en == "model_card.json: field (top level): not a finite number (NaN or infinite)"
    assert zh == "model_card.json：顶层取值不是有限数值（NaN 或无穷大）"


def test_the_manifest_lists_every_required_file():
    en, zh = _raised(BundleError, contents.check_manifest_files, {}, "manifest.json", ("model.txt",), ())
    assert en == "manifest.json: field files does not list model.txt (expected ['model.txt'])"
    assert zh == "manifest.json：字段 files 未列出 model.txt（应有 ['model.txt']）"


@pytest.mark.parametrize("feature, english, chinese", [
    ({"name": "sector", "kind": "categorical", "categories": ["a"], "labels": {"a": {"fr": "x"}}},
     'feature_schema.json: feature \'sector\': field labels.a: expected {"en": text, "zh": text} (non-empty strings)',
     'feature_schema.json：特征 \'sector\'：字段 labels.a：应为 {"en": 文字, "zh": 文字}（非空字符串）'),
    ({"name": "age", "kind": "numeric", "min": 5, "max": 1},
     "feature_schema.json: feature 'age': fields min/max: 5.0 > 1.0, expected min <= max",
     "feature_schema.json：特征 'age'：字段 min/max：5.0 > 1.0，应满足 min <= max"),
    ({"name": "", "kind": "numeric"},
     "feature_schema.json: field features[0].name: '', expected a unique non-empty feature name",
     "feature_schema.json：字段 features[0].name：''，应为不重复、非空的特征名"),
])
def test_a_bad_feature_in_the_schema_is_named(feature, english, chinese):
    assert _raised(BundleError, contents.check_feature_schema, {"features": [feature]}, "feature_schema.json") == \
        (english, chinese)


def _model(leaf_value: str) -> str:
    block = f"Tree=0\nnum_leaves=1\nnum_cat=0\nleaf_value={leaf_value}\nshrinkage=1\n\n"
    header = ("tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=0\n"
              f"objective=binary sigmoid:1\nfeature_names=x\nfeature_infos=[0:1]\ntree_sizes={len(block)}\n\n")
    return f"{header}{block}end of trees\n\npandas_categorical:null\n"


def test_model_txt_errors_name_the_tree_and_field():
    assert model_text.check_model_text(_model("0.5"), "model.txt") == 1
    en, zh = _raised(BundleError, model_text.check_model_text, _model("nan"), "bundle b: model.txt")
    assert en == "bundle b: model.txt: tree 0: field leaf_value: value 'nan', expected a finite number"
    assert zh == "bundle b: model.txt：树 0：字段 leaf_value：取值 'nan'，应为有限数值"
    en, zh = _raised(BundleError, model_text.check_model_text, "tree\n", "model.txt")
    assert en == "model.txt: no 'Tree=' block: truncated or not a LightGBM text model"
    assert zh == "model.txt：没有 'Tree=' 文本块：文件被截断，或不是 LightGBM 文本模型"


def test_compiled_trees_refused_or_not_compilable(monkeypatch, caplog):
    common = {"obj": b"", "model_sha256": "ab" * 32, "booster": None, "calibrator": None, "schema": None}
    en, zh = _raised(BundleError, compiled.load_compiled, "bundle b", info=None, signed=True, **common)
    assert en == ("bundle b: manifest.json: field compiled: expected the description of model_compiled.o "
                  "(compiler 'lleaves', triple, cpu, features, model_sha256)")
    assert zh == ("bundle b：manifest.json：字段 compiled：应为 model_compiled.o 的说明"
                  "（compiler 'lleaves'、triple、cpu、features、model_sha256）")
    info = {"compiler": "lleaves", "features": "", "model_sha256": "ab" * 32}
    with caplog.at_level(logging.WARNING, logger="creditmodel.export.compiled"):
        loaded = compiled.load_compiled("bundle b", info=info, signed=False, **common)
    assert loaded.forest is None and [r.getMessage() for r in caplog.records] == [loaded.note]
    assert loaded.note == ("bundle b: model_compiled.o not used (native code runs only from a bundle signed by a "
                           "trusted key); scoring with LightGBM")
    note = compiled.note_phrase(loaded.note)
    assert text(note.id, "zh", **note.fields) == \
        "bundle b：未使用 model_compiled.o（原生代码只能从经受信任密钥签名的模型包运行），改用 LightGBM 评分"
    for name in [m for m in sys.modules if m == "lleaves" or m.startswith("lleaves.")] + ["lleaves"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if it were not installed
    en, zh = _raised(ConfigError, compiled.compile_model, _model("0.5"))
    assert en == "cannot compile trees: lleaves is not installed (pip install lleaves)"
    assert zh == "无法编译树模型：未安装 lleaves（pip install lleaves）"
    assert compiled.unavailable() == "lleaves is not installed (pip install lleaves)"


def test_a_bundle_without_onnx(tmp_path):
    en, zh = _raised(BundleError, onnx.onnx_drift, SimpleNamespace(path=tmp_path), pd.DataFrame())
    assert en == f"bundle {tmp_path}: has no model.onnx (export with --onnx)"
    assert zh == f"模型包 {tmp_path}：没有 model.onnx（导出时请加 --onnx）"


def test_the_mlflow_model_refuses_in_both_languages():
    from creditmodel.export.pyfunc import BundlePDModel, ModelInputError

    def refuse(frame):
        raise RequestError.of("error.feature_null", name="age")

    model = BundlePDModel()
    model.bundle = SimpleNamespace(schema=SimpleNamespace(names=["age", "sector"]), predict_pd=refuse)
    en, zh = _raised(ModelInputError, model.predict, None, [[1, "a"]])
    assert en == "model input: expected a table of the 2 features (columns by name), got list"
    assert zh == "模型输入：应为含全部 2 个特征的表（按列名），收到的是 list"
    with pytest.raises(ModelInputError) as info:
        model.predict(None, pd.DataFrame({"age": [None], "sector": ["a"]}))
    inner = RequestError.of("error.feature_null", name="age")
    assert str(info.value) == str(inner) and info.value.in_lang("zh") == inner.in_lang("zh")
    assert isinstance(info.value, RequestError) and info.value.error_code == "INVALID_PARAMETER_VALUE"
