-- As PostgreSQL's 0008: no statement reads notifications by payment_id, so the
-- index only cost every notification an insertion. The foreign key stays (SQLite
-- checks it on insert by the payments' primary key; payments are never deleted).
DROP INDEX notifications_payment;
