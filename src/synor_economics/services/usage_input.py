"""Request bodies and files (NDJSON, CSV, Parquet) as raw events for ``UsageService.ingest``.

Decoding is shared so the HTTP API and ``synor usage ingest`` read NDJSON the same way, and a
malformed document is reported with the line and column where it breaks. JSON numbers are
decoded as they are (a quantity sent as a number is then rejected by validation, by name): the
decoder does not guess that ``7200.0`` meant the string ``"7200"``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import msgspec

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


def decode_json(data: str | bytes) -> Any:
    """One JSON document, decoded with msgspec (several times faster than ``json`` on the hot
    path). What msgspec refuses is decoded again with ``json``: to say where a malformed
    document breaks, and so that what ``json`` accepts (``NaN``, say, which validation then
    refuses by name) is not reported as malformed."""
    try:
        return _decode(data)
    except msgspec.DecodeError:
        try:
            return json.loads(data)
        except json.JSONDecodeError as error:
            raise InputError(
                f"malformed JSON at line {error.lineno}, column {error.colno}: {error.msg}"
            ) from None
        except UnicodeDecodeError as error:
            raise InputError(f"not UTF-8 (byte {error.start})") from None


_decode = msgspec.json.Decoder().decode


def _json_document(text: str) -> list[Any]:
    document = decode_json(text)
    return document if isinstance(document, list) else [document]


def _ndjson_lines(lines: Iterable[str | bytes], first_line: int = 1) -> Iterator[Any]:
    for number, line in enumerate(lines, start=first_line):
        if line.strip():
            yield decode_line(line, number)


def decode_line(line: str | bytes, number: int) -> Any:
    """One NDJSON line (its line end, if any, ignored), decoded; a malformed one is reported at
    its line ``number``."""
    try:
        return decode_json(line.rstrip(b"\r\n") if isinstance(line, bytes) else line.rstrip("\r\n"))
    except InputError as error:
        raise InputError(str(error).replace("line 1,", f"line {number},", 1)) from None


FORMATS = ("ndjson", "csv", "parquet")


class Lines(Sequence[object]):
    """A batch of NDJSON lines (not blank), with the line number of each in its file: as a
    sequence, the events they hold, each decoded when it is asked for (the columnar path reads
    the lines themselves and leaves only a few to decode). A malformed line is an
    ``InputError`` that says where it is."""

    __slots__ = ("lines", "numbers")

    def __init__(self, lines: list[bytes], numbers: list[int]) -> None:
        self.lines = lines
        self.numbers = numbers

    def __len__(self) -> int:
        return len(self.lines)

    def __getitem__(self, row: int) -> object:  # type: ignore[override]
        return decode_line(self.lines[row], self.numbers[row])

    def __iter__(self) -> Iterator[object]:
        return map(decode_line, self.lines, self.numbers)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A batch of raw events read from a file (NDJSON as its :class:`Lines`), and how far into
    the file it reaches (in the file's own measure: bytes for text files, rows for Parquet)."""

    events: Sequence[object]
    position: int


def events_of(chunk: Chunk) -> Sequence[object]:
    """A chunk's raw events: what ``UsageService.ingest_all`` asks of each batch."""
    return chunk.events


def file_format(path: Path, given: str | None = None) -> str:
    """The format named, or the one the file's extension says."""
    if given is not None:
        if given not in FORMATS:
            raise InputError(f"unknown format {given!r}; use one of {', '.join(FORMATS)}")
        return given
    suffix = path.suffix.lower().lstrip(".")
    named = {"jsonl": "ndjson", "ndjson": "ndjson", "json": "ndjson", "csv": "csv"}
    if suffix in named:
        return named[suffix]
    if suffix in ("parquet", "pq"):
        return "parquet"
    raise InputError(f"cannot tell the format of {path.name}; pass --format ({', '.join(FORMATS)})")


def file_size(path: Path, fmt: str) -> int:
    """The file's length in the measure :class:`Chunk` positions use."""
    if fmt == "parquet":
        import pyarrow.parquet as pq  # noqa: PLC0415 - heavy, only for Parquet files

        return int(pq.ParquetFile(path).metadata.num_rows)
    return path.stat().st_size


def read_events(path: Path, fmt: str, batch: int) -> Iterator[Chunk]:
    """Raw events from an NDJSON, CSV or Parquet file, ``batch`` at a time."""
    if fmt == "parquet":
        yield from _parquet_chunks(path, batch)
        return
    if fmt == "ndjson":
        yield from _ndjson_chunks(path, batch)
        return
    with path.open("rb") as handle:
        # The CSV reader's text layer is made here, not in the row generator: it must live as
        # long as the file (dropping it would close the file under the last ``tell``).
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        rows = _csv_rows(text)
        events: list[Any] = []
        for event in rows:
            events.append(event)
            if len(events) == batch:
                yield Chunk(events, handle.tell())
                events = []
        if events:
            yield Chunk(events, handle.tell())


def _ndjson_chunks(path: Path, batch: int) -> Iterator[Chunk]:
    """An NDJSON file's non-blank lines, ``batch`` at a time, as they are: decoding is the
    ingest service's (a column at a time, see ``usage_columns``)."""
    with path.open("rb") as handle:
        lines: list[bytes] = []
        numbers: list[int] = []
        for number, line in enumerate(handle, start=1):
            if line.strip():
                lines.append(line)
                numbers.append(number)
                if len(lines) == batch:
                    yield Chunk(Lines(lines, numbers), handle.tell())
                    lines, numbers = [], []
        if lines:
            yield Chunk(Lines(lines, numbers), handle.tell())


def _csv_rows(text: TextIO) -> Iterator[Any]:
    """CSV with a header naming event fields; empty cells are absent fields, ``meta`` is JSON."""
    reader = csv.DictReader(text)
    for row in reader:
        event: dict[str, Any] = {k: v for k, v in row.items() if k is not None and v != ""}
        if None in row:
            event["_extra_columns"] = row[None]
        if "meta" in event:
            try:
                event["meta"] = json.loads(event["meta"])
            except json.JSONDecodeError as error:
                raise InputError(
                    f"line {reader.line_num}: meta is not a JSON object: {error.msg}"
                ) from None
        yield event


def _parquet_chunks(path: Path, batch: int) -> Iterator[Chunk]:
    import pyarrow.parquet as pq  # noqa: PLC0415 - heavy, only for Parquet files

    done = 0
    for record_batch in pq.ParquetFile(path).iter_batches(batch_size=batch):
        events = [_parquet_event(row) for row in record_batch.to_pylist()]
        done += len(events)
        yield Chunk(events, done)


def _parquet_event(row: dict[str, Any]) -> dict[str, Any]:
    """A Parquet row as a raw event: exact decimals and integers become decimal strings and
    timestamps RFC 3339 (naive ones are read as UTC); floats stay floats, to be refused."""
    return {key: _parquet_value(key, value) for key, value in row.items() if value is not None}


def _parquet_value(key: str, value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if key == "meta" and isinstance(value, str):
        return json.loads(value)
    return value
