"""History import: events from a JSONL or CSV file, validated and stored exactly as ``POST /v1/events`` stores them.

The typical use is loading last year's promotion so it can serve as a
campaign's baseline. Each record goes through ``decode_event`` (the API's
validation) and the ``GroupCommitter`` (the API's durable, idempotent write
path), so an imported event is indistinguishable from a posted one and running
an import again only reports duplicates. The file is streamed in batches, a few
of them in flight at a time, so memory stays bounded whatever the file's size.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import msgspec

from app.core.database import create_pool
from app.core.settings import Settings
from app.ingest.events import COLUMNS, Defaults, FieldError, Row, decode_event, mend_surrogates, utcnow
from app.ingest.group_commit import GroupCommitter, IngestUnavailable, prepare_connection

FORMATS = ("jsonl", "csv")
EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
GZIP_SUFFIX = ".gz"
BATCH_EVENTS = 5_000
"""Rows per submission to the committer (smaller when WARROOM_INGEST_QUEUE_EVENTS could not hold them all)."""
BATCHES_IN_FLIGHT = 4
"""Batches handed to the committer but not yet committed: reading overlaps writing, memory stays bounded."""
MAX_LINE_BYTES = 1024 * 1024
"""A JSONL line longer than this is rejected without being held in memory whole."""
SKIP_CHUNK_BYTES = 64 * 1024
COMMIT_TIMEOUT_S = 120.0
STORE_ATTEMPTS = 5
"""Tries per batch while the database is unavailable; retries are safe because event_id deduplicates."""
DRAIN_TIMEOUT_S = 60.0
SHOWN_REJECTIONS = 20
PROGRESS_EVERY_RECORDS = 1_000
TERMINAL_PROGRESS_S = 0.5
LOG_PROGRESS_S = 10.0
"""When stderr is a file or pipe (CI, docker logs), a progress line this often instead of a rewritten one."""
REQUIRED_COLUMNS = ("event_id", "type")
JSON_COLUMNS = ("props", "labels")
CAMPAIGN_COLUMN = COLUMNS.index("campaign")

Record = tuple[int, bytes | list[FieldError]]
ByteStream = gzip.GzipFile | io.BufferedReader
"""An import file opened for reading: plain, or decompressed on the fly."""
"""A line number and the event as JSON bytes, or the reasons the record could not be turned into an event."""


class ImportFailed(Exception):
    """The file cannot be read as events, or the database would not take them; the import stops (exit status 1)."""


@dataclass
class Tally:
    """What has happened to the file's records so far."""

    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0

    def describe(self, elapsed: float) -> str:
        rate = self.read / elapsed if elapsed > 0 else 0.0
        return (
            f"{self.read:,} read, {self.accepted:,} accepted, {self.duplicates:,} duplicates, "
            f"{self.rejected:,} rejected in {elapsed:.1f} s ({rate:,.0f} events/s)"
        )


@dataclass(frozen=True, slots=True)
class Batch:
    """Valid rows submitted together, and the lines they came from (for messages)."""

    rows: list[Row]
    lines: list[int]
    """The line (or CSV record) each row came from, so a refused row is reported by its own line."""


def detect_format(path: Path) -> str | None:
    """``jsonl`` or ``csv`` from the extension (``history.csv.gz`` is CSV), None when it says neither."""
    name = path.name.lower().removesuffix(GZIP_SUFFIX)
    return EXTENSIONS.get(Path(name).suffix)


def open_records(path: Path, fmt: str) -> Iterator[Record]:
    """The file's records, read lazily; raises ImportFailed at once when the file (or a CSV header) is unusable."""
    source = str(path)
    try:
        stream = _open_binary(path)
    except OSError as exc:
        raise ImportFailed(f"{source}: cannot read: {exc.strerror or exc}") from None
    return jsonl_records(stream, source) if fmt == "jsonl" else csv_records(stream, source)


def _open_binary(path: Path) -> ByteStream:
    """The file for reading, decompressed when gzipped; the record readers close it when done."""
    if path.name.lower().endswith(GZIP_SUFFIX):
        return gzip.open(path, "rb")
    return open(path, "rb")


def jsonl_records(stream: ByteStream, source: str) -> Iterator[Record]:
    """One record per non-blank line, passed on as the raw bytes the API would receive."""
    line_number = 0
    with stream:
        while True:
            line = _read(stream.readline, MAX_LINE_BYTES + 1, source, line_number)
            if not line:
                return
            line_number += 1
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                while line and not line.endswith(b"\n"):
                    line = _read(stream.readline, SKIP_CHUNK_BYTES, source, line_number)
                yield line_number, [FieldError(None, f"line is longer than {MAX_LINE_BYTES:,} bytes")]
            elif line.strip():
                yield line_number, line.removeprefix(b"\xef\xbb\xbf") if line_number == 1 else line


def _read(readline: Callable[[int], bytes], size: int, source: str, line_number: int) -> bytes:
    try:
        return readline(size)
    except (OSError, EOFError) as exc:  # EOFError: a truncated .gz file
        raise ImportFailed(f"{source}: cannot read after line {line_number}: {exc}") from None


def csv_records(stream: ByteStream, source: str) -> Iterator[Record]:
    """Rows under a header of event field names; reads and checks the header before returning."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader, None)
    except (OSError, EOFError, csv.Error) as exc:
        raise ImportFailed(f"{source}:1: cannot read the header: {exc}") from None
    if header is None:
        raise ImportFailed(f"{source}: the file is empty; a CSV import needs a header row of event field names")
    header = [name.strip() for name in header]
    problems = [f"unknown column {name!r}" for name in header if name not in COLUMNS]
    problems += [f"column {name!r} appears twice" for name in sorted(set(header)) if header.count(name) > 1]
    problems += [f"column {name!r} is required" for name in REQUIRED_COLUMNS if name not in header]
    if problems:
        raise ImportFailed(f"{source}:1: header: {'; '.join(problems)} (event fields: {', '.join(COLUMNS)})")
    return _csv_rows(text, reader, header, source)


def _csv_rows(text: TextIO, reader: Any, header: list[str], source: str) -> Iterator[Record]:
    with text:
        while True:
            line_number = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield line_number, [FieldError(None, f"not valid CSV: {exc}")]
                continue
            except (OSError, EOFError) as exc:
                raise ImportFailed(f"{source}: cannot read after line {line_number - 1}: {exc}") from None
            if not cells:
                continue
            if len(cells) != len(header):
                yield line_number, [FieldError(None, f"the row has {len(cells)} cells, the header has {len(header)}")]
                continue
            yield line_number, csv_event(zip(header, cells, strict=False))


def _integer(cell: str) -> int:
    try:
        return int(cell)
    except ValueError:
        raise ValueError(f"must be an integer, got {cell!r}") from None


def _number(cell: str) -> float:
    try:
        number = float(cell)
    except ValueError:
        raise ValueError(f"must be a number, got {cell!r}") from None
    if not math.isfinite(number):  # JSON has no NaN/Infinity: encoded, it would silently become null
        raise ValueError("must be a finite number")
    return number


def _utf8(cell: str) -> bytes:
    try:
        return cell.encode()
    except UnicodeEncodeError:  # undecodable bytes, kept as surrogates by the reader
        raise ValueError("is not valid UTF-8") from None


def _text(cell: str) -> str:
    _utf8(cell)
    return cell


def _json_text(cell: str) -> msgspec.Raw:
    data = mend_surrogates(_utf8(cell).strip())
    try:
        msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise ValueError(f"must be JSON text: {exc}") from None
    return msgspec.Raw(data)


CONVERTERS: dict[str, Callable[[str], Any]] = {
    "quantity": _integer,
    "value": _number,
    **{name: _json_text for name in JSON_COLUMNS},
}
"""How a CSV cell becomes an event field; the rest are text (``amount`` too, so the decimal stays exact)."""


def csv_event(cells: Iterator[tuple[str, str]]) -> bytes | list[FieldError]:
    """A CSV row as the JSON event the API would receive; empty cells are absent fields."""
    event: dict[str, Any] = {}
    errors: list[FieldError] = []
    for name, cell in cells:
        if cell == "":
            continue
        try:
            event[name] = CONVERTERS.get(name, _text)(cell)
        except ValueError as exc:
            errors.append(FieldError(name, str(exc)))
    return errors or msgspec.json.encode(event)


async def import_records(
    dsn: str, records: Iterator[Record], tally: Tally, report: Report, settings: Settings, campaign: str | None
) -> None:
    """Validate and store every record through the API's group committer, counting outcomes in ``tally``."""
    defaults = Defaults(campaign=campaign or settings.default_campaign, currency=settings.default_currency)
    pool = await create_pool(dsn, min_size=1, max_size=settings.writers, init=prepare_connection)
    committer = GroupCommitter(
        pool,
        writers=settings.writers,
        group_events=settings.group_events,
        queue_events=settings.queue_events,
        commit_timeout_s=COMMIT_TIMEOUT_S,
        drain_timeout_s=DRAIN_TIMEOUT_S,
    )
    committer.start()
    batch_events = max(1, min(BATCH_EVENTS, settings.queue_events // BATCHES_IN_FLIGHT))
    in_flight: set[asyncio.Task[None]] = set()
    try:
        for batch in batches(records, batch_events, defaults, campaign, tally, report):
            if len(in_flight) >= BATCHES_IN_FLIGHT:
                done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            in_flight.add(asyncio.create_task(_store(committer, batch, tally, report)))
            await asyncio.sleep(0)  # the committer starts on this batch while the next one is read
        await asyncio.gather(*in_flight)
    finally:
        for task in in_flight:
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)
        await committer.drain_and_stop()
        await pool.close()


def batches(
    records: Iterator[Record], size: int, defaults: Defaults, campaign: str | None, tally: Tally, report: Report
) -> Iterator[Batch]:
    """Validated rows in batches of ``size``; rejected records are counted and reported on the way."""
    rows: list[Row] = []
    lines: list[int] = []
    now = utcnow()
    for line_number, record in records:
        tally.read += 1
        if tally.read % PROGRESS_EVERY_RECORDS == 0:
            report.progress(tally)
        row, errors = _decode(record, now, defaults)
        if row is None:
            tally.rejected += 1
            report.rejected(str(line_number), errors)
            continue
        if campaign is not None:
            row = (*row[:CAMPAIGN_COLUMN], campaign, *row[CAMPAIGN_COLUMN + 1 :])
        rows.append(row)
        lines.append(line_number)
        if len(rows) == size:
            yield Batch(rows, lines)
            rows, lines, now = [], [], utcnow()
    if rows:
        yield Batch(rows, lines)


def _decode(record: bytes | list[FieldError], now: datetime, defaults: Defaults) -> tuple[Row | None, list[FieldError]]:
    if isinstance(record, list):
        return None, record
    try:
        return decode_event(record, now, defaults)
    except UnicodeDecodeError:  # msgspec raises it for invalid UTF-8 inside a string, and decode_event lets it through
        return None, [FieldError(None, "not valid UTF-8")]


async def _store(committer: GroupCommitter, batch: Batch, tally: Tally, report: Report) -> None:
    for attempt in range(1, STORE_ATTEMPTS + 1):
        try:
            result = await committer.submit(batch.rows)
        except IngestUnavailable as exc:
            if attempt == STORE_ATTEMPTS:
                raise ImportFailed(
                    f"lines {batch.lines[0]}-{batch.lines[-1]} not stored: {exc.reason}; "
                    "run the import again to finish (events already stored count as duplicates)"
                ) from None
            await asyncio.sleep(exc.retry_after * attempt)
        else:
            for index, reason in result.refused:
                refusal = FieldError("event_id", f"{batch.rows[index][0]}: {reason}")
                report.rejected(str(batch.lines[index]), [refusal])
            tally.rejected += len(result.refused)
            tally.accepted += result.accepted
            tally.duplicates += result.duplicates
            report.progress(tally)
            return


class Report:
    """Progress and rejected records on stderr while an import runs."""

    def __init__(self, source: str, stream: TextIO) -> None:
        self._source = source
        self._stream = stream
        self._terminal = stream.isatty()
        self._interval = TERMINAL_PROGRESS_S if self._terminal else LOG_PROGRESS_S
        self._started = time.monotonic()
        self._next_progress = self._started + self._interval
        self._shown = 0
        self._hidden = 0

    def rejected(self, where: str, errors: list[FieldError]) -> None:
        """Print ``file:line: field: reason; ...`` for the first ``SHOWN_REJECTIONS``, count the rest."""
        if self._shown == SHOWN_REJECTIONS:
            self._hidden += 1
            return
        self._shown += 1
        reasons = "; ".join(f"{e.field}: {e.message}" if e.field else e.message for e in errors)
        self._write(f"{self._clear()}{self._source}:{where}: {reasons}\n")

    @property
    def elapsed(self) -> float:
        """Seconds since the import started (the database was already open)."""
        return time.monotonic() - self._started

    def progress(self, tally: Tally) -> None:
        now = time.monotonic()
        if now < self._next_progress:
            return
        self._next_progress = now + self._interval
        line = f"{self._source}: {tally.describe(self.elapsed)}"
        self._write(f"\r\x1b[K{line}" if self._terminal else f"{line}\n")

    def finish(self) -> None:
        """Clear the progress line and say how many rejections were not shown."""
        self._write(self._clear())
        if self._hidden:
            self._write(f"... and {self._hidden:,} more rejections not shown\n")

    def _clear(self) -> str:
        return "\r\x1b[K" if self._terminal else ""

    def _write(self, text: str) -> None:
        if text:
            self._stream.write(text)
            self._stream.flush()
