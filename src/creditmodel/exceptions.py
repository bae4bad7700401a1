"""One exception type per boundary; each message names the table/field/value and what was expected."""


class CreditModelError(Exception):
    """Base class of every error creditmodel raises on purpose at a boundary."""


class DataContractError(CreditModelError):
    """Input tables do not meet the canonical schema (missing table/column, bad value, ...)."""


class ConfigError(CreditModelError):
    """A configuration value or command-line argument is invalid."""


class BundleError(CreditModelError):
    """An export bundle is missing, incomplete, tampered with or of an unknown version."""


class RequestError(CreditModelError):
    """A scoring or pricing request does not match the bundle's feature schema."""


class RegistryError(CreditModelError):
    """A model-registry action is refused: unknown run, model or alias, or a failed validation."""
