"""The command line's help in both languages: every command and option has its text in each, argparse's own
words included, said in the language a refusal would be (--lang, then $CREDITMODEL_LANG); the English is
argparse's layout of the kit's English texts, as before they moved to the catalogue."""

import argparse
import re

import pytest

from creditmodel.cli import build_parser, main
from creditmodel.cli_usage import HelpFormatter, _width
from creditmodel.texts import catalogue

CHINESE = re.compile(r"[\u4e00-\u9fff]")


def _parsers(parser, path=()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def _helps(parser):
    """(id, help) of each line a parser's --help shows: its options, its sub-commands and its own line."""
    yield "_", parser.description
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from ((f"{line.dest}._", line.help) for line in action._choices_actions)
        else:
            yield "/".join(action.option_strings) or action.dest, action.help


def test_every_command_and_option_has_its_help_in_both_languages():
    en, zh = dict(_parsers(build_parser("en"))), dict(_parsers(build_parser("zh")))
    assert en.keys() == zh.keys() and len(en) == 26
    lines = 0
    for path in en:
        pairs = list(zip(_helps(en[path]), _helps(zh[path]), strict=True))
        for (id_en, said_en), (id_zh, said_zh) in pairs:
            assert id_en == id_zh
            assert said_en and not CHINESE.search(said_en), (path, id_en)
            assert CHINESE.search(said_zh), (path, id_zh, said_zh)
            assert said_en.count("%") == said_zh.count("%"), (path, id_en)  # argparse %-formats each help
            lines += 1
        for lang, parser in (("en", en[path]), ("zh", zh[path])):
            assert parser.format_help().startswith("用法: " if lang == "zh" else "usage: ")
    assert lines > 200


def test_no_help_text_is_left_unused():
    """Each ``help.*`` text is the line of one command or option, or shared by several (``help.common``)."""
    used, common = {"help.parser.usage", "help.parser.positionals", "help.parser.options", "help.parser.help"}, set()
    texts = catalogue("en")
    for path, parser in _parsers(build_parser("en")):
        used.add(".".join(("help", *path, "_")))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
                continue
            longs = [o for o in action.option_strings if o.startswith("--")]
            option = longs[0][2:] if longs else action.dest
            own = ".".join(("help", *path, option))
            if own in texts:
                used.add(own)
                assert texts[own] != texts.get(f"help.common.{option}"), own  # said once, in help.common
            else:
                common.add(f"help.common.{option}")
    assert {k for k in texts if k.startswith("help.")} == used | common


def _help(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0
    out = capsys.readouterr()
    assert out.err == ""
    return out.out


def test_help_is_said_in_the_commands_language(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("CREDITMODEL_LANG", raising=False)
    english = _help(["run", "--help"], capsys)
    assert english.startswith("usage: creditmodel run [-h]")
    assert "\noptions:\n" in english and "show this help message and exit" in english
    assert "replace an earlier output of creditmodel even if files in it were changed since" in " ".join(english.split())
    assert "\nthe main job: features, models, MLflow, SHAP, bundle, pricing\n" in english
    assert not CHINESE.search(english)

    monkeypatch.setenv("CREDITMODEL_LANG", "zh")
    chinese = _help(["run", "--help"], capsys)
    assert chinese.startswith("用法: creditmodel run [-h]")
    zh = catalogue("zh")
    assert f"\n{zh['help.parser.options']}:\n" in chinese
    for id_ in ("help.run._", "help.run.lang", "help.common.force", "help.parser.help"):
        assert "".join(zh[id_].split()) in "".join(chinese.split()), id_  # wrapped over lines, not changed
    assert "--tracking-uri TRACKING_URI" in chinese  # the options and their values are typed as they are

    monkeypatch.setenv("CREDITMODEL_LANG", "en")
    assert _help(["run", "--lang", "zh", "--help"], capsys) == chinese  # --lang wins over the variable
    top = _help(["--help"], capsys)
    assert top.startswith("usage: creditmodel [-h]") and "serve PDs, grades, reason codes and prices" in top


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_chinese_help_fits_the_terminal(columns, monkeypatch):
    """A Chinese character takes two columns: lines are wrapped by the columns they take, not their length."""
    monkeypatch.setenv("COLUMNS", str(columns))
    for path, parser in _parsers(build_parser("zh")):
        for line in parser.format_help().splitlines():
            # argparse never breaks an option with its value, nor a long path or address
            if _width(line) > columns:
                assert not CHINESE.search(line) or max(map(len, line.split())) > columns // 3, (path, line)


def test_wrapping_breaks_between_chinese_characters_and_around_english_words():
    f = HelpFormatter("creditmodel")
    lines = f._split_lines("导出包目录，启动时校验 --store duckdb:///path 的特征目录" * 3, 24)
    assert all(_width(line) <= 24 for line in lines)
    assert "".join(lines).replace(" ", "") == ("导出包目录，启动时校验 --store duckdb:///path 的特征目录" * 3).replace(" ", "")
    assert all("--store" in line or "--st" not in line for line in lines)  # an English word is never cut
    assert f._split_lines("plain English is wrapped by argparse", 10) == ["plain", "English is", "wrapped by",
                                                                          "argparse"]


def test_chinese_punctuation_never_begins_a_line():
    f = HelpFormatter("creditmodel")
    assert f._split_lines("一二三四五，六", 10) == ["一二三四", "五，六"]  # not "，六" on a line of its own
    for _, parser in _parsers(build_parser("zh")):
        assert not re.search(r"^\s*[，。、；：）]", parser.format_help(), re.M), parser.prog
