"""How values are written in every JSON document (SPEC §1): base-unit amounts as integer
strings with SYNOR display strings beside them, exact decimals in plain notation. Kept apart
from the documents themselves so the light faces (``synor cost estimate``) import nothing else."""

from __future__ import annotations

from decimal import Decimal

from synor_economics.domain.money import format_synor


def plain(value: Decimal | None) -> str | None:
    """An exact decimal in plain notation (never an exponent); None stays None."""
    return None if value is None else format(value, "f")


def amount_fields(name: str, units: int) -> dict[str, str]:
    """``{"balance": "1500000000000000000", "balance_synor": "1.5"}``."""
    return {name: str(units), f"{name}_synor": format_synor(units)}
