"""The JSON documents of the oracle and of chain payments, shared by the API and the CLI's
``--json`` so the two always agree. Prices are decimal strings (18 places at most), amounts
strings of integer base units, times RFC 3339 UTC."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from synor_economics.domain.errors import SynorError
from synor_economics.domain.money import decimal_text, format_synor
from synor_economics.ports import OracleRound, PaymentRow
from synor_economics.services.oracle import OraclePrice, Twap


class WindowError(SynorError, ValueError):
    """A duration that is not one."""


_DURATION = re.compile(r"(\d+)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_window(text: str) -> int:
    """``90s``, ``30m``, ``24h``, ``7d`` or plain seconds."""
    if text.isdigit() and int(text) > 0:
        return int(text)
    match = _DURATION.fullmatch(text.strip())
    if match is None or int(match[1]) == 0:
        raise WindowError(f"{text!r} is not a duration such as 30m, 24h or 7d")
    return int(match[1]) * _SECONDS[match[2]]


def when(seconds: int) -> str:
    """Seconds as RFC 3339 UTC."""
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def price_document(price: OraclePrice) -> dict[str, object]:
    return {
        "pair": "SYNOR/USD",
        "price": decimal_text(price.price),
        "low": decimal_text(price.low),
        "high": decimal_text(price.high),
        "at": when(price.at),
        "age_seconds": price.age,
        "round": price.round,
        "stale": price.stale,
        "reason": price.reason,
    }


def round_document(row: OracleRound) -> dict[str, object]:
    return {
        "round": row.round,
        "at": when(row.at),
        "price": None if row.price is None else decimal_text(row.price),
        "low": None if row.low is None else decimal_text(row.low),
        "high": None if row.high is None else decimal_text(row.high),
        "quorum_met": row.quorum_met,
        "sources": json.loads(row.detail),
        "submitted": None if row.submitted is None else json.loads(row.submitted),
    }


def twap_document(twap: Twap) -> dict[str, object]:
    return {
        "pair": "SYNOR/USD",
        "arithmetic": decimal_text(twap.arithmetic),
        "geometric": decimal_text(twap.geometric),
        "start": when(twap.start),
        "end": when(twap.end),
        "window_seconds": twap.end - twap.start,
        "rounds": twap.points,
    }


def payment_document(row: PaymentRow) -> dict[str, object]:
    payment = row.payment
    return {
        "key": payment.key,
        "kind": payment.kind,
        "status": row.status,
        "note": row.note,
        "block": payment.block_number,
        "payer": payment.payer,
        "receiver": payment.receiver,
        "amount": str(payment.amount),
        "amount_synor": format_synor(payment.amount),
        "invoice": payment.reference,
    }
