-- The same schedule table as PostgreSQL's 0005 (which explains why), so that
-- the worker's claim is one query for both backends. SQLite has no HOT
-- updates, fillfactor or separate primary-key index on payment_events
-- (INTEGER PRIMARY KEY is the rowid), so only the schedule and the status
-- index change here.
CREATE TABLE payment_checks_due (
    payment_id TEXT PRIMARY KEY REFERENCES payments(id),
    due_at     TEXT NOT NULL
);
CREATE INDEX payment_checks_due_at ON payment_checks_due (due_at);
INSERT INTO payment_checks_due (payment_id, due_at)
    SELECT id, next_check_at FROM payments WHERE next_check_at IS NOT NULL;

CREATE TRIGGER payments_checks_due_on_insert AFTER INSERT ON payments
    WHEN NEW.next_check_at IS NOT NULL
BEGIN
    INSERT INTO payment_checks_due (payment_id, due_at) VALUES (NEW.id, NEW.next_check_at);
END;
CREATE TRIGGER payments_checks_due_on_set AFTER UPDATE OF next_check_at ON payments
    WHEN NEW.next_check_at IS NOT NULL AND OLD.next_check_at IS NOT NEW.next_check_at
BEGIN
    INSERT OR REPLACE INTO payment_checks_due (payment_id, due_at) VALUES (NEW.id, NEW.next_check_at);
END;
CREATE TRIGGER payments_checks_due_on_clear AFTER UPDATE OF next_check_at ON payments
    WHEN NEW.next_check_at IS NULL AND OLD.next_check_at IS NOT NULL
BEGIN
    DELETE FROM payment_checks_due WHERE payment_id = NEW.id;
END;

DROP INDEX payments_due;
DROP INDEX payments_status;
