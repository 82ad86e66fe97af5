-- The per-notification transaction of finpay-qris, as pgbench sees it: store the
-- notification on its idempotency key (ON CONFLICT on the unique key), then update
-- the payment it names. Row sizes match what `finpay-qris loadgen` sends (raw body
-- ~330 B, audit headers ~420 B). Run by bench/run.sh:
--   pgbench -n -M prepared -f bench/pgbench_notify.sql -D payments=100000 -c 16 -j 2 -T 10 finpay_bench
-- The service does more per notification than this (it reads the key and the
-- payment first, and writes an audit entry for the notification and one for the
-- status change): this is the database's ceiling for the bare shape, which the
-- service is compared against. (chr(58) below is a colon:
-- pgbench would take a colon followed by a word for one of its variables.)
\set r random(1, 1000000000000)
\set pay random(1, :payments)
BEGIN;
INSERT INTO notifications (partner_id, external_id, jakarta_day, body_sha256, raw_body, headers, verification,
                           payment_id, outcome, received_at)
VALUES ('FINPAY-BENCH', 'PGB' || CAST(:client_id AS text) || 'X' || CAST(:r AS text), current_date,
        '\x5a1f0c7d9e5b3c2a1f0e9d8c7b6a59483726150f0e1d2c3b4a5968778695a4b3'::bytea,
        '{"originalReferenceNo":"FP' || CAST(:pay AS text) || '","originalPartnerReferenceNo":"PRN' || CAST(:pay AS text) || '","latestTransactionStatus":"00","transactionStatusDesc":"loadgen","amount":{"value":"10000.00","currency":"IDR"},"additionalInfo":{"merchantName":"LOADGEN","rrn":"000000012345"}}',
        '{"host":"127.0.0.1:18080","content-type":"application/json","x-timestamp":"2026-11-25T23:41:07+07:00","x-signature":"Hg462Fq/P13QFIxSYa0TaaaEdQOIkcF0fkno/Xqpcn6aOXfeq5KwfCmUItemmh8dRFICK7x/1vd27iSLoJkJpA==","x-partner-id":"FINPAY-BENCH","x-external-id":"1234567800011234","channel-id":"95221","content-length":"262"}',
        'symmetric' || chr(58) || 'HMAC-SHA512',
        (SELECT id FROM payments WHERE partner_reference_no = 'PRN' || CAST(:pay AS text)), 'applied', now())
ON CONFLICT (partner_id, external_id, jakarta_day) DO NOTHING;
UPDATE payments SET status = 'paid', finpay_status = '00', paid_at = COALESCE(paid_at, now()), next_check_at = NULL,
       updated_at = now()
 WHERE partner_reference_no = 'PRN' || CAST(:pay AS text);
COMMIT;
