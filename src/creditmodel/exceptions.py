"""One exception type per boundary; each message names the table/field/value and what was expected.

An error a person reads at the service (a refused request) is raised with ``of(text_id, **fields)``: its
message is a text of the message catalogue (``creditmodel.texts``), so ``in_lang("zh")`` gives it in
Simplified Chinese while ``str()`` stays the English.
"""

from __future__ import annotations

from typing import Any


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): what a one-line error
    quotes of a library's multi-line message."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class Texted:
    """An error whose message may be a text of the message catalogue: ``text_id`` and its ``fields``."""

    text_id: str | None = None
    fields: dict[str, Any] = {}  # noqa: RUF012 - replaced per instance by `of`, never mutated

    @classmethod
    def of(cls, text_id: str, /, **fields: Any) -> Any:
        """The error whose message is the catalogue's text `text_id` (English) with `fields` filled in."""
        from creditmodel.texts import text  # here: the message catalogue imports this module

        exc = cls(text(text_id, "en", **fields))  # type: ignore[call-arg]  # with Exception, which takes it
        exc.text_id, exc.fields = text_id, fields
        return exc

    def in_lang(self, lang: str) -> str | None:
        """The message in `lang`; None when it is not a catalogue text (English only)."""
        if self.text_id is None:
            return None
        from creditmodel.texts import text

        return text(self.text_id, lang, **self.fields)


class CreditModelError(Texted, Exception):
    """Base class of every error creditmodel raises on purpose at a boundary."""


class TextedValueError(Texted, ValueError):
    """A ValueError of a request validator (pydantic turns it into a value_error) whose message is a
    catalogue text, so the service answers it in every language."""


class DataContractError(CreditModelError):
    """Input tables do not meet the canonical schema (missing table/column, bad value, ...).

    The message is one line (the first failure and the count of the others); ``failures`` lists
    every failure found, one line each, for `data check` and the run to print.
    """

    def __init__(self, message: str, failures: list[str] | tuple[str, ...] = (),
                 failures_by_lang: dict[str, list[str] | tuple[str, ...]] | None = None) -> None:
        super().__init__(message)
        self.failures: tuple[str, ...] = tuple(failures) or (message,)
        self.failures_by_lang = {lang: tuple(lines) for lang, lines in (failures_by_lang or {}).items()}

    def failures_in(self, lang: str) -> tuple[str, ...]:
        """Every failure, one line each, in `lang` where they were said in it (else as raised); one failure:
        the message itself in `lang`."""
        if lang in self.failures_by_lang:
            return self.failures_by_lang[lang]
        if len(self.failures) == 1 and self.failures[0] == str(self):
            return (self.in_lang(lang) or str(self),)
        return self.failures


class ConfigError(CreditModelError):
    """A configuration value or command-line argument is invalid."""


class BundleError(CreditModelError):
    """An export bundle is missing, incomplete, tampered with or of an unknown version."""


class RequestError(CreditModelError):
    """A scoring or pricing request does not match the bundle's feature schema."""


class RegistryError(CreditModelError):
    """A model-registry action is refused: unknown run, model or alias, or a failed validation."""


class StoreError(CreditModelError):
    """A feature store is missing, unreadable, or lacks what the bundle's feature catalogue reads."""
