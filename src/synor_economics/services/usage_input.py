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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import msgspec

from synor_economics.domain.errors import SynorError
from synor_economics.domain.usage import MAX_BATCH


class InputError(SynorError, ValueError):
    """A body or file that is not well-formed JSON / NDJSON / CSV: says where."""


class BatchTooLargeError(InputError):
    """More events in one request than ``MAX_BATCH``."""


def decode_body(body: bytes, *, ndjson: bool) -> Sequence[object]:
    """A request body as raw events: one JSON object, a JSON array, or NDJSON lines. NDJSON and
    well-formed arrays come as :class:`Lines`, each event's text as it was sent (for the
    columnar path); a malformed line is reported when the service decodes it, before anything
    is stored."""
    _check_utf8(body)
    events = _ndjson_body(body) if ndjson else _json_body(body)
    if len(events) > MAX_BATCH:
        raise BatchTooLargeError(f"{len(events)} events in one request; at most {MAX_BATCH}")
    return events


def _ndjson_body(body: bytes) -> Lines:
    return Lines(*_non_blank(body.splitlines(), 1))


def _non_blank(lines: list[bytes], first: int) -> tuple[list[bytes], Sequence[int]]:
    """The lines that are not blank (whitespace only), with their numbers (``lines`` being
    lines ``first`` on). Blank lines are rare: looked for in C first, a Python step per line
    only when there is one."""
    if all(lines) and not any(map(bytes.isspace, lines)):
        return lines, range(first, first + len(lines))
    numbered = [(number, line) for number, line in enumerate(lines, first) if line.strip()]
    return [line for _, line in numbered], [number for number, _ in numbered]


def _json_body(body: bytes) -> Sequence[object]:
    """An array's items as their texts (msgspec checks the whole document and finds where each
    item starts and ends, without making objects); a single object, or a document msgspec
    refuses (to say where it breaks, or for ``json`` to accept), decoded."""
    if body.lstrip()[:1] == b"[":
        try:
            items = _array_items(body)
        except msgspec.DecodeError:
            pass
        else:
            texts = [bytes(item) for item in items]
            if b"\n" in body or b"\r" in body:  # pretty-printed: each item made one line
                texts = [_one_line(text) for text in texts]
            return Lines(texts, decode=_decode_item)
    return _json_document(body)


def _one_line(text: bytes) -> bytes:
    """A well-formed JSON text on one line: a raw line break in it can only be whitespace
    between tokens (one inside a string is malformed, and msgspec refused it), so a space
    reads the same."""
    return text.replace(b"\r", b" ").replace(b"\n", b" ")


_array_items = msgspec.json.Decoder(list[msgspec.Raw]).decode


def _decode_item(item: bytes, _number: int) -> Any:
    """An array item msgspec has already read whole: well-formed, so no line to report."""
    return decode_json(item)


def _check_utf8(body: bytes) -> None:
    """A body that is not UTF-8 is refused whole, with the byte where it breaks."""
    try:
        body.decode("utf-8")
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


def _json_document(text: str | bytes) -> list[Any]:
    document = decode_json(text)
    return document if isinstance(document, list) else [document]


def decode_line(line: str | bytes, number: int) -> Any:
    """One NDJSON line (its line end, if any, ignored), decoded; a malformed one is reported at
    its line ``number``."""
    try:
        return decode_json(line.rstrip(b"\r\n") if isinstance(line, bytes) else line.rstrip("\r\n"))
    except InputError as error:
        raise InputError(str(error).replace("line 1,", f"line {number},", 1)) from None


FORMATS = ("ndjson", "csv", "parquet")


class Lines(Sequence[object]):
    """A batch of events as their JSON texts, one per event: an NDJSON file's or body's lines
    (without their line ends, blank ones left out), a JSON array's items, a stream's entries. As a
    sequence, the events they hold, each decoded when it is asked for: the columnar path
    (``usage_columns``) reads the texts themselves and leaves only a few to decode.

    ``numbers`` are the lines' numbers in their file or body (by default 1, 2, ...): a malformed
    one is an ``InputError`` that says where it is. ``decode`` may instead make something of it
    that validation then refuses (a stream's entry is rejected, not a reason to stop)."""

    __slots__ = ("decode", "lines", "numbers")

    def __init__(
        self,
        lines: list[bytes],
        numbers: Sequence[int] | None = None,
        decode: Callable[[bytes, int], object] = decode_line,
    ) -> None:
        self.lines = lines
        self.numbers = range(1, len(lines) + 1) if numbers is None else numbers
        self.decode = decode

    def __len__(self) -> int:
        return len(self.lines)

    def __getitem__(self, row: int) -> object:  # type: ignore[override]
        return self.decode(self.lines[row], self.numbers[row])

    def __iter__(self) -> Iterator[object]:
        return map(self.decode, self.lines, self.numbers)


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
    """An NDJSON file's non-blank lines, ``batch`` at a time, as they are (without their line
    ends): decoding is the ingest service's (a column at a time, see ``usage_columns``).

    The file is read a block at a time and each block split in C (``_line_blocks``). Read a
    line at a time, with a Python step for each, reading took about 0.4 µs a line on the thread
    that validates, which the thread storing the batch before waited for."""
    lines: list[bytes] = []
    numbers: list[int] = []
    with path.open("rb") as handle:
        for block in _line_blocks(handle):
            kept, kept_numbers = block.non_blank()
            taken = 0
            while len(lines) + len(kept) - taken >= batch:
                end = taken + batch - len(lines)
                lines += kept[taken:end]
                numbers += kept_numbers[taken:end]
                taken = end
                yield Chunk(Lines(lines, numbers), block.position_after(numbers[-1]))
                lines, numbers = [], []
            lines += kept[taken:]
            numbers += kept_numbers[taken:]
        if lines:
            yield Chunk(Lines(lines, numbers), handle.tell())


_BLOCK_BYTES = 1 << 22
"""How much of an NDJSON file is read at a time (4 MiB: some 20,000 events)."""


@dataclass(frozen=True, slots=True)
class _LineBlock:
    r"""Whole lines of a file, as split at ``\n`` (without it): the first is line ``first``
    and starts at byte ``start``; ``ended`` says whether the last one was ended by a ``\n``
    (only the file's last line may not be), ``returns`` whether any holds a ``\r``."""

    lines: list[bytes]
    first: int
    start: int
    ended: bool
    returns: bool

    def non_blank(self) -> tuple[list[bytes], Sequence[int]]:
        r"""The lines that are not blank (whitespace only), without trailing ``\r``, and their
        numbers."""
        kept, numbers = _non_blank(self.lines, self.first)
        if self.returns:
            kept = [line.rstrip(b"\r") for line in kept]
        return kept, numbers

    def position_after(self, number: int) -> int:
        """The byte just after line ``number`` (of this block) and its line end."""
        through = number - self.first + 1
        ends = through if self.ended or through < len(self.lines) else through - 1
        return self.start + sum(map(len, self.lines[:through])) + ends


def _line_blocks(handle: BinaryIO) -> Iterator[_LineBlock]:
    """The file's whole lines, a block at a time (a line longer than a block is read whole
    first, its pieces joined once)."""
    number, start, pending = 1, 0, list[bytes]()
    while block := handle.read(_BLOCK_BYTES):
        if b"\n" not in block:
            pending.append(block)
            continue
        data = b"".join([*pending, block]) if pending else block
        lines = data.split(b"\n")
        tail = lines.pop()  # not ended yet: goes with the next block
        pending = [tail] if tail else []
        yield _LineBlock(lines, number, start, ended=True, returns=b"\r" in data)
        number, start = number + len(lines), start + len(data) - len(tail)
    if pending:
        tail = b"".join(pending)
        yield _LineBlock([tail], number, start, ended=False, returns=b"\r" in tail)


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
