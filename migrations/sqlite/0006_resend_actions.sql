-- A person may also ask for a payment's event to be delivered again
-- (`resend_event`, from the console's timeline): like the other actions, it
-- is on record with the API key's name before it is scheduled.
--
-- SQLite cannot change a CHECK in place: the table is created again with
-- the wider one, its rows copied, and the old table replaced (nothing
-- refers to it).
CREATE TABLE payment_actions_widened (
    id         INTEGER PRIMARY KEY,
    payment_id TEXT NOT NULL REFERENCES payments (id),
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL CHECK (action IN ('refund', 'refresh', 'resolve_flag', 'resend_event')),
    detail     TEXT NOT NULL CHECK (json_valid(detail)),
    created_at TEXT NOT NULL
);
INSERT INTO payment_actions_widened (id, payment_id, actor, action, detail, created_at)
    SELECT id, payment_id, actor, action, detail, created_at FROM payment_actions;
DROP TABLE payment_actions;
ALTER TABLE payment_actions_widened RENAME TO payment_actions;
CREATE INDEX payment_actions_by_payment ON payment_actions (payment_id, id);
