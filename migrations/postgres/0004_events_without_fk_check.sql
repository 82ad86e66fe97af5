-- payment_events is the append-only audit trail. Its foreign key cost a
-- referential check (a row lock on the payment) per event, two events per
-- notification, which was about a sixth of the database's work on the notify
-- path. The invariant it guarded (an event names an existing payment) is kept
-- by two other means:
--   * every event is written in the same statement or transaction that has
--     just locked or created its payment (store/postgres/bulk.rs, store/sql.rs),
--     and that statement checks it wrote exactly the rows it planned;
--   * payments are never deleted: the trigger below refuses it, so a payment an
--     event names cannot disappear afterwards.
-- notifications.payment_id keeps its foreign key (one check per notification).
ALTER TABLE payment_events DROP CONSTRAINT payment_events_payment_id_fkey;

CREATE FUNCTION payments_are_never_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'payments are never deleted (the audit trail refers to them)'
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER payments_are_never_deleted BEFORE DELETE ON payments
    FOR EACH STATEMENT EXECUTE FUNCTION payments_are_never_deleted();
