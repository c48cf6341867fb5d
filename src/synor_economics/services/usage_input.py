"""Turning request bodies and files into raw events for :meth:`UsageService.ingest`.

Decoding is shared so the HTTP API and ``synor usage ingest`` read NDJSON the same way, and a
malformed document is reported with the line and column where it breaks. JSON numbers are
decoded as they are (a quantity sent as a number is then rejected by validation, by name): the
decoder does not guess that ``7200.0`` meant the string ``"7200"``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from synor_economics.domain.errors import SynorError
from synor_economics.domain.usage import MAX_BATCH


class InputError(SynorError, ValueError):
    """A body or file that is not well-formed JSON / NDJSON / CSV: says where."""


class BatchTooLargeError(InputError):
    """More events in one request than ``MAX_BATCH``."""


def decode_body(body: bytes, *, ndjson: bool) -> list[Any]:
    """A request body as raw events: one JSON object, a JSON array, or NDJSON lines."""
    text = _text(body)
    events = list(_ndjson_lines(text.splitlines())) if ndjson else _json_document(text)
    if len(events) > MAX_BATCH:
        raise BatchTooLargeError(f"{len(events)} events in one request; at most {MAX_BATCH}")
    return events


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"body is not UTF-8 (byte {error.start})") from None


def _json_document(text: str) -> list[Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(
            f"malformed JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    return document if isinstance(document, list) else [document]


def _ndjson_lines(lines: Iterator[str] | list[str], first_line: int = 1) -> Iterator[Any]:
    for number, line in enumerate(lines, start=first_line):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(
                f"malformed JSON at line {number}, column {error.colno}: {error.msg}"
            ) from None
