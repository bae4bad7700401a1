"""The boundary errors of the scoring service and of monitoring are said in English and in Simplified Chinese:
each raised by the real code, its English as before and its Chinese on one line (a phrase inside it, e.g.
what a table is needed for or an inner refusal, in Chinese too)."""

from __future__ import annotations

import pandas as pd
import pytest

from creditmodel.exceptions import BundleError, ConfigError, DataContractError, RequestError
from creditmodel.monitoring.book import live_books
from creditmodel.monitoring.carried import read_carried
from creditmodel.monitoring.mlflow_metrics import resolve_target
from creditmodel.monitoring.triggers import parse_triggers
from creditmodel.service.app import load_api_keys
from creditmodel.service.batch import score_frame, score_parquet
from creditmodel.service.scoring_log import ScoringLog, read_scoring_log
from creditmodel.service.workers import pin_bundle


def _said(info: pytest.ExceptionInfo, en: str, zh: str) -> None:
    exc = info.value
    assert str(exc) == en
    assert exc.in_lang("en") == en
    assert exc.in_lang("zh") == zh
    assert "\n" not in zh


# --- the service ----------------------------------------------------------------------------------


def test_an_api_key_too_short_names_where_it_came_from():
    with pytest.raises(ConfigError) as info:
        load_api_keys(env="short-key")
    _said(info, "$CREDITMODEL_API_KEYS entry 1: an API key must be at least 16 printable ASCII characters "
                "without spaces",
          "$CREDITMODEL_API_KEYS 第 1 项：API 密钥应为至少 16 个可打印 ASCII 字符，且不含空格")


def test_an_api_key_file_without_keys(tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("# none yet\n\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_api_keys(keys)
    _said(info, f"--api-key-file {keys}: holds no key", f"--api-key-file {keys}：文件中没有任何密钥")


def test_batch_scoring_refuses_a_missing_input_and_a_wrong_output(tmp_path):
    missing = tmp_path / "nothing.parquet"
    with pytest.raises(DataContractError) as info:
        score_parquet(None, missing, tmp_path / "out.parquet")
    _said(info, f"input {missing} does not exist", f"输入 {missing} 不存在")
    pd.DataFrame({"x": [1.0]}).to_parquet(tmp_path / "in.parquet")
    with pytest.raises(ConfigError) as info:
        score_parquet(None, tmp_path / "in.parquet", tmp_path / "out.csv")
    _said(info, f"--out {tmp_path / 'out.csv'}: expected a .parquet file name",
          f"--out {tmp_path / 'out.csv'}：应为 .parquet 文件名")


class _Refusing:
    """A bundle that refuses every row whose x is null, as a real bundle's check does."""

    def predict_pd(self, frame):
        self.check_request(frame)

    def check_request(self, frame):
        if frame["x"].isna().any():
            raise RequestError.of("error.feature_null", name="x")


def test_a_refused_row_of_a_batch_carries_the_bundles_reason_in_both_languages():
    frame = pd.DataFrame({"x": [1.0, 2.0, None, 4.0]})
    with pytest.raises(RequestError) as info:
        score_frame(_Refusing(), frame, row_offset=10)
    _said(info, "row 12: feature 'x': null is not allowed (the feature is always defined)",
          "行 12：特征 'x'：不允许为空（该特征总有取值）")


def test_the_scoring_log_refuses_a_directory_that_is_not_one(tmp_path):
    with pytest.raises(ConfigError) as info:
        read_scoring_log(tmp_path / "nope")
    _said(info, f"--scoring-log {tmp_path / 'nope'}: not a directory; expected the service's scoring log directory",
          f"--scoring-log {tmp_path / 'nope'}：不是目录；应为评分服务的评分日志目录")
    with pytest.raises(ConfigError) as info:
        ScoringLog(tmp_path, max_bytes=0, queue_items=5)
    _said(info, "scoring log: max_bytes 0 and queue_items 5: expected >= 1",
          "评分日志：max_bytes 为 0，queue_items 为 5；两者均应 >= 1")


def test_a_bundle_to_pin_holds_files_only(tmp_path):
    source = tmp_path / "bundle"
    (source / "sub").mkdir(parents=True)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with pytest.raises(BundleError) as info:
        pin_bundle(source, run_dir)
    _said(info, f"bundle {source}: unexpected entry 'sub' (a bundle holds files only)",
          f"模型包 {source}：含有意外的条目 'sub'（模型包只应包含文件）")
    with pytest.raises(BundleError) as info:
        pin_bundle(tmp_path / "absent", run_dir)
    _said(info, f"bundle directory {tmp_path / 'absent'} does not exist", f"模型包目录 {tmp_path / 'absent'} 不存在")


# --- monitoring -----------------------------------------------------------------------------------


def test_a_missing_table_says_what_it_is_needed_for():
    with pytest.raises(DataContractError) as info:
        live_books({"loans": pd.DataFrame()}, ["2024-01-31"])
    _said(info, "table repayments: missing; expected it for days past due",
          "表 repayments：缺失；逾期天数需要用到该表")
    assert info.value.failures_in("zh") == ("表 repayments：缺失；逾期天数需要用到该表",)


def test_carried_ratings_need_an_earlier_run(tmp_path):
    with pytest.raises(DataContractError) as info:
        read_carried(tmp_path, None, pd.DataFrame())
    _said(info, f"--previous {tmp_path}: no carried.json; expected the output directory of an earlier "
                "`creditmodel monitor` run",
          f"--previous {tmp_path}：没有 carried.json；应为此前一次 `creditmodel monitor` 运行的输出目录")


TRIGGER = {"kind": "court_case", "severity": 2, "en": "New court case", "zh": "新增涉诉案件"}


def test_a_trigger_parameter_says_what_it_must_be_in_the_language_of_the_error():
    with pytest.raises(ConfigError) as info:
        parse_triggers({"court": {**TRIGGER, "lookback_days": 0}})
    _said(info, "[monitoring.triggers.court] lookback_days: 0; expected a positive integer",
          "[monitoring.triggers.court] lookback_days：0；应为正整数")
    with pytest.raises(ConfigError) as info:
        parse_triggers({"court": {**TRIGGER, "severity": 5}})
    _said(info, "[monitoring.triggers.court] severity: 5; expected 1 (watch), 2 or 3 (act now)",
          "[monitoring.triggers.court] severity：5；应为 1（关注）、2 或 3（立即处置）")
    with pytest.raises(ConfigError) as info:
        parse_triggers({"court": {**TRIGGER, "zh": " "}})
    _said(info, "[monitoring.triggers.court] zh: expected the officer's reason text (English and Chinese)",
          "[monitoring.triggers.court] zh：应填写给客户经理看的预警原因（英文和中文）")


class _FromRun:
    manifest = {"provenance": {"mlflow": {"run_id": "abc123"}}}


def test_a_tracking_store_that_is_not_there(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(ConfigError) as info:
        resolve_target(_FromRun(), uri, "m")
    _said(info, f"--tracking-uri {uri}: no such store; expected the store the bundle's MLflow run abc123 was "
                "exported from (or --no-mlflow)",
          f"--tracking-uri {uri}：没有该存储；应为模型包的 MLflow 运行 abc123 导出时所在的存储（或使用 --no-mlflow）")
    assert not (tmp_path / "mlflow.db").exists()
