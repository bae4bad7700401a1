"""The command line's own refusals: one line, exit 2, in English exactly as argparse says them, and in Chinese
under --lang zh or $CREDITMODEL_LANG=zh."""

import argparse

import pytest

from creditmodel.cli import main
from creditmodel.cli_usage import Parser, argv_lang, parse_args

BAD = [
    (["synth"], "creditmodel synth", "the following arguments are required: --out", "缺少必需的参数：--out"),
    (["synth", "--out", "x", "--bogus"], "creditmodel", "unrecognized arguments: --bogus", "无法识别的参数：--bogus"),
    (["nosuch"], "creditmodel", "argument COMMAND: invalid choice: 'nosuch' (choose from 'synth', ",
     "参数 COMMAND：无效的取值：'nosuch'（可选：'synth', "),
    (["synth", "--out", "x", "--transaction-density", "abc"], "creditmodel synth",
     "argument --transaction-density: invalid float value: 'abc'", "参数 --transaction-density：无效的 float 取值：'abc'"),
    (["synth", "--out"], "creditmodel synth", "argument --out: expected one argument", "参数 --out：须给出一个值"),
    (["synth", "--out", "x", "--enterprises", "many"], "creditmodel synth",
     "argument --enterprises: expected a whole number, got 'many'", "参数 --enterprises：应为整数，实际为 'many'"),
    (["synth", "--out", "x", "--seed", "-3"], "creditmodel synth", "argument --seed: expected a number >= 0, got -3",
     "参数 --seed：应为大于或等于 0 的数，实际为 -3"),
    (["score", "--bundle", "b", "--out", "o", "--memory-limit", "lots"], "creditmodel score",
     "argument --memory-limit: memory limit 'lots': expected a size such as 4GB or 512MiB",
     "参数 --memory-limit：内存上限 'lots'：应为 4GB 或 512MiB 这样的大小"),
]


def _refusal(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert captured.out == "" and len(lines) == 1, captured
    return lines[0]


@pytest.mark.parametrize(("argv", "prog", "english", "chinese"), BAD, ids=[" ".join(b[0]) for b in BAD])
def test_a_refused_command_line_is_one_line_in_the_commands_language(argv, prog, english, chinese, tmp_path,
                                                                    monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CREDITMODEL_LANG", raising=False)
    line = _refusal(argv, capsys)
    assert line.startswith(f"{prog}: error: {english}") and line.endswith(f" (see {prog} --help)")
    monkeypatch.setenv("CREDITMODEL_LANG", "zh")
    line = _refusal(argv, capsys)
    assert line.startswith(f"{prog}：错误：{chinese}") and line.endswith(f"（用法见 {prog} --help）")
    monkeypatch.setenv("CREDITMODEL_LANG", "en")
    assert _refusal([*argv, "--lang", "zh"], capsys).startswith(f"{prog}：错误：")  # --lang wins over the variable
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_the_language_of_a_refusal_comes_from_the_raw_arguments(monkeypatch):
    monkeypatch.delenv("CREDITMODEL_LANG", raising=False)
    assert argv_lang(["price", "--lang", "zh"]) == "zh"
    assert argv_lang(["price", "--lang=zh"]) == "zh"
    assert argv_lang(["price", "--lang", "fr"]) == "en"  # itself refused, in the default language
    assert argv_lang(["price", "--lang"]) == "en"
    monkeypatch.setenv("CREDITMODEL_LANG", "zh")
    assert argv_lang(["price"]) == "zh"
    assert argv_lang(["price", "--lang", "en"]) == "en"


def _parsers(cls):
    p = cls(prog="prog")
    p.add_argument("--alpha")
    p.add_argument("--alright")
    p.add_argument("--pair", nargs=2)
    p.add_argument("--many", nargs="+")
    p.add_argument("--flag", action="store_true")
    p.add_argument("--count", type=int)
    p.add_argument("--mode", choices=("a", "b"))
    one = p.add_mutually_exclusive_group(required=True)
    one.add_argument("--left", action="store_true")
    one.add_argument("--right", action="store_true")
    return p


ARGPARSE = [
    (["--al", "x", "--left"], "选项 --al 有歧义，可能是 --alpha, --alright"),
    ([], "参数 --left --right 须给出其中之一"),
    (["--left", "--pair", "1"], "参数 --pair：须给出 2 个值"),
    (["--left", "--many"], "参数 --many：至少给出一个值"),
    (["--left", "--right"], "参数 --right：不能与参数 --left 同时使用"),
    (["--left", "--flag=yes"], "参数 --flag：多余的显式取值 'yes'"),
    (["--left", "--count", "x"], "参数 --count：无效的 int 取值：'x'"),
    (["--left", "--mode", "c"], "参数 --mode：无效的取值：'c'（可选：'a', 'b'）"),
]


@pytest.mark.parametrize(("argv", "chinese"), ARGPARSE, ids=[str(i) for i in range(len(ARGPARSE))])
def test_argparse_s_own_messages_are_said_word_for_word_and_in_chinese(argv, chinese, monkeypatch, capsys):
    """The reference is plain argparse: the English line carries exactly its message."""
    monkeypatch.delenv("CREDITMODEL_LANG", raising=False)
    with pytest.raises(SystemExit):
        _parsers(argparse.ArgumentParser).parse_args(argv)
    reference = capsys.readouterr().err.splitlines()[-1].removeprefix("prog: error: ")
    for lang, head, tail in (("en", "prog: error: ", " (see prog --help)"), ("zh", "prog：错误：", "（用法见 prog --help）")):
        monkeypatch.setenv("CREDITMODEL_LANG", lang)
        with pytest.raises(SystemExit) as exit_:
            parse_args(_parsers(Parser), argv)
        assert exit_.value.code == 2
        assert capsys.readouterr().err == head + (reference if lang == "en" else chinese) + tail + "\n"


def test_a_message_argparse_words_otherwise_is_kept_in_english(monkeypatch, capsys):
    def refuse(value):
        raise argparse.ArgumentTypeError(f"no good: {value}")

    p = Parser(prog="prog")
    p.add_argument("--x", type=refuse)
    monkeypatch.setenv("CREDITMODEL_LANG", "zh")
    with pytest.raises(SystemExit):
        parse_args(p, ["--x", "1"])
    assert capsys.readouterr().err == "prog：错误：argument --x: no good: 1（用法见 prog --help）\n"
