-- No statement reads notifications by payment_id: the notify path finds a
-- stored notification by its idempotency key (the unique key), the item-by-item
-- path updates one by its id, and a payment's history is read from
-- payment_events. The index only cost every notification an index insertion (a
-- WAL record and ~3 buffer accesses). Looking a payment's notifications up by
-- hand still works (`WHERE payment_id = …`), by scanning the table.
DROP INDEX notifications_payment;
