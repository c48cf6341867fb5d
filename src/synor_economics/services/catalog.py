"""The price book as a use case: which catalog is in force, and its rows at a given time."""

from __future__ import annotations

from datetime import datetime

from synor_economics.domain.catalog import Catalog, PriceRow, Resource


class CatalogService:
    """Serves the loaded price book. Loading (and validating) happens once, at start-up."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    def current(self) -> Catalog:
        return self._catalog

    def rows_at(self, when: datetime) -> list[tuple[Resource, PriceRow | None]]:
        """Every resource with the price row in effect at ``when`` (None before its first row)."""
        result: list[tuple[Resource, PriceRow | None]] = []
        for resource in self._catalog:
            effective = [row for row in resource.prices if row.effective_from <= when]
            result.append((resource, effective[-1] if effective else None))
        return result
