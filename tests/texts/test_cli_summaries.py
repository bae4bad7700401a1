"""The lines a command prints when it has succeeded are texts of the message catalogue, said in the command's
language (--lang, else the configuration's lang, else $CREDITMODEL_LANG, else English): the English word for
word as before, the Chinese all Chinese with paths, ids, numbers and flags kept as they are."""

import ast
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

import creditmodel.cli
from creditmodel.cli import _signature_note, main
from creditmodel.data.schema import TABLES
from creditmodel.export.signing import HOW_TO_SIGN
from creditmodel.texts import catalogue


@pytest.fixture(autouse=True)
def _no_env_lang(monkeypatch):
    monkeypatch.delenv("CREDITMODEL_LANG", raising=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("summaries") / "world"
    assert main(["synth", "--out", str(out), "--enterprises", "60", "--seed", "1"]) == 0
    return out


def _printed(capsys, argv: list[str]) -> list[str]:
    """The lines a command that succeeded printed on stdout."""
    assert main(argv) == 0
    return capsys.readouterr().out.splitlines()


def _rows(world: Path) -> dict[str, int]:
    """Rows per canonical table of the world, in the schema's order."""
    return {name: len(pd.read_parquet(world / f"{name}.parquet")) for name in TABLES
            if (world / f"{name}.parquet").is_file()}


def test_synth(tmp_path, capsys, monkeypatch, world):
    rows = _rows(world)
    en, zh = tmp_path / "en", tmp_path / "zh"
    assert _printed(capsys, ["synth", "--out", str(en), "--enterprises", "60", "--seed", "1"]) == [
        *(f"{name:22s} {n:>12,d} rows" for name, n in rows.items()), f"wrote {en} (ground truth apart in {en}/_truth)"]
    monkeypatch.setenv("CREDITMODEL_LANG", "zh")
    assert _printed(capsys, ["synth", "--out", str(zh), "--enterprises", "60", "--seed", "1"]) == [
        *(f"{name:22s} {n:>12,d} 行" for name, n in rows.items()), f"已写出 {zh}（真实违约概率与违约结果另存于 {zh}/_truth）"]


def test_features(world, tmp_path, capsys, monkeypatch):
    out = tmp_path / "features.parquet"
    printed = _printed(capsys, ["features", "--data", str(world), "--out", str(out)])
    frame = pd.read_parquet(out)
    n, m = len(frame), frame.shape[1] - 3  # loan_id, enterprise_id and decision_date are not features
    assert printed == [f"wrote {n} rows x {m} features to {out}"]
    monkeypatch.setenv("CREDITMODEL_LANG", "zh")
    assert _printed(capsys, ["features", "--data", str(world), "--out", str(out)]) == [
        f"已将特征表（{n} 行 × {m} 个特征）写入 {out}"]


def test_store_build(world, tmp_path, capsys, monkeypatch):
    rows = _rows(world)
    en, zh = tmp_path / "en.duckdb", tmp_path / "zh.duckdb"
    assert _printed(capsys, ["store", "build", "--data", str(world), "--out", str(en)]) == [
        f"wrote a feature store of {len(rows)} tables ({', '.join(f'{k} {v:,}' for k, v in rows.items())}) to {en}"]
    monkeypatch.setenv("CREDITMODEL_LANG", "zh")
    assert _printed(capsys, ["store", "build", "--data", str(world), "--out", str(zh)]) == [
        f"已将特征数据库（{len(rows)} 张表，各表行数：{'、'.join(f'{k} {v:,}' for k, v in rows.items())}）写入 {zh}"]


def test_data_check(world, tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(world, data)
    loans = pd.read_parquet(data / "loans.parquet")
    loans.loc[0, "amount"] = 8e6  # above the approval authority: one loan needs referral
    loans["officer_note"] = "x"  # not declared in the data dictionary: listed as ignored
    loans.to_parquet(data / "loans.parquet", index=False)
    n = len(loans)
    printed = _printed(capsys, ["data", "check", str(data)])
    assert printed[0] == "ignored columns (not declared as attributes in the data dictionary): loans.officer_note"
    assert printed[1] == "extraction date 2025-06-30; data dictionary: the default data dictionary"
    assert printed[-2:] == [f"policy: 1 of {n} loans need referral (approval_authority 1)", "all contracts passed"]
    profile = printed[2:-2]  # the pandas profile between them is not a text of the catalogue
    monkeypatch.setenv("CREDITMODEL_LANG", "zh")
    assert _printed(capsys, ["data", "check", str(data)]) == [
        "已忽略的列（未在数据字典中声明为属性）：loans.officer_note",
        "数据提取日 2025-06-30；数据字典：默认数据字典",
        *profile,
        f"政策规则：{n} 笔贷款中 1 笔需上报审批（approval_authority 1）",
        "全部数据契约检查通过"]


def test_data_dictionary(tmp_path, capsys, monkeypatch):
    en, zh = tmp_path / "en.toml", tmp_path / "zh.toml"
    assert _printed(capsys, ["data", "dictionary", "--out", str(en)]) == [
        f'wrote the default data dictionary to {en}; edit it and name it in the run configuration: dictionary = "{en}"']
    monkeypatch.setenv("CREDITMODEL_LANG", "zh")
    assert _printed(capsys, ["data", "dictionary", "--out", str(zh)]) == [
        f'已将默认数据字典写入 {zh}；请按需修改，并在运行配置中指定：dictionary = "{zh}"']


def _key_id(first_line: str, word: str) -> str:
    m = re.fullmatch(rf"{word} ([0-9a-f]+)", first_line)
    assert m, first_line
    return m[1]


def test_keys_generate(tmp_path, capsys, monkeypatch):
    en, zh = tmp_path / "en", tmp_path / "zh"
    printed = _printed(capsys, ["keys", "generate", "--out", str(en)])
    private, public = en / "bundle_signing_key.pem", en / "bundle_signing_key.pub.pem"
    assert printed == [
        f"key {_key_id(printed[0], 'key')}",
        f"  private {private} (mode 0600: keep it secret; it signs bundles)",
        f"  public  {public} (give it to every service and pricing step that must trust these bundles)",
        f"sign:   creditmodel run|export ... --signing-key {private}   (or CREDITMODEL_SIGNING_KEY={private})",
        f"verify: creditmodel serve|score|price ... --trusted-key {public}   (or CREDITMODEL_TRUSTED_KEYS={public})"]
    monkeypatch.setenv("CREDITMODEL_LANG", "zh")
    printed = _printed(capsys, ["keys", "generate", "--out", str(zh)])
    private, public = zh / "bundle_signing_key.pem", zh / "bundle_signing_key.pub.pem"
    assert printed == [
        f"密钥 {_key_id(printed[0], '密钥')}",
        f"  私钥 {private}（权限 0600：请妥善保密，它用于为模型包签名）",
        f"  公钥 {public}（请交给每个须信任这些模型包的评分服务和定价环节）",
        f"签名：creditmodel run|export ... --signing-key {private}   （或 CREDITMODEL_SIGNING_KEY={private}）",
        f"验证：creditmodel serve|score|price ... --trusted-key {public}   （或 CREDITMODEL_TRUSTED_KEYS={public}）"]


def test_the_signature_note_of_a_bundle_in_each_language(tmp_path):
    assert _signature_note(tmp_path) == (
        f"UNSIGNED: serve, score and price refuse it without --allow-unsigned; to sign, {HOW_TO_SIGN}")
    zh = _signature_note(tmp_path, "zh")
    assert zh.startswith("【未签名】：不加 --allow-unsigned 时，serve、score 和 price 拒绝加载；如需签名，请用 ")
    assert "creditmodel keys generate --out DIR" in zh and "写出模型包" in zh


def test_every_summary_line_is_said_in_chinese():
    en, zh = catalogue("en"), catalogue("zh")
    ids = [k for k in en if k.startswith("cli.out.")]
    assert len(ids) > 30
    assert not [k for k in ids if zh[k] == en[k]], "texts left in English in zh"


def _english_prints(tree: ast.Module) -> list[int]:
    """Lines of cli.py that print a string composed in place rather than a text of the catalogue; a progress
    callback (a lambda) prints lines the library has already said in the run's language."""
    in_lambda = {id(n) for lam in ast.walk(tree) if isinstance(lam, ast.Lambda) for n in ast.walk(lam)}
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
            and id(node) not in in_lambda and node.args
            and (isinstance(node.args[0], ast.JoinedStr)
                 or isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str))]


def test_the_command_prints_no_english_composed_in_code():
    source = Path(creditmodel.cli.__file__).read_text(encoding="utf-8")
    lines = source.splitlines()
    # the list of a data check's failures: each line is already a text of the catalogue, in the error language
    allowed = {'print(f"  - {line}", file=sys.stderr)'}
    composed = [f"cli.py:{n}: {lines[n - 1].strip()}" for n in _english_prints(ast.parse(source))
                if lines[n - 1].strip() not in allowed]
    assert not composed, "\n".join(composed)
