"""Campaigns: the promotion being watched, its phases, targets, baseline and SKU catalog.

A campaign is defined in a YAML file (``campaigns/*.yaml``) or through the
operator API and validated here; ``app.campaigns.store`` keeps it in the
``campaigns`` table so every process sees the same definition. This module is
pure (no database driver), so the metrics engine can import it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from app.core import configfile

DEFAULT_TIMEZONE = "Asia/Shanghai"
PHASES = ("preheat", "burst", "wrapup")

Slug = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
Rate = Annotated[float, msgspec.Meta(ge=0, le=1)]
Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]


class Phase(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end need a UTC offset, e.g. 2026-11-11T00:00:00+08:00")
        if self.end <= self.start:
            raise ValueError("end must be after start")


class Phases(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    preheat: Phase
    burst: Phase
    wrapup: Phase

    def __post_init__(self) -> None:
        if not (self.preheat.end <= self.burst.start and self.burst.end <= self.wrapup.start):
            raise ValueError("phases must be in order and not overlap: preheat, then burst, then wrapup")

    def items(self) -> list[tuple[str, Phase]]:
        return [(name, getattr(self, name)) for name in PHASES]


class Targets(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    gmv: NonNegative | None = None
    paid_orders: NonNegative | None = None
    new_customers: NonNegative | None = None
    conversion_rate: Rate | None = None
    uv: NonNegative | None = None
    roi: NonNegative | None = None


class Sku(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    sku: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    name: str
    category: str = "uncategorized"
    safety_stock: Annotated[int, msgspec.Meta(ge=0)] = 0
    warning_level: Annotated[int, msgspec.Meta(ge=0)] = 0
    name_zh: str | None = None
    price: NonNegative | None = None

    def __post_init__(self) -> None:
        if self.warning_level < self.safety_stock:
            raise ValueError("warning_level must be at least safety_stock (the warning comes before the floor)")


class Campaign(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One promotion. ``baseline`` names last year's campaign, used for comparisons and dynamic thresholds."""

    id: Slug
    name: str
    phases: Phases
    name_zh: str | None = None
    timezone: str = DEFAULT_TIMEZONE
    currency: Currency = "CNY"
    exchange_rates: dict[Currency, Decimal] = {}
    """Units of ``currency`` per unit of another currency (``{USD: 7.10}``: 1 USD = 7.10 CNY), set by the
    operator from the finance team's rate for the night. Amounts in a currency without a rate stay out of GMV
    and are reported apart (snapshot ``unconverted``)."""
    targets: Targets = Targets()
    budget: NonNegative | None = None
    baseline: Slug | None = None
    stock_deducted_on: Literal["order_created", "order_paid"] = "order_paid"
    skus: list[Sku] = []

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone: unknown time zone {self.timezone!r}; use an IANA name such as Asia/Shanghai"
            ) from None
        seen: set[str] = set()
        for index, sku in enumerate(self.skus):
            if sku.sku in seen:
                raise ValueError(f"skus[{index}]: SKU {sku.sku!r} is listed twice")
            seen.add(sku.sku)
        if self.baseline == self.id:
            raise ValueError("baseline: a campaign cannot be its own baseline")
        for code, rate in self.exchange_rates.items():
            if code == self.currency:
                raise ValueError(f"exchange_rates: {code} is the campaign's own currency, it needs no rate")
            if not (rate.is_finite() and rate > 0):
                raise ValueError(f"exchange_rates: {code} must be a number greater than 0, got {rate}")

    @property
    def start(self) -> datetime:
        return self.phases.preheat.start

    @property
    def end(self) -> datetime:
        return self.phases.wrapup.end

    def moved(self, burst_at: datetime) -> Campaign:
        """The same campaign with every phase moved alike so that the burst starts at ``burst_at``: how a
        benchmark or a test puts a night on now."""
        shift = burst_at - self.phases.burst.start
        moved = [Phase(phase.start + shift, phase.end + shift) for _, phase in self.phases.items()]
        return msgspec.structs.replace(self, phases=Phases(*moved))

    def phase_at(self, moment: datetime) -> str | None:
        """The phase running at ``moment``, or None before the pre-heat and after the wrap-up."""
        for name, phase in self.phases.items():
            if phase.start <= moment < phase.end:
                return name
        return None


def parse(text: str, source: str = "<text>") -> Campaign:
    return configfile.parse(text, Campaign, source)


def load_file(path: Path) -> Campaign:
    return configfile.load(path, Campaign)


def load_directory(directory: Path) -> list[Campaign]:
    """Every ``*.yaml``/``*.yml`` campaign in ``directory`` (none when it does not exist); raises on the first
    invalid file."""
    if not directory.is_dir():
        return []
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    return [load_file(path) for path in files]


def to_json(campaign: Campaign) -> bytes:
    return msgspec.json.encode(campaign)


def from_json(data: bytes | str) -> Campaign:
    return msgspec.json.decode(data, type=Campaign)
