-- The journal of refused requests: every request the public listener (token
-- and notify) answered with a 4xx, kept so that the sender's mistake can be
-- seen and explained.
--
-- `reason` is one of a few words (the filter of GET /api/v1/refusals and the
-- label of finpay_qris_refusals_total); `response_code` and `message` are the
-- SNAP answer as sent. `sender` is the peer address. `headers` are the
-- request's headers without credentials: the bearer token is replaced by the
-- first 12 hex digits of its SHA-256, cookies are dropped, signatures are kept
-- (they are not secrets). `body` holds at most `refusals.body_limit_bytes`
-- of the bytes received (NULL when they could not be read: larger than
-- `server.body_limit_bytes`, or too slow); `body_bytes` is how many were
-- received.
--
-- For a refused signature the doctor lists, in `dialects`, the known ways of
-- signing that explain it (an empty array: none does) and says so in
-- `diagnosis`; both are NULL when no diagnosis was made (another kind of
-- refusal, or more refusals at once than the doctor's budget).
--
-- Ids are UUIDv7: they sort by time. The table is bounded by
-- `refusals.max_rows` and `refusals.max_age_days`; the journal's writer deletes
-- the oldest rows in small batches.
CREATE TABLE refusals (
    id            TEXT PRIMARY KEY,
    received_at   TIMESTAMPTZ NOT NULL,
    route         TEXT NOT NULL CHECK (route IN ('token', 'notify')),
    path          TEXT NOT NULL,
    response_code TEXT NOT NULL CHECK (response_code ~ '^4[0-9]{6}$'),
    reason        TEXT NOT NULL CHECK (reason IN (
                      'invalid_signature', 'invalid_token', 'stale_timestamp', 'unknown_client',
                      'missing_field', 'invalid_field', 'bad_request', 'conflict', 'other')),
    message       TEXT NOT NULL,
    sender        TEXT,
    headers       JSONB NOT NULL CHECK (jsonb_typeof(headers) = 'object'),
    body          BYTEA,
    body_bytes    BIGINT NOT NULL CHECK (body_bytes >= 0),
    dialects      JSONB CHECK (jsonb_typeof(dialects) = 'array'),
    diagnosis     TEXT,
    CHECK (body IS NULL OR length(body) <= body_bytes),
    CHECK ((dialects IS NULL) = (diagnosis IS NULL))
);
-- The API's list (newest first, optionally one reason) and the pruning by age.
CREATE INDEX refusals_by_reason ON refusals (reason, id);
CREATE INDEX refusals_by_time ON refusals (received_at);
