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
--   settlement that clears `next_check_at` deletes that row (no index write);
--   a settlement of a payment without a scheduled check touches nothing.
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

CREATE FUNCTION payments_keep_checks_due() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.next_check_at IS NULL THEN
        DELETE FROM payment_checks_due WHERE payment_id = NEW.id;
    ELSE
        INSERT INTO payment_checks_due (payment_id, due_at) VALUES (NEW.id, NEW.next_check_at)
            ON CONFLICT (payment_id) DO UPDATE SET due_at = EXCLUDED.due_at;
    END IF;
    RETURN NULL;
END
$$;

-- The WHEN conditions are evaluated without calling the function: a settlement
-- of a payment with no check scheduled (NULL to NULL) costs nothing here.
CREATE TRIGGER payments_checks_due_on_insert AFTER INSERT ON payments
    FOR EACH ROW WHEN (NEW.next_check_at IS NOT NULL) EXECUTE FUNCTION payments_keep_checks_due();
CREATE TRIGGER payments_checks_due_on_update AFTER UPDATE OF next_check_at ON payments
    FOR EACH ROW WHEN (OLD.next_check_at IS DISTINCT FROM NEW.next_check_at) EXECUTE FUNCTION payments_keep_checks_due();

DROP INDEX payments_due;
DROP INDEX payments_status;
ALTER TABLE payments SET (fillfactor = 80);

ALTER TABLE payment_events DROP CONSTRAINT payment_events_pkey;
DROP INDEX payment_events_payment;
ALTER TABLE payment_events ADD PRIMARY KEY (payment_id, id);
