"""``warroom rehearse``: replay a stored night into a campaign of its own, judge it with the rules, and print when
each rule fired and resolved in the night's time (the seeds' 实战演练: a team tunes its rules on last year's night
before the real one).

Through the server (the default), the night's stored events are read in time order (a server-side cursor: a
night has millions) and posted again to ``/v1/events`` under the rehearsal's campaign, with new ids derived from
the old ones (a retried batch deduplicates), paced at ``--speed`` seconds of the night per real second, each batch
followed by a ``watermark``: the server runs the rehearsal on event time and marks its alerts as a rehearsal
(routes skip them unless they name ``rehearsal``). The rehearsal's campaign is a copy of the night's definition,
with its baseline when it has one (a rehearsal of last year is compared with the year before, if that is stored).
When the night is sent, the command waits for the server's clock of the rehearsal to reach the last watermark
and for two more evaluations, then reads the rehearsal's alerts from the database.

The command needs the database (it reads the night there) and the server (it posts there). It waits on the
server's own word: its campaign clock (the snapshot's ``as_of``) and its evaluations (``GET /v1/rules``), which
only the server knows and an ingest key cannot read; so it creates a screen key of its own (read-only, named
``rehearse-<campaign>-<suffix>``) for the run and revokes it at the end. ``--replace`` starts the rehearsal's
campaign over: it is undefined first, so the server drops its numbers and resolves its alerts, then its events
and alerts are deleted and it is defined again. The events table has no index on campaign or time
(``app/metrics/replay.py`` says why): reading a night is one scan and sort of the table, done by PostgreSQL before
the first row arrives.

With ``--rules DIR`` the night is judged in-process instead (``alerts.evaluation.rehearsal``), as fast as
possible, with those rules: nothing is posted or stored.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import math
import secrets
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec

from alerts.evaluation import store as alert_store
from alerts.evaluation.rehearsal import NightAlert, Rehearsal, night_time, table
from alerts.evaluation.rules import AnyRule, load_directory
from app.access import keys
from app.campaigns import model, store
from app.campaigns.clock import REPLAY_LATENESS_S
from app.campaigns.model import Campaign
from app.cli.connection import open_database
from app.core.configfile import ConfigError
from app.core.settings import Settings
from app.drill.simulate import Poster
from app.ingest.events import COLUMNS
from app.metrics.measures import EVENT_COLUMNS, Event

DEFAULT_SPEED = 60.0
BATCH_EVENTS = 2_000
TICK_S = 0.1
"""Between batches once the replay has caught up with its pace: each brings the events due and a watermark."""
FETCH_ROWS = 5_000
"""Rows the server-side cursor hands over at a time."""
PROGRESS_EVERY_S = 1.0
BAR_WIDTH = 24
SERVER_WAIT_S = 60.0
"""How long the server may take to see a campaign defined or deleted, and to forget its alerts."""
CATCH_UP_S = 300.0
"""How long the server may take, after the last batch, to count the night up to its last watermark."""
POLL_S = 0.2
READ_ATTEMPTS = 5
WATERMARK_GAP_S = 0.001
"""A batch cut short by its size leaves events of the next one's first moment unsent: its watermark stands this
much before that moment (everything before it is sent)."""
MAX_EVENT_ID = 128
"""The longest ``event_id`` the API takes."""
INTERRUPTED = 130
"""Exit status after Ctrl-C, as shells report SIGINT."""

JSON_COLUMNS = ("labels", "props")
POSTED_COLUMNS = tuple(c for c in COLUMNS if c not in ("campaign", *JSON_COLUMNS))
"""The stored columns posted again as they are: the campaign is the rehearsal's, labels and props are JSON."""
NIGHT_ORDER = "WHERE campaign = $1 AND type <> 'watermark' ORDER BY occurred_at, seq"
"""A night's events in time order, without the watermarks of the run that stored it (a rehearsal makes its own)."""
POSTED_SQL = (
    f"SELECT {', '.join(POSTED_COLUMNS)}, {', '.join(f'{c}::text AS {c}' for c in JSON_COLUMNS)} FROM events "
    + NIGHT_ORDER
)
NIGHT_SQL = f"SELECT {EVENT_COLUMNS} FROM events " + NIGHT_ORDER
HISTORY_SQL = f"SELECT {EVENT_COLUMNS} FROM events WHERE campaign = $1 ORDER BY seq"
SPAN_SQL = "SELECT count(*), min(occurred_at), max(occurred_at) FROM events WHERE campaign = $1 AND type <> 'watermark'"
HAS_EVENTS_SQL = "SELECT EXISTS (SELECT 1 FROM events WHERE campaign = $1)"
DELETE_EVENTS_SQL = "DELETE FROM events WHERE campaign = $1"


class RehearsalError(Exception):
    """Why the rehearsal cannot run (or stopped): one line for the operator."""


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``rehearse`` to the ``warroom`` commands."""
    r = commands.add_parser(
        "rehearse",
        help="replay a stored night into a campaign of its own through the rules; print when each rule fired",
    )
    r.add_argument("--from", dest="source", required=True, metavar="CAMPAIGN", help="the stored night: double11-2025")
    r.add_argument("--as", dest="target", required=True, metavar="CAMPAIGN", help="the rehearsal's campaign id")
    r.add_argument(
        "--speed", type=_speed, default=DEFAULT_SPEED, help="seconds of the night per real second (default 60)"
    )
    r.add_argument(
        "--rules",
        type=Path,
        metavar="DIR",
        help="judge in-process with these rule files, as fast as possible; nothing is posted or stored",
    )
    r.add_argument("--url", help="the war-room to rehearse on, e.g. http://127.0.0.1:8000 (not with --rules)")
    r.add_argument("--key", help="an ingest key of that war-room (not with --rules)")
    r.add_argument(
        "--replace", action="store_true", help="the rehearsal's campaign has events: delete them and its alerts first"
    )
    r.set_defaults(handler=_rehearse)


def _speed(text: str) -> float:
    try:
        speed = float(text)
    except ValueError:
        speed = math.nan
    if not (math.isfinite(speed) and speed > 0):
        raise argparse.ArgumentTypeError(f"must be seconds of the night per real second, above 0; got {text}")
    return speed


def _rehearse(args: argparse.Namespace, settings: Settings) -> None:
    """Check the arguments and rules before anything is touched, then rehearse and print the table."""
    try:
        msgspec.convert(args.target, model.Slug)
    except msgspec.ValidationError:
        sys.exit(f"warroom: --as {args.target!r} is not a campaign id (letters, digits, '.', '_', '-'; at most 64)")
    if args.target == args.source:
        sys.exit("warroom: --as must name a campaign of its own, not the stored night itself")
    if args.rules is None and not (args.url and args.key):
        sys.exit(
            "warroom: rehearsing on a war-room needs --url and --key (an ingest key); or judge in-process: --rules"
        )
    if args.rules is not None and (args.url or args.key or args.replace):
        sys.exit("warroom: --rules judges in-process and stores nothing: --url, --key and --replace do not apply")
    rules: list[AnyRule] = []
    if args.rules is not None:
        if not args.rules.is_dir():
            sys.exit(f"warroom: --rules {args.rules}: not a directory")
        try:
            rules = load_directory(args.rules).rules
        except ConfigError as exc:
            sys.exit(f"warroom: {exc}")
    dsn = open_database(settings)
    bar = Bar(args.target)
    try:
        alerts, night = asyncio.run(_in_process(dsn, args, rules, bar) if args.rules else _on_server(dsn, args, bar))
    except RehearsalError as exc:
        bar.end()
        sys.exit(f"warroom: {exc}")
    except KeyboardInterrupt:
        bar.end()
        print(f"warroom: rehearsal stopped {bar.where()}", file=sys.stderr)
        if args.rules is None:
            print(f"  {args.target} keeps what was sent; run again with --replace to start over", file=sys.stderr)
        sys.exit(INTERRUPTED)
    bar.end()
    print("\n".join(table(alerts, night.target.timezone)))


# ---- the night ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Night:
    """The stored night and the campaign it is rehearsed as."""

    source: Campaign
    target: Campaign
    """A copy of the source's definition under the rehearsal's id (its baseline included)."""
    baseline: Campaign | None
    """The source's baseline, when it names one that is stored."""
    events: int
    first: float
    last: float


async def _night(conn: asyncpg.Connection, source_id: str, target_id: str) -> Night:
    source = await store.fetch(conn, source_id)
    if source is None:
        raise RehearsalError(f"no campaign {source_id!r} is stored (see warroom campaigns list)")
    if source.baseline == target_id:
        raise RehearsalError(f"{target_id!r} is the baseline of {source_id}: choose another --as")
    count, first, last = await conn.fetchrow(SPAN_SQL, source_id)
    if not count:
        raise RehearsalError(f"campaign {source_id!r} has no stored events to rehearse")
    baseline = await store.fetch(conn, source.baseline) if source.baseline else None
    target = msgspec.structs.replace(source, id=target_id)
    return Night(source, target, baseline, count, first.timestamp(), last.timestamp())


async def _rows(conn: asyncpg.Connection, sql: str, *args: Any) -> AsyncGenerator[list[asyncpg.Record], None]:
    """The rows of ``sql`` a chunk at a time, through a server-side cursor (never the whole night in memory)."""
    async with conn.transaction(readonly=True):
        cursor = await conn.cursor(sql, *args)
        while rows := await cursor.fetch(FETCH_ROWS):
            yield rows


# ---- in-process (--rules) ----------------------------------------------------------------------


async def _in_process(
    dsn: str, args: argparse.Namespace, rules: list[AnyRule], bar: Bar
) -> tuple[list[NightAlert], Night]:
    """The night through the pure engine and rules, as fast as it goes."""
    conn = await asyncpg.connect(dsn)
    try:
        night = await _night(conn, args.source, args.target)
        bar.start(night)
        rehearsal = Rehearsal(night.target, rules, time.time(), night.baseline)
        if night.baseline is not None:
            async with contextlib.aclosing(_rows(conn, HISTORY_SQL, night.baseline.id)) as history:
                async for rows in history:
                    rehearsal.remember(map(Event._make, rows))
        async with contextlib.aclosing(_rows(conn, NIGHT_SQL, night.source.id)) as chunks:
            async for rows in chunks:
                rehearsal.play(map(Event._make, rows))
                bar.show(rehearsal.through, rehearsal.played)
        alerts = rehearsal.finish()
        bar.show(rehearsal.through, rehearsal.played, force=True)
        return alerts, night
    finally:
        await conn.close()


# ---- through the server ------------------------------------------------------------------------


def rehearsal_event_id(target: str, original: str) -> str:
    """The id an event of the stored night is posted again with: the rehearsal's campaign and the original id
    (or, when that would be too long, a digest of it), so a retried batch deduplicates and two rehearsals of
    one night do not."""
    event_id = f"{target}/{original}"
    if len(event_id) <= MAX_EVENT_ID:
        return event_id
    return f"{target}/#{hashlib.sha256(original.encode()).hexdigest()}"


def _posted(row: asyncpg.Record, target: str) -> dict[str, Any]:
    """A stored event as the rehearsal posts it: a new id, the rehearsal's campaign, every other field as stored."""
    event: dict[str, Any] = {name: row[name] for name in POSTED_COLUMNS if row[name] is not None}
    event.update({name: msgspec.Raw(row[name].encode()) for name in JSON_COLUMNS if row[name] is not None})
    event["event_id"] = rehearsal_event_id(target, row["event_id"])
    event["campaign"] = target
    return event


def _watermark(target: str, through: float) -> dict[str, Any]:
    return {
        "event_id": f"{target}/watermark/{round(through * 1000)}",
        "type": "watermark",
        "campaign": target,
        "occurred_at": datetime.fromtimestamp(through, UTC).isoformat(),
    }


@dataclass
class Server:
    """The war-room the rehearsal runs on: posts with the ingest key, reads with a screen key of the rehearsal."""

    url: str
    ingest_key: str
    screen_key: str = ""
    _client: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self._client = httpx.AsyncClient(base_url=self.url.rstrip("/"), timeout=10)

    async def close(self) -> None:
        await self._client.aclose()

    async def _request(self, method: str, path: str, key: str, **options: Any) -> httpx.Response:
        try:
            return await self._client.request(method, path, headers={"Authorization": f"Bearer {key}"}, **options)
        except httpx.TransportError as exc:
            raise RehearsalError(f"cannot reach the war-room at {self.url}: {exc or type(exc).__name__}") from None

    async def _read(self, path: str, **params: Any) -> httpx.Response:
        """A 200 or 404 answer; a busy server (429, 503) is asked again after the wait it names."""
        for attempt in range(1, READ_ATTEMPTS + 1):
            response = await self._request("GET", path, self.screen_key, params=params)
            if response.status_code in (200, 404):
                return response
            if response.status_code not in (429, 503) or attempt == READ_ATTEMPTS:
                break
            await asyncio.sleep(float(response.headers.get("Retry-After", POLL_S)))
        raise RehearsalError(f"GET {path} answered {response.status_code}: {_message(response)}")

    async def check_ingest_key(self) -> None:
        """An empty batch: the server says whether it takes the key before anything is changed."""
        response = await self._request("POST", "/v1/events", self.ingest_key, json={"events": []})
        if response.status_code in (401, 403):
            raise RehearsalError(f"the war-room at {self.url} refused the ingest key: {_message(response)}")
        if response.status_code != 202:
            raise RehearsalError(f"POST /v1/events answered {response.status_code}: {_message(response)}")

    async def knows(self, campaign: str) -> bool:
        return (await self._read(f"/v1/campaigns/{campaign}")).status_code == 200

    async def clock(self, campaign: str) -> float | None:
        """The campaign's clock on the server, once it runs on event time."""
        response = await self._read(f"/v1/campaigns/{campaign}/snapshot")
        if response.status_code != 200:
            return None
        snapshot = response.json()
        return datetime.fromisoformat(snapshot["as_of"]).timestamp() if snapshot["clock"] == "replay" else None

    async def firing(self, campaign: str) -> int:
        return len((await self._read("/v1/alerts", campaign=campaign)).json())

    async def last_evaluation(self) -> float | None:
        """When (server time) the rules were last evaluated; None when the server has no rules."""
        rules = (await self._read("/v1/rules")).json()["rules"]
        return max((r["last_evaluated_at"] or 0.0 for r in rules), default=None)

    async def evaluations(self, count: int) -> None:
        """Wait until the server has begun ``count`` evaluations since now: the last but one has then stored
        its transitions (evaluations run one after another). Nothing to wait for when it has no rules."""
        seen = await self.last_evaluation()
        for _ in range(count):
            if seen is None:
                return
            seen = await self._evaluation_after(seen)

    async def _evaluation_after(self, previous: float) -> float:
        deadline = time.monotonic() + SERVER_WAIT_S
        while (latest := await self.last_evaluation()) is None or latest <= previous:
            if time.monotonic() > deadline:
                raise RehearsalError(
                    f"gave up after {SERVER_WAIT_S:g} s waiting for the war-room to evaluate its rules"
                )
            await asyncio.sleep(POLL_S)
        return latest


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:300]


async def _until(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise RehearsalError(f"gave up after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(POLL_S)


async def _on_server(dsn: str, args: argparse.Namespace, bar: Bar) -> tuple[list[NightAlert], Night]:
    """Define the rehearsal's campaign, post the night paced, wait for the server to judge all of it, read the
    alerts back."""
    conn = await asyncpg.connect(dsn)
    server = Server(args.url, args.key)
    key_name = f"rehearse-{args.target}-{secrets.token_hex(3)}"
    try:
        night = await _night(conn, args.source, args.target)
        await _check_target(conn, night.target, args.replace)
        await server.check_ingest_key()
        _, server.screen_key = await keys.create(conn, key_name, "screen")
        if args.replace:
            await _clear(conn, server, args.target)
        await store.save(conn, night.target)
        await _until(
            lambda: server.knows(args.target),
            SERVER_WAIT_S,
            f"the war-room to see campaign {args.target} (does it use the same database as this command?)",
        )
        bar.start(night)
        poster = Poster(args.url, args.key)
        try:
            through = await _send(conn, night, poster, args.speed, bar)
        finally:
            await poster.close()
        bar.waiting()

        async def reached() -> bool:
            clock = await server.clock(args.target)
            return clock is not None and clock >= through - REPLAY_LATENESS_S

        await _until(reached, CATCH_UP_S, "the war-room to count the night up to its last event")
        await server.evaluations(2)
        return await alert_store.campaign_alerts(conn, args.target), night
    finally:
        await server.close()
        if server.screen_key:
            await keys.revoke(conn, key_name)
        await conn.close()


async def _check_target(conn: asyncpg.Connection, campaign: Campaign, replace: bool) -> None:
    """The rehearsal's campaign may be judged, and takes nothing from anyone unless ``replace`` says so."""
    target, stored = campaign.id, await store.fetch_all(conn)
    leaning = [c.id for c in stored if c.baseline == target]
    if leaning:
        raise RehearsalError(
            f"{target!r} is the baseline of {', '.join(leaning)}: a baseline is history and raises no alert;"
            " choose another --as"
        )
    if not replace and any(c.id == target and c != campaign for c in stored):
        raise RehearsalError(
            f"campaign {target!r} is defined already, as another night: add --replace to redefine it,"
            " or choose another --as"
        )
    if not replace and await conn.fetchval(HAS_EVENTS_SQL, target):
        raise RehearsalError(
            f"campaign {target!r} already has events: add --replace to delete them and its alerts first,"
            " or choose another --as"
        )


async def _clear(conn: asyncpg.Connection, server: Server, target: str) -> None:
    """Start the rehearsal's campaign from nothing: undefine it so the server drops its numbers and resolves its
    alerts, then delete its events and alerts (a new definition is counted from its stored events, now none)."""
    await store.delete(conn, target)
    await _until(lambda: _not(server.knows(target)), SERVER_WAIT_S, f"the war-room to forget campaign {target}")

    async def quiet() -> bool:
        return await server.firing(target) == 0

    await _until(quiet, SERVER_WAIT_S, f"the alerts of {target} to resolve (a flapping one takes 15 minutes)")
    await server.evaluations(2)
    deleted = await conn.execute(DELETE_EVENTS_SQL, target)
    alerts = await alert_store.delete_campaign_alerts(conn, target)
    print(f"replace: deleted {deleted.split()[-1]} events and {alerts} alerts of {target}", file=sys.stderr)


async def _not(check: Awaitable[bool]) -> bool:
    return not await check


async def _send(conn: asyncpg.Connection, night: Night, poster: Poster, speed: float, bar: Bar) -> float:
    """Post the night paced at ``speed`` from its first event, each batch followed by a watermark at the night
    time sent through; the last watermark (the night's last event). A replay that falls behind its pace sends
    full batches, each still followed by its watermark, so the server's clock keeps moving with it."""
    async with contextlib.aclosing(_rows(conn, POSTED_SQL, night.source.id)) as chunks:
        return await _paced(_one_by_one(chunks), night, poster, speed, bar)


async def _one_by_one(chunks: AsyncIterator[list[asyncpg.Record]]) -> AsyncIterator[asyncpg.Record]:
    async for rows in chunks:
        for row in rows:
            yield row


async def _paced(rows: AsyncIterator[asyncpg.Record], night: Night, poster: Poster, speed: float, bar: Bar) -> float:
    target, origin, sent = night.target.id, time.monotonic(), 0
    row = await anext(rows, None)
    while True:
        reached = night.first + (time.monotonic() - origin) * speed
        batch: list[dict[str, Any]] = []
        while row is not None and len(batch) < BATCH_EVENTS and row["occurred_at"].timestamp() <= reached:
            batch.append(_posted(row, target))
            row = await anext(rows, None)
        sent += len(batch)
        next_at = row["occurred_at"].timestamp() if row is not None else None
        through = night.last if next_at is None else min(reached, next_at - WATERMARK_GAP_S)
        batch.append(_watermark(target, through))
        try:
            report = await poster.post(batch)
        except (RuntimeError, httpx.TransportError) as exc:
            raise RehearsalError(f"{exc}; {target} keeps what was sent, --replace starts over") from None
        bar.count(report)
        bar.show(through, sent)
        if next_at is None:
            return through
        if next_at > reached:
            await asyncio.sleep(TICK_S)


# ---- progress ----------------------------------------------------------------------------------


@dataclass
class Bar:
    """The progress line on stderr: the night time reached, the share of the night's events sent, events/s.
    Redrawn in place on a terminal, one line per ``PROGRESS_EVERY_S`` otherwise."""

    label: str
    night: Night | None = None
    started: float = 0.0
    through: float | None = None
    done: int = 0
    rejected: int = 0
    _shown: float = 0.0
    _drawn: bool = False

    def start(self, night: Night) -> None:
        self.night, self.started = night, time.monotonic()
        print(
            f"rehearsing {night.source.id} as {night.target.id}: {night.events:,} events from "
            f"{night_time(night.first, night.target.timezone)} to {night_time(night.last, night.target.timezone)}",
            file=sys.stderr,
            flush=True,
        )

    def count(self, report: dict[str, Any]) -> None:
        self.rejected += len(report["rejected"])

    def show(self, through: float | None, done: int, force: bool = False) -> None:
        self.through, self.done = through, done
        now = time.monotonic()
        if self.night is None or not (force or now - self._shown >= PROGRESS_EVERY_S):
            return
        self._shown = now
        share = done / max(self.night.events, 1)
        filled = round(share * BAR_WIDTH)
        rate = done / max(now - self.started, 1e-9)
        line = (
            f"[{self.label}] {self._reached()} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:4.0%}"
            f" · {done:,}/{self.night.events:,} events · {rate:,.0f} events/s"
            + (f" · {self.rejected:,} rejected" if self.rejected else "")
        )
        if sys.stderr.isatty():
            print(f"\r{line}\033[K", end="", file=sys.stderr, flush=True)
            self._drawn = True
        else:
            print(line, file=sys.stderr, flush=True)

    def waiting(self) -> None:
        self.show(self.through, self.done, force=True)
        self.end()
        print(f"[{self.label}] sent; waiting for the war-room to judge the night up to its end", file=sys.stderr)

    def where(self) -> str:
        """Where the night had got to, for the message after Ctrl-C."""
        return f"at {self._reached()} of the night ({self.done:,} events)" if self.night else "before it began"

    def end(self) -> None:
        if self._drawn:
            print(file=sys.stderr, flush=True)
            self._drawn = False

    def _reached(self) -> str:
        assert self.night is not None
        at = self.through if self.through is not None else self.night.first
        return night_time(at, self.night.target.timezone)
