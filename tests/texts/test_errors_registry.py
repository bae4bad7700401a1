"""The model registry's refusals (export of a tracked model, register/promote, the validation report) are
catalogue texts: the English as it always was, and a one-line Chinese of the same facts.

The tracking store is a stand-in client (MLflow's own would build a database): the refusals come from the real
code paths all the same."""

from types import SimpleNamespace

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from creditmodel.exceptions import BundleError, ConfigError, RegistryError
from creditmodel.export import from_registry
from creditmodel.export.from_registry import _model_text_file, export_model, resolve_model_uri
from creditmodel.tracking import registry
from creditmodel.tracking.registry import promote, register
from creditmodel.validation.report import build_report


def said(exc: pytest.ExceptionInfo) -> tuple[str, str]:
    zh = exc.value.in_lang("zh")
    assert zh is not None and "\n" not in zh and "\n" not in str(exc.value)
    return str(exc.value), zh


class Store:
    """What the registry functions ask of MlflowClient, answered from a dict of versions by alias."""

    def __init__(self, versions=None, runs=None):
        self.versions, self.runs = versions or {}, runs or {}

    def get_model_version_by_alias(self, name, alias):
        if (name, alias) not in self.versions:
            raise MlflowException(f"Registered model alias {alias} not found.\nsecond line")
        return self.versions[name, alias]

    def get_run(self, run_id):
        if run_id not in self.runs:
            raise MlflowException(f"Run '{run_id}' not found")
        return self.runs[run_id]


@pytest.fixture
def store(monkeypatch):
    s = Store()
    monkeypatch.setattr(registry, "_client", lambda uri: s)
    monkeypatch.setattr(mlflow, "MlflowClient", lambda uri: s)
    return s


def test_promotion_refusals(store):
    store.versions["sme_pd", "challenger"] = SimpleNamespace(version="7", tags={"validation_status": "red"})
    with pytest.raises(RegistryError) as exc:
        promote("sqlite:///m.db", "sme_pd")
    assert said(exc) == (
        "model sme_pd version 7 failed validation (status red: no findings recorded); promote with --force and a "
        "--reason to override",
        "模型 sme_pd 版本 7 未通过模型验证（状态为红灯：未记录具体问题）；如需强制晋升，请使用 --force 并以 --reason "
        "说明理由")
    store.versions["sme_pd", "challenger"].tags["validation_findings"] = "out-of-time AUC 0.55 below 0.6"
    with pytest.raises(RegistryError) as exc:
        promote("sqlite:///m.db", "sme_pd")
    assert "（状态为红灯：out-of-time AUC 0.55 below 0.6）" in said(exc)[1]
    with pytest.raises(RegistryError) as exc:
        promote("sqlite:///m.db", "sme_pd", force=True, reason=" ")
    assert said(exc) == ("a forced promotion needs a --reason", "强制晋升须用 --reason 说明理由")
    store.versions["sme_pd", "challenger"].tags.clear()
    with pytest.raises(RegistryError) as exc:
        promote("sqlite:///m.db", "sme_pd")
    assert said(exc) == (
        "model sme_pd version 7 is not validated yet: run creditmodel report models:/sme_pd/7 --out FILE, or "
        "promote with --force and a --reason",
        "模型 sme_pd 版本 7 尚未进行模型验证：请运行 creditmodel report models:/sme_pd/7 --out FILE，或使用 --force "
        "并以 --reason 说明理由后晋升")
    with pytest.raises(RegistryError) as exc:
        promote("sqlite:///m.db", "sme_pd", from_alias="ghost")
    assert said(exc) == ("model sme_pd@ghost does not exist in sqlite:///m.db",
                         "模型 sme_pd@ghost 在 sqlite:///m.db 中不存在")


def test_registration_refusals(store):
    store.runs["abc"] = SimpleNamespace(info=SimpleNamespace(status="FAILED"))
    with pytest.raises(RegistryError) as exc:
        register("sqlite:///m.db", "abc", "sme_pd", "challenger")
    assert said(exc) == (
        "run abc is FAILED, not FINISHED: its model and evidence may be incomplete; re-run the pipeline",
        "运行 abc 的状态为 FAILED，不是 FINISHED：其模型和证据可能不完整；请重新运行流水线")
    with pytest.raises(RegistryError) as exc:
        register("sqlite:///m.db", "nope", "sme_pd", "challenger")
    assert said(exc) == ("run 'nope' does not exist in sqlite:///m.db", "运行 'nope' 在 sqlite:///m.db 中不存在")


def test_model_uri_refusals(store):
    with pytest.raises(ConfigError) as exc:
        resolve_model_uri("not-a-uri", "sqlite:///m.db")
    assert said(exc) == (
        "model URI 'not-a-uri': expected models:/NAME@ALIAS, models:/NAME/VERSION or runs:/RUN_ID/model",
        "模型 URI 'not-a-uri'：应为 models:/NAME@ALIAS、models:/NAME/VERSION 或 runs:/RUN_ID/model")
    with pytest.raises(ConfigError) as exc:
        resolve_model_uri("models:/sme_pd@ghost", "sqlite:///m.db")
    assert said(exc) == (
        "model URI 'models:/sme_pd@ghost' not found in sqlite:///m.db: Registered model alias ghost not found.",
        "模型 URI 'models:/sme_pd@ghost' 在 sqlite:///m.db 中不存在：Registered model alias ghost not found.")
    store.versions["sme_pd", "old"] = SimpleNamespace(version=4, run_id=None)
    with pytest.raises(ConfigError) as exc:
        resolve_model_uri("models:/sme_pd@old", "sqlite:///m.db")
    assert said(exc)[1] == ("模型 URI 'models:/sme_pd@old'：版本 4 注册时未关联 MLflow 运行，因此没有可读取的运行证据"
                            "（数据、评分、报告）")


def test_registered_model_formats_refused(tmp_path):
    booster = from_registry.BOOSTER_CLASS
    with pytest.raises(BundleError) as exc:
        _model_text_file({"flavors": {"sklearn": {}}}, tmp_path, "models:/sme_pd/3")
    assert said(exc) == (
        f"model models:/sme_pd/3: expected creditmodel's pyfunc over a bundle or a LightGBM Booster saved as text "
        f"(model_class {booster}), found neither; other formats are not read because loading them would unpickle",
        f"模型 models:/sme_pd/3：应为基于模型包的 creditmodel pyfunc，或以文本格式保存的 LightGBM Booster"
        f"（model_class {booster}），实际两者都不是；其他格式加载时须反序列化（unpickle），因此不予读取")
    with pytest.raises(BundleError) as exc:
        _model_text_file({"flavors": {"lightgbm": {"model_class": "lightgbm.sklearn.LGBMClassifier"}}}, tmp_path,
                         "models:/sme_pd/3")
    assert "found lightgbm.sklearn.LGBMClassifier; other formats" in str(exc.value)
    assert "实际为 lightgbm.sklearn.LGBMClassifier；" in said(exc)[1]
    with pytest.raises(BundleError) as exc:
        _model_text_file({"flavors": {"lightgbm": {"data": "../model.txt"}}}, tmp_path, "models:/sme_pd/3")
    assert said(exc) == (
        "model models:/sme_pd/3: its MLmodel names the model file '../model.txt', expected a file in the model "
        "directory",
        "模型 models:/sme_pd/3：其 MLmodel 文件指定的模型文件为 '../model.txt'，但模型目录中没有该文件")


def test_arguments_refused_before_any_work(tmp_path):
    with pytest.raises(ConfigError) as exc:
        export_model("models:/sme_pd@challenger", tmp_path / "b", tracking_uri="sqlite:///m.db", compiled=True)
    assert said(exc) == (
        "--compile: compiled trees run only from a signed bundle; pass --signing-key (or $CREDITMODEL_SIGNING_KEY)",
        "--compile：编译后的决策树只能从已签名的模型包运行；请传入 --signing-key（或设置 $CREDITMODEL_SIGNING_KEY）")
    out = tmp_path / "r.pdf"
    with pytest.raises(ConfigError) as exc:
        build_report("models:/sme_pd@challenger", out, tracking_uri="sqlite:///m.db")
    assert said(exc) == (f"--out {out}: expected an .html file", f"--out {out}：应为 .html 文件")
    assert list(tmp_path.iterdir()) == []
