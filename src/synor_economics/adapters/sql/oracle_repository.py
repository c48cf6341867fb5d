"""The oracle's storage over SQLAlchemy Core: source readings, rounds and contract deployments.

Rationals (accumulator units, quotes, prices) are stored as exact ``n/d`` text; accumulators as
unbounded integers. Nothing here is summed in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from synor_economics.adapters.sql.tables import chain_deployments, oracle_readings, oracle_rounds
from synor_economics.ports import Deployment, OracleRound, PriceReading


def _text(value: Fraction | None) -> str | None:
    return None if value is None else str(value)


def _fraction(value: str | None) -> Fraction | None:
    return None if value is None else Fraction(value)


def _reading(row: Any) -> PriceReading:
    return PriceReading(
        source=row.source,
        timestamp=int(row.at),
        cumulative=row.cumulative,
        unit=Fraction(row.unit),
        spot=_fraction(row.spot),
        liquidity=Fraction(row.liquidity),
        twap=_fraction(row.twap),
        history=int(row.history),
    )


def _round(row: Any) -> OracleRound:
    return OracleRound(
        round=int(row.round),
        at=int(row.at),
        price=_fraction(row.price),
        low=_fraction(row.low),
        high=_fraction(row.high),
        quorum_met=bool(row.quorum_met),
        detail=row.detail,
        submitted=row.submitted,
    )


class SqlOracleRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add_readings(self, readings: Sequence[PriceReading]) -> None:
        for reading in readings:
            key = (oracle_readings.c.source == reading.source) & (
                oracle_readings.c.at == reading.timestamp
            )
            if self.conn.execute(select(oracle_readings.c.at).where(key)).first() is not None:
                continue  # two rounds in one second read the same block: keep the first
            self.conn.execute(
                insert(oracle_readings),
                {
                    "source": reading.source,
                    "at": reading.timestamp,
                    "cumulative": reading.cumulative,
                    "unit": str(reading.unit),
                    "spot": _text(reading.spot),
                    "liquidity": str(reading.liquidity),
                    "twap": _text(reading.twap),
                    "history": reading.history,
                },
            )

    def reading_at_or_before(self, source: str, at: int) -> PriceReading | None:
        row = self.conn.execute(
            select(oracle_readings)
            .where(oracle_readings.c.source == source, oracle_readings.c.at <= at)
            .order_by(oracle_readings.c.at.desc())
            .limit(1)
        ).first()
        return None if row is None else _reading(row)

    def oldest_reading(self, source: str) -> PriceReading | None:
        row = self.conn.execute(
            select(oracle_readings)
            .where(oracle_readings.c.source == source)
            .order_by(oracle_readings.c.at)
            .limit(1)
        ).first()
        return None if row is None else _reading(row)

    def spots(self, source: str, start: int, end: int) -> list[tuple[int, Fraction]]:
        before = self.reading_at_or_before(source, start - 1)
        rows = self.conn.execute(
            select(oracle_readings.c.at, oracle_readings.c.spot)
            .where(
                oracle_readings.c.source == source,
                oracle_readings.c.at >= start,
                oracle_readings.c.at <= end,
                oracle_readings.c.spot.is_not(None),
            )
            .order_by(oracle_readings.c.at)
        ).all()
        points = [(int(at), Fraction(spot)) for at, spot in rows]
        if before is not None and before.spot is not None:
            points.insert(0, (before.timestamp, before.spot))
        return points

    def prune_readings(self, before: int) -> int:
        result = self.conn.execute(delete(oracle_readings).where(oracle_readings.c.at < before))
        return int(result.rowcount or 0)

    def add_round(self, row: OracleRound) -> None:
        self.conn.execute(
            insert(oracle_rounds),
            row._asdict()
            | {"price": _text(row.price), "low": _text(row.low), "high": _text(row.high)},
        )

    def set_submitted(self, round_number: int, submitted: str) -> None:
        self.conn.execute(
            update(oracle_rounds)
            .where(oracle_rounds.c.round == round_number)
            .values(submitted=submitted)
        )

    def next_round(self) -> int:
        last = self.conn.execute(select(func.max(oracle_rounds.c.round))).scalar()
        return 1 if last is None else int(last) + 1

    def last_round(self, *, good: bool = False) -> OracleRound | None:
        query = select(oracle_rounds).order_by(oracle_rounds.c.round.desc()).limit(1)
        if good:
            query = query.where(oracle_rounds.c.quorum_met.is_(True))
        row = self.conn.execute(query).first()
        return None if row is None else _round(row)

    def rounds(self, start: int, end: int) -> list[OracleRound]:
        rows = self.conn.execute(
            select(oracle_rounds)
            .where(oracle_rounds.c.at >= start, oracle_rounds.c.at <= end)
            .order_by(oracle_rounds.c.round)
        ).all()
        return [_round(row) for row in rows]

    def good_points(self, start: int, end: int) -> list[tuple[int, Fraction]]:
        good = oracle_rounds.c.quorum_met.is_(True)
        before = self.conn.execute(
            select(oracle_rounds.c.at, oracle_rounds.c.price)
            .where(good, oracle_rounds.c.at < start)
            .order_by(oracle_rounds.c.round.desc())
            .limit(1)
        ).first()
        rows = self.conn.execute(
            select(oracle_rounds.c.at, oracle_rounds.c.price)
            .where(good, oracle_rounds.c.at >= start, oracle_rounds.c.at <= end)
            .order_by(oracle_rounds.c.round)
        ).all()
        points = [(int(at), Fraction(price)) for at, price in rows]
        if before is not None:
            points.insert(0, (int(before.at), Fraction(before.price)))
        return points

    def deployment(self, chain_id: int, genesis: str) -> Deployment | None:
        rows = self.conn.execute(
            select(
                chain_deployments.c.name,
                chain_deployments.c.address,
                chain_deployments.c.first_block,
            ).where(
                chain_deployments.c.chain_id == chain_id, chain_deployments.c.genesis == genesis
            )
        ).all()
        if not rows:
            return None
        return Deployment(
            {str(name): str(address) for name, address, _ in rows},
            min(int(block) for _, _, block in rows),
        )

    def add_deployment(
        self, chain_id: int, genesis: str, deployment: Deployment, now_us: int
    ) -> None:
        self.conn.execute(
            insert(chain_deployments),
            [
                {
                    "chain_id": chain_id,
                    "genesis": genesis,
                    "name": name,
                    "address": address,
                    "first_block": deployment.first_block,
                    "deployed_us": now_us,
                }
                for name, address in sorted(deployment.addresses.items())
            ],
        )
