"""The `creditmodel` command says its refusals in the error language: --lang, else the configuration's lang,
else $CREDITMODEL_LANG, else English; each one line, exit 2, the English as before and the Chinese all Chinese
(errors of the command line, the configuration, outputs and the run)."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from creditmodel.cli import _warn_if_unsigned, main
from creditmodel.config import build_config, load_config
from creditmodel.exceptions import ConfigError

NO_APPLICATIONS = ["price", "--bundle", "b", "--out", "x.csv"]
NO_APPLICATIONS_EN = "creditmodel: error: price: --applications is required (or use `price grid` for the rate grid)"
NO_APPLICATIONS_ZH = "creditmodel：错误：price：须提供 --applications（利率表请用 `price grid`）"


@pytest.fixture(autouse=True)
def _no_env_lang(monkeypatch, tmp_path):
    monkeypatch.delenv("CREDITMODEL_LANG", raising=False)
    monkeypatch.chdir(tmp_path)


def _foreign(name: str) -> Path:
    """A directory in the working directory holding a file creditmodel did not write."""
    Path(name).mkdir()
    (Path(name) / "notes.txt").write_text("mine")
    return Path(name)


def _one_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    return err[0]


def test_english_by_default_chinese_with_lang(capsys):
    assert _one_line(capsys, NO_APPLICATIONS) == NO_APPLICATIONS_EN
    assert _one_line(capsys, [*NO_APPLICATIONS, "--lang", "zh"]) == NO_APPLICATIONS_ZH
    assert _one_line(capsys, [*NO_APPLICATIONS, "--lang", "en"]) == NO_APPLICATIONS_EN


def test_chinese_with_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("CREDITMODEL_LANG", "zh")
    assert _one_line(capsys, NO_APPLICATIONS) == NO_APPLICATIONS_ZH
    assert _one_line(capsys, [*NO_APPLICATIONS, "--lang", "en"]) == NO_APPLICATIONS_EN  # --lang comes first
    # an output refused (creditmodel.outputs) and an argument pydantic refuses, on a command without --lang
    foreign = _foreign("w")
    assert _one_line(capsys, ["synth", "--out", "w", "--enterprises", "60"]) == (
        "creditmodel：错误：--out w：不是空目录：其中的 'notes.txt' 不是 creditmodel 写入的；拒绝写入该处")
    assert foreign.joinpath("notes.txt").read_text() == "mine"
    assert _one_line(capsys, ["synth", "--out", ".", "--enterprises", "60"]) == (
        "creditmodel：错误：--out .：就是当前目录；拒绝写入该处")
    assert _one_line(capsys, ["synth", "--out", "v", "--enterprises", "10"]) == (
        "creditmodel：错误：--enterprises：取值 10：取值应大于或等于 50")
    assert _one_line(capsys, ["bundle", "compile", "--bundle", "b", "--parity-rows", "rows.txt"]) == (
        "creditmodel：错误：输入文件 rows.txt 不存在")


def test_the_same_refusals_in_english(capsys):
    _foreign("w")
    assert _one_line(capsys, ["synth", "--out", "w", "--enterprises", "60"]) == (
        "creditmodel: error: --out w: is not empty: it holds 'notes.txt', which creditmodel did not write; "
        "refusing to write there")
    assert _one_line(capsys, ["synth", "--out", ".", "--enterprises", "60"]) == (
        "creditmodel: error: --out .: is the current directory; refusing to write there")
    assert _one_line(capsys, ["synth", "--out", "v", "--enterprises", "10"]) == (
        "creditmodel: error: --enterprises: value 10: Input should be greater than or equal to 50")


def test_chinese_with_the_configuration_lang(capsys):
    _foreign("w")
    Path("zh.toml").write_text('lang = "zh"\n', encoding="utf-8")
    assert _one_line(capsys, ["run", "--config", "zh.toml", "--out", "w"]) == (
        "creditmodel：错误：--out w：不是空目录：其中的 'notes.txt' 不是 creditmodel 写入的；拒绝写入该处")
    assert _one_line(capsys, ["run", "--config", "zh.toml", "--out", "w", "--lang", "en"]).startswith(
        "creditmodel: error: --out w: is not empty")


def test_a_refused_configuration(capsys):
    Path("bad.toml").write_text('[pricing]\ncapital_approach = "irb"\n', encoding="utf-8")
    assert _one_line(capsys, ["run", "--config", "bad.toml"]) == (
        "creditmodel: error: bad.toml: field pricing.capital_approach: value 'irb': Input should be 'auto', "
        "'retail' or 'corporate'")
    assert _one_line(capsys, ["run", "--config", "bad.toml", "--lang", "zh"]) == (
        "creditmodel：错误：bad.toml：字段 pricing.capital_approach：取值 'irb'：取值应为 'auto'、'retail' 或 "
        "'corporate'")
    assert _one_line(capsys, ["run", "--config", "nope.toml", "--lang", "zh"]) == (
        "creditmodel：错误：配置文件 nope.toml 不存在")


def test_the_checks_of_the_configuration_in_both_languages():
    with pytest.raises(ConfigError) as info:
        build_config({"label": {"kind": "flag"}, "lightgbm": {"num_leaves": 1}})
    assert str(info.value) == ("config: field label: Value error, kind 'flag' needs column, e.g. 'loans.defaulted' "
                               "(+1 more)")
    assert info.value.in_lang("zh") == ("config：字段 label：取值错误：kind 'flag' 需要设置 column，例如 "
                                        "'loans.defaulted'（另有 1 处错误）")
    Path("c.toml").write_text('[pricing.lgd]\nunsecured = 0.45\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config("c.toml")
    assert str(info.value).endswith("missing ['third_party', 'collateral', 'joint_group'], unknown []; set "
                                    "[pricing.lgd] in the run configuration")
    zh = info.value.in_lang("zh")
    assert zh.startswith("c.toml：pricing.lgd 须恰好列出 ") and zh.endswith(
        "缺少 ['third_party', 'collateral', 'joint_group']，多出 []；请在运行配置中设置 [pricing.lgd]")
    assert "\n" not in zh


def test_an_unknown_language_in_the_environment_is_one_line(capsys, monkeypatch):
    monkeypatch.setenv("CREDITMODEL_LANG", "fr")
    assert _one_line(capsys, NO_APPLICATIONS) == "creditmodel: error: $CREDITMODEL_LANG 'fr': expected one of ['en', 'zh']"


def test_the_allow_unsigned_warning_in_the_error_language(capsys, monkeypatch):
    from creditmodel.export.signing import Signature

    args = SimpleNamespace(allow_unsigned=True, bundle="b", lang=None)
    for signature, zh in [(Signature(None, False), "模型包 b 未签名"),
                          (Signature("ab" * 16, False), f"模型包 b 由【不受信任】的密钥 {'ab' * 16} 签名"),
                          (Signature("ab" * 16, True), f"模型包 b 由受信任的密钥 {'ab' * 16} 签名")]:
        bundle = SimpleNamespace(signature=signature)
        _warn_if_unsigned(args, bundle)
        assert capsys.readouterr().err == (f"creditmodel: warning: --allow-unsigned (development only): bundle b is "
                                           f"{signature.describe()}; accepted without proof of its author\n")
        monkeypatch.setenv("CREDITMODEL_LANG", "zh")
        _warn_if_unsigned(args, bundle)
        assert capsys.readouterr().err == f"creditmodel：警告：--allow-unsigned（仅限开发使用）：{zh}；未经验证其作者即予接受\n"
        monkeypatch.delenv("CREDITMODEL_LANG")


def test_the_environment_speaks_where_the_configuration_sets_no_lang(capsys, monkeypatch):
    """A command reading the default configuration, or one without `lang`, leaves the language to
    $CREDITMODEL_LANG; a configuration's own `lang` comes before it."""
    monkeypatch.setenv("CREDITMODEL_LANG", "zh")
    Path("plain.toml").write_text("seed = 3\n", encoding="utf-8")
    Path("en.toml").write_text('lang = "en"\n', encoding="utf-8")
    for config in ([], ["--config", "plain.toml"]):
        assert _one_line(capsys, ["data", "check", "nowhere", *config]).startswith("creditmodel：错误："), config
    assert _one_line(capsys, ["data", "check", "nowhere", "--config", "en.toml"]).startswith("creditmodel: error: ")
