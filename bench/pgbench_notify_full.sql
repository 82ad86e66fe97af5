-- A second reference, beside the one the ratio is taken to: the row work finpay-qris does per settling
-- notification, one transaction per notification, as pgbench sees it. On top of
-- bench/pgbench_notify.sql it reads the payment (by partnerReferenceNo or
-- referenceNo) and the idempotency key first, locks the payment, writes the
-- audit entries (the notification's, and the status change's when there is
-- one), guards the update on the status it read, and writes the payment's
-- `payment.paid` event to the outbox (its number read after the lock; its
-- deliveries, one per endpoint: none in the benchmark). Run by bench/run.sh when FULL_SHAPE=1:
--   pgbench -n -M prepared -f bench/pgbench_notify_full.sql -D payments=100000 -c 16 -j 2 -T 10 finpay_bench
-- (chr(58) below is a colon; see bench/pgbench_notify.sql.)
\set r random(1, 1000000000000)
\set pay random(1, :payments)
BEGIN;
SELECT body_sha256 FROM notifications
 WHERE partner_id = 'FINPAY-BENCH' AND external_id = 'PGB' || CAST(:client_id AS text) || 'X' || CAST(:r AS text)
   AND jakarta_day = current_date;
SELECT CAST(status = 'pending' AS int) AS open FROM payments WHERE id = 'bench-' || CAST(:pay AS text) FOR UPDATE \gset
INSERT INTO notifications (partner_id, external_id, jakarta_day, body_sha256, raw_body, headers, verification,
                           payment_id, outcome, received_at)
VALUES ('FINPAY-BENCH', 'PGB' || CAST(:client_id AS text) || 'X' || CAST(:r AS text), current_date,
        '\x5a1f0c7d9e5b3c2a1f0e9d8c7b6a59483726150f0e1d2c3b4a5968778695a4b3'::bytea,
        '{"originalReferenceNo":"FP' || CAST(:pay AS text) || '","originalPartnerReferenceNo":"PRN' || CAST(:pay AS text) || '","latestTransactionStatus":"00","transactionStatusDesc":"loadgen","amount":{"value":"10000.00","currency":"IDR"},"additionalInfo":{"merchantName":"LOADGEN","rrn":"000000012345"}}',
        '{"host":"127.0.0.1:18080","content-type":"application/json","x-timestamp":"2026-11-25T23:41:07+07:00","x-signature":"Hg462Fq/P13QFIxSYa0TaaaEdQOIkcF0fkno/Xqpcn6aOXfeq5KwfCmUItemmh8dRFICK7x/1vd27iSLoJkJpA==","x-partner-id":"FINPAY-BENCH","x-external-id":"1234567800011234","channel-id":"95221","content-length":"262"}',
        'symmetric' || chr(58) || 'HMAC-SHA512',
        'bench-' || CAST(:pay AS text), 'applied', now())
ON CONFLICT (partner_id, external_id, jakarta_day) DO NOTHING
RETURNING id AS nid \gset
-- A payment already paid by an earlier transaction is left alone, as the service does.
\if :open
INSERT INTO payment_events (payment_id, kind, notification_id, detail, created_at)
VALUES ('bench-' || CAST(:pay AS text), 'notification', :nid,
        CAST('{"externalId":"PGB' || CAST(:r AS text) || '","latestTransactionStatus":"00","transactionStatusDesc":"loadgen","verification":"symmetric' || chr(58) || 'HMAC-SHA512"}' AS jsonb),
        now()),
       ('bench-' || CAST(:pay AS text), 'status_changed', NULL,
        CAST('{"from":"pending","to":"paid","by":"notification","flag"' || chr(58) || 'null}' AS jsonb), now());
UPDATE payments SET reference_no = 'FP' || CAST(:pay AS text), status = 'paid', finpay_status = '00',
       paid_at = COALESCE(paid_at, now()), flagged = NULL, next_check_at = NULL, updated_at = now()
 WHERE id = 'bench-' || CAST(:pay AS text) AND status = 'pending';
SELECT COALESCE(MAX(sequence), 0) + 1 AS seq FROM events WHERE payment_id = 'bench-' || CAST(:pay AS text) \gset
INSERT INTO events (id, type, payment_id, sequence, cause, body, created_at)
VALUES ('PGB' || CAST(:client_id AS text) || 'E' || CAST(:r AS text), 'payment.paid', 'bench-' || CAST(:pay AS text), :seq,
        'notification',
        '{"id":"PGB' || CAST(:r AS text) || '","type":"payment.paid","timestamp":"2026-11-25T16' || chr(58) || '41' || chr(58) || '07.123456Z","data":{"id":"bench-' || CAST(:pay AS text) || '","partnerReferenceNo":"PRN' || CAST(:pay AS text) || '","referenceNo":"FP' || CAST(:pay AS text) || '","amount":{"value":"10000.00","currency":"IDR"},"status":"paid","origin":"generated","qrContent"' || chr(58) || 'null,"qrUrl"' || chr(58) || 'null,"note"' || chr(58) || 'null,"validUntil"' || chr(58) || 'null,"paidAt":"2026-11-25T16' || chr(58) || '41' || chr(58) || '07.123456Z","refunded":{"value":"0.00","currency":"IDR"},"flagged"' || chr(58) || 'null,"finpayStatus":"00","createdAt":"2026-11-25T16' || chr(58) || '40' || chr(58) || '00.000000Z","updatedAt":"2026-11-25T16' || chr(58) || '41' || chr(58) || '07.123456Z","cause":"notification","sequence":' || CAST(:seq AS text) || '}}',
        now());
INSERT INTO deliveries (event_id, endpoint_id, status, attempts, next_attempt_at, created_at, updated_at)
SELECT 'PGB' || CAST(:client_id AS text) || 'E' || CAST(:r AS text), w.id, 'pending', 0, now(), now(), now()
  FROM webhook_endpoints w;
\else
INSERT INTO payment_events (payment_id, kind, notification_id, detail, created_at)
VALUES ('bench-' || CAST(:pay AS text), 'notification', :nid,
        CAST('{"externalId":"PGB' || CAST(:r AS text) || '","latestTransactionStatus":"00","transactionStatusDesc":"loadgen","verification":"symmetric' || chr(58) || 'HMAC-SHA512"}' AS jsonb),
        now());
\endif
COMMIT;
