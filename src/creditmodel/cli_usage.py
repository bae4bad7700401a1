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
import os
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from creditmodel.exceptions import Texted
from creditmodel.texts import DEFAULT_LANG, LANGS, Phrase, text

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
