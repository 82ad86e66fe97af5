-- As PostgreSQL's 0007 (which explains why): clearing a payment's check no
-- longer deletes its schedule row; the worker's claim never returns such a
-- stale row, and the worker's sweep deletes it once it comes due. Setting a
-- check still copies it (0005's insert and set triggers, unchanged).
DROP TRIGGER payments_checks_due_on_clear;
