-- PostgreSQL drops payment_events' foreign key in its 0004 and forbids deleting
-- payments instead (see migrations/postgres/0004_events_without_fk_check.sql).
-- SQLite keeps the foreign key, whose check is cheap here; it gets the same
-- rule that payments are never deleted.
CREATE TRIGGER payments_are_never_deleted BEFORE DELETE ON payments
BEGIN
    SELECT RAISE(ABORT, 'payments are never deleted (the audit trail refers to them)');
END;
