"""Schemathesis hooks for .ci/contract.

Three rules of the API depend on time and history, which no schema can state:
`validUntil` must lie between 1 minute and 30 days from now, a time the API
reads (`since`, `createdFrom`, …) must fall in years 1 to 9999 once taken to
UTC (`0001-01-01T00:07:01+06:58` is in year 0 there), and an
`Idempotency-Key` belongs to the first body sent with it (a different body is
422 idempotency-key-reused, as the IETF draft says). Test cases meant to be
valid get a `validUntil` in that window, such times moved into those years
and a fresh key; test cases meant to be invalid are sent as generated.
"""

import uuid
from datetime import datetime, timedelta, timezone

import schemathesis


TIMES = ("since", "createdFrom", "createdTo", "from", "to")


def in_utc_calendar(value):
    """Whether an RFC 3339 time falls in years 1 to 9999 once taken to UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return True  # not a time this hook judges: sent as generated
    if parsed.tzinfo is None:
        return True  # a date (the exports' days), not an instant
    try:
        parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return False  # before year 1 or after year 9999 in UTC
    return True


def within_calendar(values):
    for name in TIMES:
        value = values.get(name) if isinstance(values, dict) else None
        if isinstance(value, str) and not in_utc_calendar(value):
            values[name] = datetime.now(timezone.utc).isoformat(timespec="seconds")


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    within_calendar(case.query)
    within_calendar(case.body)
    if case.method.upper() != "POST":
        return
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
    body = case.body
    if case.path == "/payments" and isinstance(body, dict) and isinstance(body.get("validUntil"), str):
        until = datetime.now(timezone.utc) + timedelta(minutes=15)
        body["validUntil"] = until.isoformat(timespec="seconds")
