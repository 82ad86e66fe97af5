-- Payment events for the merchant's systems: an outbox written in the
-- transaction of each change, and its delivery to subscribed endpoints as
-- signed webhooks (Standard Webhooks v1). Read top to bottom.

-- Where events are sent. `source` says whether the endpoint was created
-- through the API or comes from the configuration (at most one). The secret
-- signs every delivery; after a rotation the previous one signs alongside it
-- until `previous_secret_until`. `failing_since` is the first failed attempt
-- since the last success: once it is older than the configured period the
-- endpoint is disabled (`disabled_reason` says why).
CREATE TABLE webhook_endpoints (
    id                    TEXT PRIMARY KEY,
    url                   TEXT NOT NULL,
    description           TEXT,
    source                TEXT NOT NULL CHECK (source IN ('api', 'config')),
    enabled               BOOLEAN NOT NULL,
    disabled_reason       TEXT,
    secret                TEXT NOT NULL CHECK (secret LIKE 'whsec_%'),
    previous_secret       TEXT CHECK (previous_secret LIKE 'whsec_%'),
    previous_secret_until TIMESTAMPTZ,
    failing_since         TIMESTAMPTZ,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL,
    CHECK ((previous_secret IS NULL) = (previous_secret_until IS NULL)),
    CHECK (enabled OR disabled_reason IS NOT NULL)
);
CREATE UNIQUE INDEX webhook_endpoints_one_from_config ON webhook_endpoints (source) WHERE source = 'config';

-- The event types an endpoint subscribed to; an endpoint with none receives
-- every type.
CREATE TABLE webhook_endpoint_types (
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_type  TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, event_type)
);

-- The outbox: one row per event, written in the transaction of the change
-- that raised it, so an event exists exactly when its change committed.
-- `body` is the JSON sent, byte for byte, on every attempt. A payment's
-- events are numbered by `sequence` (assigned under the payment's row lock)
-- so a consumer can drop a stale one; `endpoint.disabled` names no payment.
-- `txid` is the writing transaction: the changes feed returns only events of
-- transactions older than every one still running, so it never skips one
-- that commits late.
CREATE TABLE events (
    id         TEXT PRIMARY KEY,
    type       TEXT NOT NULL,
    payment_id TEXT REFERENCES payments (id),
    sequence   BIGINT CHECK (sequence > 0),
    cause      TEXT NOT NULL CHECK (cause IN ('notification', 'query', 'api', 'worker')),
    body       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    txid       xid8 NOT NULL DEFAULT pg_current_xact_id(),
    UNIQUE (payment_id, sequence),
    CHECK ((payment_id IS NULL) = (sequence IS NULL))
);
-- The changes feed (in transaction order) and the event list (newest first,
-- by type or payment).
CREATE INDEX events_feed ON events (txid, id);
CREATE INDEX events_by_time ON events (created_at, id);
CREATE INDEX events_by_type ON events (type, created_at);

-- One event to one endpoint: created with the event for every endpoint
-- subscribed to its type (a disabled endpoint's wait, parked, until it is
-- enabled again), or by a resend. Pending deliveries have their next attempt
-- scheduled; a claim leases one (and moves the attempt to the lease's end, so
-- a crashed sender's delivery comes due again).
CREATE TABLE deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        TEXT NOT NULL REFERENCES events (id),
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TIMESTAMPTZ,
    lease_owner     TEXT,
    lease_until     TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (event_id, endpoint_id),
    CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL)),
    CHECK ((lease_owner IS NULL) = (lease_until IS NULL))
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id, status, created_at);

-- Every attempt of a delivery: when, how long, what the endpoint answered
-- (its status and the start of its body) or why there was no answer.
CREATE TABLE delivery_attempts (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id      BIGINT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempted_at     TIMESTAMPTZ NOT NULL,
    status_code      INTEGER CHECK (status_code BETWEEN 100 AND 999),
    error            TEXT,
    latency_ms       BIGINT NOT NULL CHECK (latency_ms >= 0),
    response_excerpt TEXT,
    CHECK (status_code IS NOT NULL OR error IS NOT NULL)
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, id);
