-- The operator console and the people who act on payments, on SQLite: the
-- same tables, keys and checks as migrations/postgres/0005_console.sql.

-- Signed-in console users. The cookie holds a random token; only its SHA-256
-- is kept, so a leaked table signs nobody in. `key_name` and `key_id` are
-- the API key the user signed in with (its name, and the first 8 bytes of its
-- SHA-256 in hex; never the key); the role is read from the configuration on
-- each request, so removing or replacing a key ends its sessions.
-- A session ends at `expires_at`, which every request moves forward
-- (expiry after inactivity).
CREATE TABLE console_sessions (
    token_sha256 BLOB PRIMARY KEY CHECK (length(token_sha256) = 32),
    key_name     TEXT NOT NULL,
    key_id       TEXT NOT NULL CHECK (length(key_id) = 16),
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL CHECK (expires_at > created_at)
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- What a person did to a payment, through the console or the REST API:
-- who (the API key's name), what (a refund, a refresh, a flag resolved, an
-- event resent), and with which input (amount, reason, note, event).
-- Written before the action is carried out, so an action that fails half-way
-- is still on record; its outcome is in `payment_events`.
CREATE TABLE payment_actions (
    id         INTEGER PRIMARY KEY,
    payment_id TEXT NOT NULL REFERENCES payments (id),
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL CHECK (action IN ('refund', 'refresh', 'resolve_flag', 'resend_event')),
    detail     TEXT NOT NULL CHECK (json_valid(detail)),
    created_at TEXT NOT NULL
);
CREATE INDEX payment_actions_by_payment ON payment_actions (payment_id, id);

-- The reads of the console and the finance export (payments waiting for a
-- person, which a resolution clears, are read through `payments_flagged` of
-- 0004_ops.sql: flags are rare);
-- payments of a time range, and of an amount, newest first;
CREATE INDEX payments_by_created ON payments (created_at, id);
CREATE INDEX payments_by_amount ON payments (amount_minor, id);
-- payments paid and refunds asked in a time range (the export);
CREATE INDEX payments_by_paid ON payments (paid_at) WHERE paid_at IS NOT NULL;
CREATE INDEX refunds_by_created ON refunds (created_at);
-- notifications per hour (the overview's chart).
CREATE INDEX notifications_by_received ON notifications (received_at);
