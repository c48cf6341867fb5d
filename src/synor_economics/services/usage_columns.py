"""Columnar intake: a batch of NDJSON lines validated a column at a time.

Why. Validating event by event (``domain.usage.parse_event``) costs a few microseconds of
interpreter time per event, and ingestion is bound by the interpreter: at 250,000 events a
second the whole pipeline has 4 µs per event. Here pyarrow reads a chunk's lines into columns
(in C++, with the interpreter released) and the plain events, nearly all of them, are checked
with vectorised regular expressions (RE2) and arithmetic.

The rule that keeps this honest: the columnar path only ever *accepts*. A row it is not sure
of (a gauge, a negative quantity, ``meta``, an unknown field, an odd spelling of the time, an
event outside the time window, anything that fails a pattern) goes to ``parse_event``, the
reference, which takes it or says exactly what is wrong. A chunk pyarrow cannot read as one
object per line (malformed JSON, a number where text belongs, a repeated key) goes to the
reference whole. The patterns below are those of ``domain.usage``, written for RE2, where ``$``
means the end of the text; a property test holds the two paths to the same events.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from synor_economics.domain.meters import EXACT, HOUR_US
from synor_economics.domain.usage import (
    KEY_SEPARATOR,
    MAX_EARLY_US,
    MAX_LATE_US,
    EventColumns,
    UsageEvent,
    body_digests,
    key_digests,
    key_texts,
)
from synor_economics.ports import HourlyDeltas

_TEXT_FIELDS = ("id", "account", "resource", "quantity", "ts", "subject", "operator")
_PARSE = pj.ParseOptions(
    explicit_schema=pa.schema([(name, pa.string()) for name in _TEXT_FIELDS]),
    unexpected_field_behavior="infer",  # an unknown field becomes a column: its rows fall back
)
_BLOCK = 1 << 20
_READ = pj.ReadOptions(block_size=_BLOCK)  # blocks of 1 MiB: read on several threads
_READ_SMALL = pj.ReadOptions(block_size=_BLOCK, use_threads=False)
"""For a text of one block (an HTTP body): a pool's start costs more than it gains there."""

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:\-/]*$"
_NAME = r"^[\x21-\x7e]+$"
_LONGEST = 200
"""Longest id, account, subject and operator: checked as a length, not in the patterns, which
pyarrow compiles again at each call (a counted repetition ``{0,199}`` made RE2 build a program
that cost more than the matching: ~0.3 ms a call). Both patterns are ASCII, so bytes are
characters."""
_QUANTITY = r"^[0-9]{1,30}(\.[0-9]{1,18})?$"
_TS = (
    r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|\+00:00)$"
)
"""Stricter than the reference's pattern (which then checks the date): what passes here is a
real time of day on a day 1-31 of a real month, so only the day of the month is left to check."""

_REQUIRED = (
    ("id", _ID, _LONGEST),
    ("account", _NAME, _LONGEST),
    ("quantity", _QUANTITY, None),
    ("ts", _TS, None),
)
_OPTIONAL = (("subject", _NAME, _LONGEST), ("operator", _NAME, _LONGEST))
"""Each text field's pattern and longest length (none where the pattern bounds it)."""

_EPOCH_DAY = datetime(1970, 1, 1, tzinfo=UTC).toordinal()
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_DAYS_BEFORE_MONTH = np.concatenate(([0, 0], np.cumsum(_DAYS_IN_MONTH[1:12])))
_PLACEHOLDER_TS = "1970-01-01T00:00:00Z"
_PLACEHOLDER = pa.scalar(_PLACEHOLDER_TS, pa.string())
_EMPTY = pa.scalar("", pa.string())
_FIELD_SEPARATOR = pa.scalar("\x1f", pa.string())
_KEY_SEPARATOR = pa.scalar(KEY_SEPARATOR, pa.string())
"""Texts passed to compute functions as typed scalars: a Python value is converted after
inferring its type, and each inference tries to import ``dateutil.relativedelta`` (for
intervals), which is not installed: a failed import is not remembered, so every call searched
the path again, five times a batch, about 0.5 ms (0.5 µs an event in batches of 1,000)."""

Mask = npt.NDArray[np.bool_]


def ndjson_table(texts: list[bytes]) -> pa.Table | None:
    """Events' JSON texts as a table of one row per text, or None when pyarrow cannot read them
    so (the reference path then reads them, and says where one is malformed).

    The texts are read as NDJSON, one per line, so each must be one line and none blank:
    pyarrow reads an object across line breaks (two texts that are each half an object would
    read as one row), a blank line as no row, and two objects on one line as two rows. Any of
    these next to another would put the rows out of step with the texts, the count unchanged;
    with one-line, non-blank texts only the last can happen, and the count catches it."""
    if not texts or not all(map(bytes.strip, texts)):
        return None
    ndjson = b"\n".join(texts)
    if ndjson.count(b"\n") != len(texts) - 1 or b"\r" in ndjson:
        return None
    options = _READ if len(ndjson) > _BLOCK else _READ_SMALL
    try:
        table = pj.read_json(io.BytesIO(ndjson), read_options=options, parse_options=_PARSE)
    except (pa.ArrowException, ValueError):  # malformed, mistyped, not UTF-8: the reference
        return None
    return table if table.num_rows == len(texts) else None


@dataclass(frozen=True, slots=True)
class PlainRows:
    """The rows of a batch taken on the columnar path: their positions in the batch and the
    events, as columns."""

    positions: list[int]
    events: EventColumns
    deltas: HourlyDeltas
    """The events' rollup deltas (:func:`hourly_deltas`)."""

    def independent_of(self, others: Iterable[tuple[int, UsageEvent, object]]) -> bool:
        """Whether these rows' keys are unique and none is the key of one of ``others``: then
        dedup may take them apart from the others, whatever their order in the batch.

        Told by the first 64 bits of the keys' digests, sorted (a set of the keys cost about
        0.5 µs an event, a sixth of validating it); only keys whose bits agree are compared."""
        ordered = np.sort(np.frombuffer(self.events.digests, dtype="<u8")[::2])
        others_keys = [event[:2] for _, event, _ in others]
        repeated = bool((ordered[1:] == ordered[:-1]).any())
        if others_keys:
            bits = np.frombuffer(key_digests(key_texts(others_keys)), dtype="<u8")[::2]
            at = np.minimum(np.searchsorted(ordered, bits), max(len(ordered) - 1, 0))
            repeated = repeated or bool(len(ordered) and (ordered[at] == bits).any())
        if not repeated:
            return True
        keys = set(self.events.keys())
        return len(keys) == len(self.events) and not any(key in keys for key in others_keys)


def plain_rows(
    table: pa.Table, counters: Collection[str], now_us: int
) -> tuple[PlainRows, list[int]]:
    """The plain counter events of ``table`` (rows the reference would accept as they are),
    and the positions of the rest, for the reference to decide."""
    ok = _all_known_fields(table)
    for name, pattern, longest in _REQUIRED:
        ok &= _matches(table.column(name), pattern, longest)
    for name, pattern, longest in _OPTIONAL:
        column = table.column(name)
        if column.null_count < len(column):  # absent from every row: nothing to check
            nulls = column.is_null().to_numpy(zero_copy_only=False)
            ok &= _matches(column, pattern, longest) | nulls
    ok &= pc.is_in(
        table.column("resource"), value_set=pa.array(sorted(counters), pa.string())
    ).to_numpy(zero_copy_only=False)
    ts_us, real = _timestamps(table.column("ts"), ok)
    ok &= real & (ts_us >= now_us - MAX_LATE_US) & (ts_us <= now_us + MAX_EARLY_US)
    taken = np.flatnonzero(ok)
    rest = np.flatnonzero(~ok).tolist()
    if not len(taken):
        return PlainRows([], EventColumns.empty(), HourlyDeltas([], [], [], [], [])), rest
    rows = table.take(pa.array(taken))
    quantities = _canonical_quantities(rows.column("quantity"))
    subjects = _texts(rows.column("subject"))
    operators = _texts(rows.column("operator"))
    stamps = ts_us[taken]
    resources = rows.column("resource")
    accounts, ids = rows.column("account"), rows.column("id")
    fingerprints = _fingerprints(resources, quantities, stamps, subjects, operators)
    native = (accounts, ids, resources, quantities, pa.array(stamps), subjects, operators)
    events = EventColumns(
        accounts=accounts.to_pylist(),
        ids=ids.to_pylist(),
        resources=resources.to_pylist(),
        quantities=quantities.to_pylist(),
        ts_us=stamps.tolist(),
        subjects=subjects.to_pylist(),
        operators=operators.to_pylist(),
        fingerprints=fingerprints,
        digests=_key_digests(accounts, ids),
        native=partial(_native_table, native, fingerprints),
    )
    deltas = hourly_deltas(accounts, resources, stamps, quantities)
    return PlainRows(taken.tolist(), events, deltas), rest


_NATIVE = ["account", "id", "resource", "quantity", "ts_us", "subject", "operator", "fingerprint"]


def _native_table(
    columns: tuple[pa.ChunkedArray | pa.Array, ...], fingerprints: list[str]
) -> pa.Table:
    """``EventColumns.native``: the columns of ``EventColumns.columns()`` as an Arrow table."""
    return pa.Table.from_arrays([*columns, pa.array(fingerprints, pa.string())], _NATIVE)


def hourly_deltas(
    accounts: pa.ChunkedArray,
    resources: pa.ChunkedArray,
    stamps: npt.NDArray[np.int64],
    quantities: pa.ChunkedArray,
) -> HourlyDeltas:
    """The events' sums by (account, resource, hour), with their counts, as columns.

    Why here and so. Summed by key in Python (a tuple and a dict entry per event, then the
    series of each pair looked up per delta), a batch's deltas cost about a microsecond an
    event of interpreter time, which every thread of ingestion shares. Here the pairs are
    numbered by pyarrow's dictionary encoding, a (pair, hour) code per event is grouped by
    numpy, and an hour with one event (most of them) takes that event's quantity text as it
    is; only the events of hours with several are added up, exactly, in Python."""
    account_codes, account_names = _codes(accounts)
    resource_codes, resource_names = _codes(resources)
    pair_codes = account_codes * len(resource_names) + resource_codes
    hours = stamps // HOUR_US
    codes = (pair_codes << 32) | hours
    groups, first, inverse, counts = np.unique(
        codes, return_index=True, return_inverse=True, return_counts=True
    )
    pair_of_group, pair_index = np.unique(groups >> 32, return_inverse=True)
    width = len(resource_names)
    pairs = [
        (account_names[code // width], resource_names[code % width])
        for code in pair_of_group.tolist()
    ]
    quantity = quantities.take(pa.array(first)).to_pylist()
    if len(groups) < len(codes):  # some hours have several events: add those up exactly
        members = np.flatnonzero(counts[inverse] > 1)
        _add_up(quantity, inverse[members], quantities.take(pa.array(members)))
    return HourlyDeltas(
        pairs,
        pair_index.tolist(),
        ((groups & _LOW_32) * HOUR_US).tolist(),
        quantity,
        counts.tolist(),
    )


_LOW_32 = (1 << 32) - 1
_ZERO = Decimal(0)
_SMALL_WHOLE = r"^(0|-?[1-9][0-9]{0,17})$"
"""Whole numbers of at most 18 digits, as canonical quantity text writes them (no "-0")."""


def _add_up(quantity: list[str], groups: npt.NDArray[np.intp], texts: pa.ChunkedArray) -> None:
    """Set the quantity of each of ``groups`` (the group of each of ``texts``) to the exact
    sum of its texts. Groups whose texts are all small whole numbers, a counter's nearly
    always, are added in 64-bit integers by numpy, when no sum can overflow (the largest
    value times the number of values fits); the others one by one in ``Decimal``. Events
    that arrive as they happen share hours, so this is most of a live batch's events: in
    Python, a microsecond each."""
    whole = pc.match_substring_regex(texts, _SMALL_WHOLE).to_numpy(zero_copy_only=False)
    exact = np.zeros(len(groups), dtype=bool)
    if whole.any():
        exact = np.isin(groups, groups[~whole], invert=True)
        values = pc.cast(texts.filter(pa.array(exact)), pa.int64()).to_numpy()
        if len(values) and int(np.abs(values).max()) * len(values) >= 1 << 63:
            exact[:] = False  # a sum might not fit: all in Decimal
        elif len(values):
            totals = np.zeros(len(quantity), dtype=np.int64)
            np.add.at(totals, groups[exact], values)
            summed = np.unique(groups[exact])
            for group, total in zip(summed.tolist(), totals[summed].tolist(), strict=True):
                quantity[group] = str(total)
    rest = np.flatnonzero(~exact)
    if not len(rest):
        return
    sums: dict[int, Decimal] = {}
    for group, text in zip(
        groups[rest].tolist(), texts.take(pa.array(rest)).to_pylist(), strict=True
    ):
        sums[group] = EXACT.add(sums.get(group, _ZERO), Decimal(text))
    for group, total in sums.items():
        quantity[group] = format(total, "f")


def _codes(column: pa.ChunkedArray) -> tuple[npt.NDArray[np.int64], list[str]]:
    """Each row's number among the column's distinct texts, and those texts."""
    encoded = column.combine_chunks().dictionary_encode()
    return encoded.indices.to_numpy().astype(np.int64), encoded.dictionary.to_pylist()


def _all_known_fields(table: pa.Table) -> Mask:
    """Rows with no field but the known text fields: an event with ``meta`` takes the
    reference path, and so does every row of a batch where some row has an unknown field (a
    column holds null both where the field is null and where it is absent, and the reference
    refuses an unknown field even when it is null)."""
    ok = np.ones(table.num_rows, dtype=bool)
    for name in table.column_names:
        if name == "meta":
            ok &= table.column(name).is_null().to_numpy(zero_copy_only=False)
        elif name not in _TEXT_FIELDS:
            ok[:] = False
    return ok


def _matches(column: pa.ChunkedArray, pattern: str, longest: int | None) -> Mask:
    """Rows whose text matches ``pattern`` and is at most ``longest`` long, if that is given
    (a null matches nothing)."""
    found = pc.fill_null(pc.match_substring_regex(column, pattern), False)
    ok = np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)
    if longest is not None:
        lengths = pc.fill_null(pc.binary_length(column), 0).to_numpy(zero_copy_only=False)
        ok &= lengths <= longest
    return ok


def _timestamps(column: pa.ChunkedArray, ok: Mask) -> tuple[npt.NDArray[np.int64], Mask]:
    """µs since the epoch of the rows in ``ok`` (others read as 0), and whether each row's date
    exists (the pattern has checked the rest). The fields sit at fixed places in the text, so
    they are read from a fixed-width byte matrix."""
    stamps = pc.if_else(pa.array(ok), column, _PLACEHOLDER)
    head = _fixed_width(pc.utf8_slice_codeunits(stamps, 0, 19), 19)
    digits = head.astype(np.int64) - ord("0")

    def number(start: int, width: int) -> npt.NDArray[np.int64]:
        value = np.zeros(len(digits), dtype=np.int64)
        for at in range(start, start + width):
            value = value * 10 + digits[:, at]
        return value

    year, month, day = number(0, 4), number(5, 2), number(8, 2)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _DAYS_IN_MONTH[month] + (leap & (month == 2))
    real = day <= month_days
    # Days since 0001-01-01 (proleptic Gregorian, as datetime.toordinal), then since 1970.
    before = year - 1
    days = before * 365 + before // 4 - before // 100 + before // 400
    days += _DAYS_BEFORE_MONTH[month] + (leap & (month > 2)) + day - _EPOCH_DAY
    seconds = days * 86_400 + number(11, 2) * 3600 + number(14, 2) * 60 + number(17, 2)
    return seconds * 1_000_000 + _micros(stamps), real


def _micros(stamps: pa.ChunkedArray) -> npt.NDArray[np.int64]:
    """The fraction of the second, in µs, of times the pattern has checked: none in a time of
    20 characters (``...:SSZ``), else the digits after the point, padded to six."""
    micros = np.zeros(len(stamps), dtype=np.int64)
    lengths = pc.binary_length(stamps).to_numpy(zero_copy_only=False)
    odd = np.flatnonzero(lengths != len(_PLACEHOLDER_TS))
    if len(odd):
        tail = pc.utf8_slice_codeunits(stamps.take(pa.array(odd)), 19, len(".000000+00:00") + 19)
        # ".120Z" -> ".12" -> "12" -> "120000"; "+00:00" -> "" -> "000000". Trailing zeros go
        # with the zone and come back with the padding.
        digits = pc.utf8_ltrim(pc.utf8_rtrim(tail, "Z+:0"), ".")
        micros[odd] = pc.cast(pc.utf8_rpad(digits, 6, "0"), pa.int64()).to_numpy(
            zero_copy_only=False
        )
    return micros


def _fixed_width(column: pa.ChunkedArray | pa.Array, width: int) -> npt.NDArray[np.uint8]:
    """ASCII strings all ``width`` long as an (n, width) byte matrix, without a copy per row."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[array.offset :]
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)
    start = int(offsets[0])
    return data[start : start + width * len(array)].reshape(len(array), width)


def _canonical_quantities(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Plain quantities as ``format(Decimal(text), "f")`` writes them: leading zeros of the
    whole part dropped (one kept before the point), the fraction kept as given."""
    return pc.replace_substring_regex(column, r"^0+([0-9])", r"\1")


def _texts(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """An optional text column with absent values as ""."""
    return pc.fill_null(column, "")


def _key_digests(accounts: pa.ChunkedArray, ids: pa.ChunkedArray) -> bytes:
    """The keys' digests (``domain.usage.key_digests``), their texts joined in a column: both
    parts are ASCII (the patterns say so), so a column's bytes are the keys' texts."""
    texts = pc.binary_join_element_wise(accounts, ids, _KEY_SEPARATOR)
    return key_digests(pc.cast(texts, pa.binary()).to_pylist())


def _fingerprints(
    resources: pa.ChunkedArray,
    quantities: pa.ChunkedArray,
    ts_us: npt.NDArray[np.int64],
    subjects: pa.ChunkedArray,
    operators: pa.ChunkedArray,
) -> list[str]:
    """The fingerprints of plain events (no ``meta``), as ``domain.usage.usage_event`` makes
    them: the text they are a digest of is joined in columns, only the digest is per event.
    The quantity is normalised as ``Decimal.normalize`` would: trailing zeros of the fraction
    dropped, and the point with them when nothing is left after it (two trims of the
    quantities with a point, a seventh of the time a regular expression took)."""
    fraction = pc.match_substring(quantities, ".")
    normal = pc.if_else(fraction, pc.ascii_rtrim(pc.ascii_rtrim(quantities, "0"), "."), quantities)
    texts = pc.binary_join_element_wise(
        resources,
        normal,
        pc.cast(pa.array(ts_us), pa.string()),
        subjects,
        operators,
        _EMPTY,
        _FIELD_SEPARATOR,
    )
    return body_digests(pc.cast(texts, pa.binary()).to_pylist())
