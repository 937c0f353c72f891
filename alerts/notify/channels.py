"""Sending one message through one Apprise URL, and when to try again after a failure.

Apprise covers DingTalk, WeCom bots, Feishu/Lark, Slack, Telegram, email,
ntfy, PagerDuty, Opsgenie and plain JSON webhooks behind one URL syntax.
Apprise reports failures in its log entries; those are kept as the
attempt's error, with every secret part of the URL masked.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import apprise

from alerts.evaluation.severity import Severity

SEND_TIMEOUT_S = 10.0
RETRY_BASE_S = 1.0
RETRY_CAP_S = 300.0
"""Backoff doubles from ``RETRY_BASE_S`` up to this, with jitter, until the message is older than
``GIVE_UP_AFTER_S``."""
GIVE_UP_AFTER_S = 6 * 3600.0
MASK = "***"
_TOKEN = re.compile(r"[^/:@?&=#+,;%\s]{3,}")
APPRISE_LOG_LEVEL = logging.WARNING
"""Apprise logs whole URLs, secrets included, at debug level: never let those through, whatever the log level."""
_NOTIFY_TYPES: dict[Severity, apprise.NotifyType] = {
    Severity.EMERGENCY: apprise.NotifyType.FAILURE,
    Severity.WARNING: apprise.NotifyType.WARNING,
    Severity.REMINDER: apprise.NotifyType.INFO,
}
_RESOLVED_TYPE = apprise.NotifyType.SUCCESS


def notify_type(severity: Severity, resolved: bool) -> str:
    """Apprise's message type (colour/icon in most chat apps) for an alert group message."""
    return (_RESOLVED_TYPE if resolved else _NOTIFY_TYPES[severity]).value


def retry_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with "equal jitter": half the step fixed, half random, so retries of
    many messages after an outage do not arrive at the receiver in lockstep."""
    step = min(RETRY_CAP_S, RETRY_BASE_S * 2 ** max(0, attempt - 1))
    return step / 2 + (rng or random).uniform(0, step / 2)


def understood(url: str) -> bool:
    """Whether Apprise can use this URL. Apprise logs a URL it cannot parse, whole, at error level:
    its logger is silenced for the check."""
    logger = logging.getLogger("apprise")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        return apprise.Apprise.instantiate(url) is not None
    finally:
        logger.setLevel(level)


def url_id(url: str) -> str:
    """A stable name for one (expanded) URL that reveals nothing of it: where its queued messages belong."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def secrets_of(url: str) -> list[str]:
    """Parts of an Apprise URL that may be secret (tokens, keys, passwords, topics, hosts), as written and
    percent-decoded, longest first."""
    rest = url.split("://", 1)[1] if "://" in url else url
    parts = set(_TOKEN.findall(rest)) | set(_TOKEN.findall(unquote(rest))) | {url, unquote(url)}
    try:
        split = urlsplit(url)
        parts |= {unquote(p) for p in (split.username, split.password) if p}
    except ValueError:
        pass
    return sorted(parts, key=len, reverse=True)


def mask(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def guard_log(mask: logging.Filter) -> None:
    """Before sending: raise Apprise's logger to ``APPRISE_LOG_LEVEL`` and mask what it still logs. Done by the
    process that sends (not on import), so importing this module changes no logging."""
    logger = logging.getLogger("apprise")
    logger.setLevel(APPRISE_LOG_LEVEL)
    logger.addFilter(mask)


class SecretMask(logging.Filter):
    """Masks every part of the configured URLs in log records of the ``apprise`` logger."""

    def __init__(self, urls: list[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for url in urls for s in secrets_of(url)}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = mask(record.getMessage(), self.secrets), None
        return True


def public_form(url: str) -> str:
    """The URL as the API may show it: the scheme and Apprise's privacy form of the host (tokens in the
    host position shortened), nothing after it (paths, queries and headers often carry keys or topics)."""
    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        return MASK
    scheme, _, rest = plugin.url(privacy=True).partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0]
    return f"{scheme}://{host}/{MASK}"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    duration_ms: float
    error: str | None


async def send(url: str, title: str, body: str, kind: str) -> Outcome:
    """Deliver one message; never raises for a delivery failure and never reveals the URL's secrets."""
    started = time.perf_counter()
    sender = apprise.Apprise()
    if not sender.add(url):
        return Outcome(False, 0.0, "Apprise could not load this URL")
    result = await sender.async_notify(
        body=body, title=title, notify_type=kind, body_format=apprise.NotifyFormat.MARKDOWN, timeout=SEND_TIMEOUT_S
    )
    duration_ms = (time.perf_counter() - started) * 1000
    if result:
        return Outcome(True, duration_ms, None)
    problems = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR", "CRITICAL")]
    error = "; ".join(problems) or f"delivery failed ({result.status.name.lower()})"
    return Outcome(False, duration_ms, mask(error, secrets_of(url))[:2000])
