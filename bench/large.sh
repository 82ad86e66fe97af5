#!/usr/bin/env bash
# The notify path and the API's reads with a large history already stored, next
# to the same measurements on an empty database, in one sitting:
#   1. an empty PostgreSQL database: pgbench (bench/pgbench_notify.sql), then
#      the service at $CONNS connections (loadgen), each run on payments of its own;
#   2. the history is seeded: $HISTORY_PAYMENTS payments with
#      $HISTORY_NOTIFICATIONS notifications and their audit entries;
#   3. the same runs again; then, under a light notify load (4 connections),
#      wrk measures GET /payments?status=pending, GET /payments/{id} and
#      GET /payments/{id}/events (p99).
# The service runs with its default settings.
#
# Usage: bench/large.sh
#        HISTORY_PAYMENTS=200000 HISTORY_NOTIFICATIONS=1000000 REPEAT=1 bench/large.sh
# Needs: cargo, psql, pgbench, wrk, curl, python3; PostgreSQL at $PGHOST:$PGPORT (user postgres, trust).
set -euo pipefail
cd "$(dirname "$0")/.."

PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
PGSSLMODE=${PGSSLMODE:-disable}
export PGHOST PGPORT PGUSER PGSSLMODE
DB=${DB:-finpay_large}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
REPEAT=${REPEAT:-3}
RUN_PAYMENTS=${RUN_PAYMENTS:-400000}
HISTORY_PAYMENTS=${HISTORY_PAYMENTS:-2000000}
HISTORY_NOTIFICATIONS=${HISTORY_NOTIFICATIONS:-10000000}
PGB_CLIENTS=${PGB_CLIENTS:-16}
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
API_PORT=$(free_port)
CLIENT_ID=FINPAY-BENCH
SECRET=bench-only-secret-0123456789abcdef
API_KEY=bench-api-key-0123456789abcdef0123
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
BIN=${BIN:-"$TARGET_DIR/release/finpay-qris"}
WORK=$(mktemp -d /tmp/finpay-large.XXXXXX)
SERVER_PID=""
URL="postgres://$PGUSER@$PGHOST:$PGPORT/$DB?sslmode=$PGSSLMODE"
log() { printf '>> %s\n' "$*" >&2; }
cleanup() {
    [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    psql -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

[[ "$BIN" == "$TARGET_DIR/release/finpay-qris" ]] && cargo build --release --quiet
"$BIN" keygen --out-dir "$WORK" --name finpay >/dev/null 2>&1
psql -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
DATABASE_URL="$URL" "$BIN" migrate >/dev/null

# Pending payments for one run, named R<run>PRN<n> / R<run>FP<n>, as POST /payments leaves them.
seed_run() {
    psql -q -d "$DB" -c "INSERT INTO payments (id, partner_reference_no, reference_no, amount_minor, currency, status,
            origin, created_at, updated_at, next_check_at)
        SELECT 'r$1-' || g, 'R$1PRN' || g, 'R$1FP' || g, 1000000, 'IDR', 'pending', 'generated', now(), now(),
            now() + interval '1 hour' FROM generate_series(1, $RUN_PAYMENTS) g" -c "VACUUM ANALYZE payments"
}

# History: payments PRN<n> (what pgbench_notify.sql settles), most of them paid, five
# notifications each over the last 90 days, each with its audit entry; each paid
# payment's `payment.paid` event.
seed_history() {
    psql -q -v ON_ERROR_STOP=1 -d "$DB" <<SQL
INSERT INTO payments (id, partner_reference_no, reference_no, amount_minor, currency, status, origin, paid_at,
    finpay_status, created_at, updated_at, next_check_at)
SELECT 'bench-' || g, 'PRN' || g, 'FP' || g, 1000000, 'IDR',
       CASE WHEN g % 20 = 0 THEN 'pending' WHEN g % 20 = 1 THEN 'expired' ELSE 'paid' END, 'generated',
       CASE WHEN g % 20 > 1 THEN now() - (g % 90) * interval '1 day' END, '00',
       now() - (g % 90) * interval '1 day', now() - (g % 90) * interval '1 day',
       CASE WHEN g % 20 = 0 THEN now() + interval '1 day' END
FROM generate_series(1, $HISTORY_PAYMENTS) g;
INSERT INTO payment_events (payment_id, kind, detail, created_at)
SELECT 'bench-' || g, 'created', '{"from":"api","status":"pending","amount":"10000.00"}', now() - (g % 90) * interval '1 day'
FROM generate_series(1, $HISTORY_PAYMENTS) g;
INSERT INTO notifications (partner_id, external_id, jakarta_day, body_sha256, raw_body, headers, verification,
    payment_id, outcome, received_at)
SELECT 'FINPAY-BENCH', 'H' || g, current_date - (g % 90), sha256(('H' || g)::bytea),
       '{"originalReferenceNo":"FP' || (g % $HISTORY_PAYMENTS + 1) || '","originalPartnerReferenceNo":"PRN' || (g % $HISTORY_PAYMENTS + 1) || '","latestTransactionStatus":"00","transactionStatusDesc":"history","amount":{"value":"10000.00","currency":"IDR"},"additionalInfo":{"merchantName":"LOADGEN","rrn":"000000012345"}}',
       '{"host":"127.0.0.1:18080","content-type":"application/json","x-timestamp":"2026-11-25T23:41:07+07:00","x-signature":"Hg462Fq/P13QFIxSYa0TaaaEdQOIkcF0fkno/Xqpcn6aOXfeq5KwfCmUItemmh8dRFICK7x/1vd27iSLoJkJpA==","x-partner-id":"FINPAY-BENCH","x-external-id":"1234567800011234","channel-id":"95221","content-length":"262"}',
       'symmetric:HMAC-SHA512', 'bench-' || (g % $HISTORY_PAYMENTS + 1), 'unchanged', now() - (g % 90) * interval '1 day'
FROM generate_series(1, $HISTORY_NOTIFICATIONS) g;
INSERT INTO payment_events (payment_id, kind, notification_id, detail, created_at)
SELECT payment_id, 'notification', id, '{"externalId":"history","latestTransactionStatus":"00","verification":"symmetric:HMAC-SHA512"}', received_at
FROM notifications WHERE external_id LIKE 'H%';
INSERT INTO events (id, type, payment_id, sequence, cause, body, created_at)
SELECT 'evt_history_' || id, 'payment.paid', id, 1, 'notification',
       '{"type":"payment.paid","timestamp":"2026-11-25T16:41:07Z","data":{"id":"' || id || '","partnerReferenceNo":"' || partner_reference_no || '","referenceNo":"' || reference_no || '","amount":{"value":"10000.00","currency":"IDR"},"status":"paid","origin":"generated","refundedAmount":{"value":"0.00","currency":"IDR"},"cause":"notification","sequence":1}}',
       paid_at
FROM payments WHERE status = 'paid' AND id LIKE 'bench-%';
VACUUM ANALYZE;
CHECKPOINT;
SQL
    log "history: $(psql -Atd "$DB" -c "SELECT (SELECT count(*) FROM payments) || ' payments, ' || (SELECT count(*) FROM notifications) || ' notifications, ' || (SELECT count(*) FROM payment_events) || ' audit entries, ' || (SELECT count(*) FROM events) || ' events, ' || pg_size_pretty(pg_database_size(current_database()))")"
}

start_server() {
    env FINPAY_QRIS__SERVER__LISTEN="127.0.0.1:$PORT" FINPAY_QRIS__API__LISTEN="127.0.0.1:$API_PORT" \
        FINPAY_QRIS__DATABASE__URL="$URL" FINPAY_QRIS__INBOUND__CLIENT_ID="$CLIENT_ID" \
        FINPAY_QRIS__INBOUND__CLIENT_SECRET="$SECRET" FINPAY_QRIS__INBOUND__PUBLIC_KEY="$WORK/finpay_public.pem" \
        FINPAY_QRIS__API__KEYS="$API_KEY" FINPAY_QRIS__WORKER__ENABLED=false \
        "$BIN" serve >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    cat "$WORK/server.log" >&2
    exit 1
}
stop_server() {
    kill "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=""
}
loadgen() { # $1 run tag, $2 connections, $3 seconds; prints the report's JSON line
    "$BIN" loadgen --url "http://127.0.0.1:$PORT" --client-id "$CLIENT_ID" --secret "$SECRET" \
        --private-key "$WORK/finpay_private.pem" --connections "$2" --duration-secs "$3" --warmup-secs "$WARMUP" \
        --payments "$RUN_PAYMENTS" --ref-prefix "R$1PRN" --finpay-ref-prefix "R$1FP" 2>/dev/null | grep '^{' | tail -n 1
}
pgbench_tps() {
    pgbench -n -M prepared -f bench/pgbench_notify.sql -D payments="$PGB_PAYMENTS" -c "$PGB_CLIENTS" -j 2 \
        -T "$DURATION" "$DB" 2>&1 | sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p'
}

# After pgbench, what it wrote is vacuumed and analysed and a checkpoint taken, on both points:
# the service starts from settled tables, not in the middle of autovacuum's and the checkpointer's
# work on pgbench's rows (which an empty database, with only pgbench's rows, feels most).
settle() {
    psql -q -v ON_ERROR_STOP=1 -d "$DB" -c "VACUUM ANALYZE payments, notifications, payment_events" -c "CHECKPOINT"
}

RESULTS="$WORK/results.txt"
RUN=0
measure() { # $1 label
    local r tps js
    for r in $(seq 1 "$REPEAT"); do
        RUN=$((RUN + 1))
        seed_run "$RUN" >/dev/null
        tps=$(pgbench_tps)
        settle >/dev/null
        start_server
        js=$(loadgen "$RUN" "$CONNS" "$DURATION")
        stop_server
        echo "$1 $tps $js" >>"$RESULTS"
        log "$1 run $r: pgbench $tps TPS; service $js"
    done
}

# The empty database (pgbench settles payments PRN1..PRN1000 of its own).
PGB_PAYMENTS=1000
psql -q -d "$DB" -c "INSERT INTO payments (id, partner_reference_no, reference_no, amount_minor, currency, status, origin, created_at, updated_at)
    SELECT 'bench-' || g, 'PRN' || g, 'FP' || g, 1000000, 'IDR', 'pending', 'generated', now(), now() FROM generate_series(1, 1000) g"
measure empty
psql -q -v ON_ERROR_STOP=1 -d "$DB" -c "TRUNCATE payment_actions, payment_events, notifications, refunds, delivery_attempts, deliveries, events, payments"
log "seeding $HISTORY_PAYMENTS payments and $HISTORY_NOTIFICATIONS notifications"
seed_history
PGB_PAYMENTS=$HISTORY_PAYMENTS
measure history

# Reads under a light notify load.
RUN=$((RUN + 1))
seed_run "$RUN" >/dev/null
start_server
ID=$(psql -Atd "$DB" -c "SELECT id FROM payments WHERE id LIKE 'bench-%' AND status = 'paid' ORDER BY random() LIMIT 1")
loadgen "$RUN" 4 $((DURATION * 3 + 6)) >/dev/null &
LG=$!
sleep "$WARMUP"
for path in "/api/v1/payments?status=pending" "/api/v1/payments/$ID" "/api/v1/payments/$ID/events"; do
    p99=$(wrk -t 1 -c 4 -d "${DURATION}s" --latency -H "Authorization: Bearer $API_KEY" \
        "http://127.0.0.1:$API_PORT$path" | awk '$1 == "99%" {print $2}')
    echo "read $path $p99" >>"$RESULTS"
    log "GET $path: p99 $p99"
done
wait "$LG" || true
stop_server

python3 - "$RESULTS" <<'EOF'
import json, sys, statistics
runs, reads = {}, []
for line in open(sys.argv[1]):
    kind, rest = line.split(" ", 1)
    if kind == "read":
        reads.append(rest.split())
        continue
    tps, js = rest.split(" ", 1)
    runs.setdefault(kind, []).append((float(tps), json.loads(js)))
print()
print("| database | runs | service req/s (median) | pgbench TPS (median) | ratio (median of runs) | p99 ms (worst) | max ms (worst) | wrong answers |")
print("|---|---|---|---|---|---|---|---|")
ratios = {}
for kind, rs in runs.items():
    rat = [r["requests_per_sec"] / t for t, r in rs]
    ratios[kind] = statistics.median(rat)
    print(f"| {kind} | {len(rs)} | {statistics.median(r['requests_per_sec'] for _, r in rs):,.0f} | "
          f"{statistics.median(t for t, _ in rs):,.0f} | {ratios[kind]:.2f} × | {max(r['p99_ms'] for _, r in rs):.1f} | "
          f"{max(r['max_ms'] for _, r in rs):.1f} | {sum(r['unexpected'] for _, r in rs)} |")
if "empty" in ratios and "history" in ratios:
    print(f"\nwith history / empty: {ratios['history'] / ratios['empty']:.2f}")
for path, p99 in reads:
    print(f"GET {path}: p99 {p99}")
EOF
