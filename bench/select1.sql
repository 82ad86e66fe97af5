-- One round trip to PostgreSQL and nothing else, to measure the latency of a
-- round trip on this machine:
--   pgbench -h 127.0.0.1 -U postgres -n -M prepared -f bench/select1.sql -c 1 -T 3 test
SELECT 1;
