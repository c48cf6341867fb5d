"""The errors the domain raises. Each carries enough to tell a user what to fix."""

from __future__ import annotations


class SynorError(Exception):
    """Base of every error this package raises on purpose."""


class MoneyError(SynorError, ValueError):
    """An amount, price or rate that is not exact, not well-formed or out of range."""


class CatalogError(SynorError, ValueError):
    """A price book that does not validate; ``where`` names the place (``resources[3].tiers``)."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}" if where else problem)
        self.where = where
        self.problem = problem


class LedgerError(SynorError):
    """A ledger operation that was refused. ``code`` is stable and machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"LedgerError({self.code!r}, {self.message!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LedgerError) and (self.code, self.message) == (
            other.code,
            other.message,
        )

    def __hash__(self) -> int:
        return hash((self.code, self.message))
