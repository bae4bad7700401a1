"""One exception type per boundary; each message names the table/field/value and what was expected."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): what a one-line error
    quotes of a library's multi-line message."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class CreditModelError(Exception):
    """Base class of every error creditmodel raises on purpose at a boundary."""


class DataContractError(CreditModelError):
    """Input tables do not meet the canonical schema (missing table/column, bad value, ...).

    The message is one line (the first failure and the count of the others); ``failures`` lists
    every failure found, one line each, for `data check` and the run to print.
    """

    def __init__(self, message: str, failures: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.failures: tuple[str, ...] = tuple(failures) or (message,)


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
