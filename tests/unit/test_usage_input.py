"""Reading NDJSON files in blocks gives what reading them a line at a time gives: the same
non-blank lines, their numbers, and how far into the file each batch reaches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synor_economics.services import usage_input
from synor_economics.services.usage_input import Lines, decode_body, read_events


def line_by_line(path: Path, batch: int) -> Iterator[tuple[list[bytes], list[int], int]]:
    """The reference: a line at a time, blank (whitespace-only) lines left out, line ends
    (``\\n``, ``\\r\\n``, stray ``\\r``) taken off, the position after each batch's last line."""
    with path.open("rb") as handle:
        lines: list[bytes] = []
        numbers: list[int] = []
        for number, line in enumerate(handle, start=1):
            if line.strip():
                lines.append(line.rstrip(b"\r\n"))
                numbers.append(number)
                if len(lines) == batch:
                    yield lines, numbers, handle.tell()
                    lines, numbers = [], []
        if lines:
            yield lines, numbers, handle.tell()


def in_blocks(path: Path, batch: int) -> list[tuple[list[bytes], list[int], int]]:
    read = []
    for chunk in read_events(path, "ndjson", batch):
        assert isinstance(chunk.events, Lines)
        read.append((chunk.events.lines, list(chunk.events.numbers), chunk.position))
    return read


_PIECES = [b'{"id": "a"}', b"x" * 9, b"", b" ", b"\t \x0c", b"\r", b"\n", b"\r\n", b"\n\n"]


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.sampled_from(_PIECES), max_size=40),
    batch=st.integers(1, 7),
    block=st.integers(1, 16),
)
def test_blocks_read_as_lines_do(
    tmp_path_factory: pytest.TempPathFactory, pieces: list[bytes], batch: int, block: int
) -> None:
    """Blocks of a few bytes (lines split across them, blocks with no line end), blank and
    whitespace-only lines, ``\\r\\n`` ends, stray ``\\r``, a last line with or without its
    end: every batch equals the reference's, position included."""
    path = tmp_path_factory.mktemp("ndjson") / "events.ndjson"
    path.write_bytes(b"".join(pieces))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(usage_input, "_BLOCK_BYTES", block)
        assert in_blocks(path, batch) == list(line_by_line(path, batch))


def test_a_large_file_in_default_blocks(tmp_path: Path) -> None:
    """Batches that end inside a block and across blocks, at the default block size."""
    path = tmp_path / "events.ndjson"
    lines = [f'{{"id": "e{n}", "pad": "{"p" * (n % 300)}"}}'.encode() for n in range(60_000)]
    lines[1234] = b"   "
    path.write_bytes(b"\n".join(lines) + b"\r\n")
    assert in_blocks(path, 7_000) == list(line_by_line(path, 7_000))


@pytest.mark.parametrize(
    ("body", "lines", "numbers"),
    [
        (b'{"a":1}\n{"b":2}\n', [b'{"a":1}', b'{"b":2}'], [1, 2]),
        (b'{"a":1}\n\n \t\n{"b":2}\r\n{"c":3}', [b'{"a":1}', b'{"b":2}', b'{"c":3}'], [1, 4, 5]),
        (b"\n\n", [], []),
    ],
)
def test_ndjson_bodies_leave_blank_lines_out_and_keep_numbers(
    body: bytes, lines: list[bytes], numbers: list[int]
) -> None:
    events = decode_body(body, ndjson=True)
    assert isinstance(events, Lines)
    assert (events.lines, list(events.numbers)) == (lines, numbers)
