"""Schemathesis hooks for .ci/contract.

Two rules of the API depend on time and history, which no schema can state:
`validUntil` must lie between 1 minute and 30 days from now, and an
`Idempotency-Key` belongs to the first body sent with it (a different body is
422 idempotency-key-reused, as the IETF draft says). Test cases meant to be
valid get a `validUntil` in that window and a fresh key; test cases meant to
be invalid are sent as generated.
"""

import uuid
from datetime import datetime, timedelta, timezone

import schemathesis


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or case.method.upper() != "POST":
        return
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
    body = case.body
    if case.path == "/payments" and isinstance(body, dict) and isinstance(body.get("validUntil"), str):
        until = datetime.now(timezone.utc) + timedelta(minutes=15)
        body["validUntil"] = until.isoformat(timespec="seconds")
