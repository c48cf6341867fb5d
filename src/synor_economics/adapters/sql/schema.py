"""The SQL schema as the ``Schema`` the faces see: backend, location, revision, upgrade."""

from __future__ import annotations

from sqlalchemy import Engine

from synor_economics.adapters.sql import migrate
from synor_economics.adapters.sql.engine import describe_url


class SqlSchema:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @property
    def location(self) -> str:
        return describe_url(self.engine.url.render_as_string(hide_password=False))

    def current(self) -> str | None:
        return migrate.current_revision(self.engine)

    def head(self) -> str | None:
        return migrate.head_revision(self.engine)

    def upgrade(self) -> None:
        migrate.upgrade(self.engine)
