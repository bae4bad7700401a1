"""The command line's own refusals (a flag missing, mistyped or unknown), said in the language of the command.

argparse writes its refusals in English. An officer who runs ``creditmodel`` with ``--lang zh`` or
``CREDITMODEL_LANG=zh`` reads every other error line in Chinese, so these are said from the message catalogue
too (``error.usage.*``): each of argparse's messages (Python 3.11) is matched to a text whose English is
exactly argparse's, and a flag's value refused by one of the kit's own converters carries its text. A message
argparse words otherwise is kept in English inside the Chinese line, never dropped.
"""

from __future__ import annotations

import argparse
import contextvars
import functools
import os
import re
import sys
import unicodedata
from collections.abc import Sequence
from typing import Any, NoReturn

from creditmodel.exceptions import Texted
from creditmodel.texts import DEFAULT_LANG, LANGS, Phrase, has_text, text

ENV_LANG = "CREDITMODEL_LANG"  # the language of a command's error lines when neither --lang nor its configuration says
EXIT_ERROR = 2

_LANG: contextvars.ContextVar[str] = contextvars.ContextVar("creditmodel_usage_lang", default=DEFAULT_LANG)

# argparse's messages, each the English of one catalogue text (its fields are the named groups)
_MESSAGES = tuple((re.compile(pattern), f"error.usage.{id_}") for pattern, id_ in (
    (r"the following arguments are required: (?P<args>.+)", "required"),
    (r"unrecognized arguments: (?P<args>.+)", "unrecognized"),
    (r"one of the arguments (?P<args>.+) is required", "one_of"),
    (r"ambiguous option: (?P<option>\S+) could match (?P<matches>.+)", "ambiguous"),
    (r"invalid choice: (?P<value>.+) \(choose from (?P<choices>.+)\)", "choice"),
    (r"invalid (?P<type>\S+) value: (?P<value>.+)", "type"),
    (r"expected one argument", "one_value"),
    (r"expected at most one argument", "at_most_one_value"),
    (r"expected at least one argument", "at_least_one_value"),
    (r"expected (?P<n>\d+) arguments?", "n_values"),
    (r"not allowed with argument (?P<other>.+)", "not_with"),
    (r"ignored explicit argument (?P<value>.+)", "explicit"),
))


class FlagValueError(Texted, argparse.ArgumentTypeError):
    """A flag's value refused by one of the kit's converters (``type=`` of an argument): a catalogue text."""


def argv_lang(argv: Sequence[str]) -> str:
    """The language a command's refusal is said in: its ``--lang`` (when valid), else $CREDITMODEL_LANG, else
    English. Read from the raw arguments, as the refusal comes before they are parsed."""
    for i, arg in enumerate(argv):
        value = arg.partition("=")[2] if arg.startswith("--lang=") else (
            argv[i + 1] if arg == "--lang" and i + 1 < len(argv) else None)
        if value in LANGS:
            return value
    env = os.environ.get(ENV_LANG)
    return env if env in LANGS else DEFAULT_LANG


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """`parser`'s parse of `argv` (default: the process's arguments), its refusals said in ``argv_lang``."""
    args = list(sys.argv[1:] if argv is None else argv)
    token = _LANG.set(argv_lang(args))
    try:
        return parser.parse_args(args)
    finally:
        _LANG.reset(token)


def _phrase(message: str) -> Phrase | None:
    """The catalogue text of one of argparse's messages, when its English is exactly that message."""
    for pattern, id_ in _MESSAGES:
        match = pattern.fullmatch(message)
        if match and text(id_, "en", **match.groupdict()) == message:
            return Phrase(id_, match.groupdict())
    return None


def usage_message(message: str, error: BaseException | None = None) -> Phrase | str:
    """argparse's refusal `message` as a catalogue text (a Phrase); `error`: the ArgumentError being handled,
    whose cause may be a converter's own text. What matches no text stays as argparse wrote it."""
    if isinstance(error, argparse.ArgumentError) and error.argument_name and str(error) == message:
        cause = error.__context__
        detail: Phrase | str | None = (Phrase(cause.text_id, cause.fields)
                                       if isinstance(cause, Texted) and cause.text_id is not None
                                       and str(cause) == error.message else _phrase(error.message))
        if detail is not None:
            return Phrase("error.usage.argument", {"argument": error.argument_name, "detail": detail})
        return message
    return _phrase(message) or message


class Parser(argparse.ArgumentParser):
    """argparse with one-line refusals, like every other boundary of creditmodel, in the command's language."""

    def error(self, message: str) -> NoReturn:
        said = usage_message(message, sys.exc_info()[1])
        self.exit(EXIT_ERROR, text("cli.usage_error", _LANG.get(), prog=self.prog, msg=said) + "\n")


def _width(s: str) -> int:
    """Columns `s` takes in a terminal: two for a wide (CJK) character, one for any other."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help layout with its "usage: " in the command's language, and lines wrapped by the columns
    they take: a Chinese character is two columns wide and may end a line anywhere, an English word may not."""

    def __init__(self, prog: str, *, usage_prefix: str = "usage: ", **kwargs: Any) -> None:
        super().__init__(prog, **kwargs)
        self._usage_prefix = usage_prefix

    def add_usage(self, usage: str | None, actions: Any, groups: Any, prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, self._usage_prefix if prefix is None else prefix)

    def _split_lines(self, text: str, width: int) -> list[str]:
        return _wrap(text, width) if _width(text) > len(text) else super()._split_lines(text, width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if _width(text) == len(text):  # no wide characters: argparse's own wrapping
            return super()._fill_text(text, width, indent)
        return "\n".join(indent + line for line in _wrap(text, width - len(indent)))


_NO_LINE_START = "，。、；：）！？》」"  # Chinese punctuation that never begins a line


def _wrap(text: str, width: int) -> list[str]:
    """`text`'s words and wide characters in lines of at most `width` columns (a longer word has one alone)."""
    lines, line = [], ""
    for token in re.findall(r"[!-~]+ *| +|[^\x00-\x7f] *", " ".join(text.split())):  # word, space or character
        if line and _width(line + token.rstrip()) > width:
            if token[0] in _NO_LINE_START and len(line) > 1 and not line[-1].isspace():
                line, token = line[:-1], line[-1] + token  # the character before goes down with it
            lines.append(line.rstrip())
            line = token.lstrip()
        else:
            line += token
    return [*lines, line.rstrip()] if line.strip() else lines


def help_in(parser: argparse.ArgumentParser, lang: str, path: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """`parser` with its --help said in `lang`: its own line, each option's and argparse's headings, from the
    catalogue's ``help.<command path>.<option>`` (else ``help.common.<option>``); returns `parser`."""
    def said(option: str) -> str:
        own = ".".join(("help", *path, option))
        return text(own if has_text(own, lang) else f"help.common.{option}", lang)

    parser.description = said("_")
    parser.formatter_class = functools.partial(HelpFormatter, usage_prefix=text("help.parser.usage", lang))
    # argparse's two headings are attributes of the parser's own argument groups, set when it is made
    parser._positionals.title = text("help.parser.positionals", lang)
    parser._optionals.title = text("help.parser.options", lang)
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            action.help = text("help.parser.help", lang)
        elif isinstance(action, argparse._SubParsersAction):
            for line in action._choices_actions:  # the sub-commands' lines in this parser's help
                line.help = text(".".join(("help", *path, line.dest, "_")), lang)
            for name, sub in action.choices.items():
                help_in(sub, lang, (*path, name))
        else:
            longs = [o for o in action.option_strings if o.startswith("--")]
            action.help = said(longs[0][2:] if longs else action.dest)
    return parser
