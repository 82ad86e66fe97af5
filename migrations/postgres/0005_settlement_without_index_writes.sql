-- Settling a payment should rewrite one heap tuple and nothing else.
--
-- PostgreSQL can update a row in place on its page without touching any index
-- (a HOT update) only if no indexed column changes and the page has room. A
-- settlement changes `status` and clears `next_check_at`, and both were
-- indexed, so every settlement wrote a new tuple on another page and a new
-- entry into each of the five indexes of `payments`: about 30 of the ~58
-- buffer accesses and 5 of the ~18 WAL records per notification (bench/run.sh).
--
-- * `payments_status` is dropped: listing by status scans `payments` by id
--   (newest first, the order the list returns) and filters, as it already did
--   whenever the status was not given.
-- * The worker's schedule index moves to a table of its own, kept by the
--   database from `payments.next_check_at` (triggers below), so it cannot
--   disagree with the column: a row per payment with a check due. A
--   settlement that clears `next_check_at` deletes that row (a delete writes
--   no index entry).
-- * `fillfactor = 80` leaves room on each page for the settled version of its
--   rows. It applies to pages written from now on; an existing table gets it
--   for its old pages only after a rewrite (`VACUUM FULL payments`), which
--   nothing requires.
-- * payment_events: the audit trail is only ever read by payment, in id order,
--   so its primary key becomes (payment_id, id) and the separate index on the
--   same columns goes: one index write per event instead of two.
CREATE TABLE payment_checks_due (
    payment_id TEXT PRIMARY KEY REFERENCES payments(id),
    due_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX payment_checks_due_at ON payment_checks_due (due_at);
INSERT INTO payment_checks_due (payment_id, due_at)
    SELECT id, next_check_at FROM payments WHERE next_check_at IS NOT NULL;

-- Kept by statement-level triggers: one call per statement, set-based over the
-- rows it changed (a row-level trigger would call PL/pgSQL once per settled
-- payment, which cost a tenth of the database's time on the notify path).
CREATE FUNCTION payments_checks_due_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO payment_checks_due (payment_id, due_at)
        SELECT id, next_check_at FROM inserted_payments WHERE next_check_at IS NOT NULL;
    RETURN NULL;
END
$$;

CREATE FUNCTION payments_checks_due_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM payment_checks_due d USING old_payments o, new_payments n
        WHERE o.id = n.id AND d.payment_id = n.id
          AND n.next_check_at IS NULL AND o.next_check_at IS NOT NULL;
    INSERT INTO payment_checks_due (payment_id, due_at)
        SELECT n.id, n.next_check_at FROM old_payments o JOIN new_payments n ON o.id = n.id
        WHERE n.next_check_at IS NOT NULL AND o.next_check_at IS DISTINCT FROM n.next_check_at
        ON CONFLICT (payment_id) DO UPDATE SET due_at = EXCLUDED.due_at;
    RETURN NULL;
END
$$;

CREATE TRIGGER payments_checks_due_after_insert AFTER INSERT ON payments
    REFERENCING NEW TABLE AS inserted_payments
    FOR EACH STATEMENT EXECUTE FUNCTION payments_checks_due_after_insert();
CREATE TRIGGER payments_checks_due_after_update AFTER UPDATE ON payments
    REFERENCING OLD TABLE AS old_payments NEW TABLE AS new_payments
    FOR EACH STATEMENT EXECUTE FUNCTION payments_checks_due_after_update();

DROP INDEX payments_due;
DROP INDEX payments_status;
ALTER TABLE payments SET (fillfactor = 80);

ALTER TABLE payment_events DROP CONSTRAINT payment_events_pkey;
DROP INDEX payment_events_payment;
ALTER TABLE payment_events ADD PRIMARY KEY (payment_id, id);
