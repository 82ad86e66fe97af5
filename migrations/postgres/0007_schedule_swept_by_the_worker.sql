-- Settling a payment should write its own row and nothing else.
--
-- Since 0005 a settlement clearing `next_check_at` deleted its row from
-- `payment_checks_due`, through a statement-level trigger that captured every
-- updated payment (old and new) in transition tables and ran two statements
-- over them: about a sixth of PostgreSQL's time on the notify path, plus an
-- index lookup, a heap delete and a WAL record per settlement (bench/run.sh,
-- perf). A settled payment's schedule row can instead wait for the worker:
--
-- * the database still copies every time a check is *set* (insert, or an
--   update giving `next_check_at` a new non-NULL value) into
--   `payment_checks_due`, by row-level triggers whose WHEN clause PostgreSQL
--   tests without calling PL/pgSQL, so a settlement fires nothing;
-- * a row whose payment has no check any more (`next_check_at` NULL) is stale:
--   the worker's claim never returns it (it requires `p.next_check_at <= now`),
--   and the worker's sweep deletes it once it comes due, locking the payment as
--   it does so that a concurrent statement setting a new check is either waited
--   for or skipped.
--
-- So `payment_checks_due` holds a row, with the same time, for every payment
-- with a check scheduled, and possibly stale rows not yet due or not yet swept.
DROP TRIGGER payments_checks_due_after_insert ON payments;
DROP TRIGGER payments_checks_due_after_update ON payments;
DROP FUNCTION payments_checks_due_after_insert();
DROP FUNCTION payments_checks_due_after_update();

CREATE FUNCTION payments_checks_due_set() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A stale row of this payment, if not swept yet, gets the new time.
    INSERT INTO payment_checks_due (payment_id, due_at) VALUES (NEW.id, NEW.next_check_at)
        ON CONFLICT (payment_id) DO UPDATE SET due_at = EXCLUDED.due_at;
    RETURN NULL;
END
$$;

CREATE TRIGGER payments_checks_due_on_insert AFTER INSERT ON payments
    FOR EACH ROW WHEN (NEW.next_check_at IS NOT NULL)
    EXECUTE FUNCTION payments_checks_due_set();
CREATE TRIGGER payments_checks_due_on_set AFTER UPDATE OF next_check_at ON payments
    FOR EACH ROW WHEN (NEW.next_check_at IS NOT NULL AND NEW.next_check_at IS DISTINCT FROM OLD.next_check_at)
    EXECUTE FUNCTION payments_checks_due_set();
