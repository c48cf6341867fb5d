"""JSON documents of metering, shared by the API and the CLI's ``--json``: ingest answers,
period usage, dead letters. Quantities are exact decimal strings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import msgspec

from synor_economics.domain.usage import DeadLetter, EventOutcome, EventStatus, Replacement
from synor_economics.services.time import from_us, instant
from synor_economics.services.usage import Outcomes, PeriodUsage


def ingest_summary(outcomes: Sequence[EventOutcome]) -> dict[str, int]:
    """How many events of a batch were accepted, duplicates, conflicts, rejected."""
    counts = (
        outcomes.counts()
        if isinstance(outcomes, Outcomes)  # counted from its statuses: no object per event
        else Counter(outcome.status for outcome in outcomes)
    )
    return {status.value: counts.get(status, 0) for status in EventStatus}


def outcome_document(outcome: EventOutcome) -> dict[str, Any]:
    document: dict[str, Any] = {
        "index": outcome.index,
        "id": outcome.id,
        "status": outcome.status.value,
    }
    if outcome.reason:
        document["field"] = outcome.field
        document["reason"] = outcome.reason
    return document


def ingest_document(outcomes: Sequence[EventOutcome]) -> dict[str, Any]:
    return {
        **ingest_summary(outcomes),
        "events": [outcome_document(outcome) for outcome in outcomes],
    }


class _Plain(msgspec.Struct):
    """An event's outcome document without a problem (``outcome_document``'s three fields;
    msgspec writes the status, a string enum, as its value)."""

    index: int
    id: str
    status: EventStatus


def encoded_ingest_document(outcomes: Sequence[EventOutcome]) -> bytes:
    """``ingest_document`` as JSON, made for answering a request: the events taken as columns
    become msgspec structs straight from them (``Outcomes.mapped``), without an outcome object
    and a dict each, a fifth of the time for a batch of 1,000."""
    if not isinstance(outcomes, Outcomes):
        return _encode(ingest_document(outcomes))
    events = outcomes.mapped(_Plain, outcome_document)
    return _encode({**ingest_summary(outcomes), "events": events})


_encode = msgspec.json.Encoder().encode


def usage_document(usage: PeriodUsage) -> dict[str, Any]:
    return {
        "account": usage.account,
        "period": usage.period,
        "start": instant(usage.start),
        "end": instant(usage.end),
        "as_of": instant(usage.as_of),
        "resources": [
            {
                "resource": row.resource.id,
                "meter": row.resource.meter.value,
                "raw_quantity": format(row.raw, "f"),
                "raw_unit": _raw_unit(row.resource.event_unit, row.resource.meter.value),
                "quantity": usage.billable_text(row),
                "unit": row.resource.price_unit,
                "events": row.events,
            }
            for row in usage.resources
        ],
    }


def _raw_unit(event_unit: str, meter: str) -> str:
    """A counter sums event units; a gauge integrates them over time."""
    return event_unit if meter == "counter" else f"{event_unit}-seconds"


def dead_letter_document(letter: DeadLetter) -> dict[str, Any]:
    return {
        "seq": letter.seq,
        "received": instant(from_us(letter.received_us)),
        "source": letter.source,
        "status": letter.status.value,
        "account": letter.account,
        "id": letter.event_id,
        "field": letter.field,
        "reason": letter.reason,
        "body": letter.body,
    }


def dead_letters_page(letters: Sequence[DeadLetter], limit: int) -> dict[str, Any]:
    """A page of dead letters, newest first; ``next_before`` continues it (null at the end)."""
    last = letters[-1].seq if len(letters) == limit and letters else None
    return {
        "dead_letters": [dead_letter_document(letter) for letter in letters],
        "next_before": last,
    }


def replacement_document(replacement: Replacement) -> dict[str, Any]:
    return {
        "replacement": replacement.seq,
        "account": replacement.account,
        "from": instant(from_us(replacement.start_us)),
        "to": instant(from_us(replacement.end_us)),
        "created": instant(from_us(replacement.created_us)),
        "state": "active" if replacement.active else "reverted",
        "reverted": instant(from_us(replacement.reverted_us))
        if replacement.reverted_us is not None
        else None,
        "superseded": replacement.superseded,
        "added": replacement.added,
        "note": replacement.note,
    }
