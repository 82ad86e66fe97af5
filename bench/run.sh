#!/usr/bin/env bash
# Throughput benchmark of the notify path, with the database's own ceiling measured
# in the same run:
#   1. builds the release binary;
#   2. creates a fresh PostgreSQL database, migrates it, seeds $PAYMENTS payments;
#   3. runs pgbench with bench/pgbench_notify.sql ($PGB_CLIENTS clients, $DURATION s,
#      durable: synchronous_commit=on, the server's default);
#   4. starts `finpay-qris serve` on that database with keys generated for the run,
#      runs `finpay-qris loadgen` at each of $CONNS connections (payments reset to
#      pending before each run), samples the server's RSS mid-run (ps);
#   5. the same loadgen runs on an SQLite file;
#   6. prints a table with the ratio to the pgbench figure.
#
# Usage: bench/run.sh            (defaults: DURATION=10 CONNS="16 64 256" PAYMENTS=600000 REPEAT=1)
#        REPEAT=3 bench/run.sh     (the table then shows the median run of each point, and the median
#                                   of each run's ratio to the pgbench figure measured just before it)
#        DURATION=20 CONNS=64 bench/run.sh
#        REFS=static bench/run.sh   (every notification names a payment the service has never seen: static QR)
#        SERVER_ENV="FINPAY_QRIS__SERVER__WRITERS=1" bench/run.sh   (extra settings for the server)
#        FULL_SHAPE=1 bench/run.sh   (adds a second reference: pgbench doing the service's whole row work)
#        SERVER_CPUS=0 LOADGEN_CPUS=0 bench/run.sh   (pins the server and loadgen with taskset -c)
#        FLOOD=500 bench/run.sh   (adds, per backend, a 64-connection point with 500 badly signed notifications a
#                                  second alongside the valid ones, to compare with the 64-connection point without)
#        METRICS=ab bench/run.sh     (each PostgreSQL point is run again right after itself with the business
#                                   metrics off, FINPAY_QRIS__METRICS__BUSINESS=false: rows "postgres" and
#                                   "postgres-metrics-off", and their ratio under the table)
#        METRICS=off bench/run.sh    (every point with the business metrics off)
#        EVENTS=1 bench/run.sh      (one webhook endpoint, `finpay-qris listen --quiet`, subscribed to every
#                                    event; prints each point's delivery rate, backlog at the end, event lag)
# Other knobs: WARMUP, PGB_CLIENTS, DUPLICATES, LOG_LEVEL, PGSSLMODE, BACKENDS="postgres sqlite".
# Needs: cargo, psql, pgbench, sqlite3, curl, python3; PostgreSQL at $PGHOST:$PGPORT
# (user postgres, trust). It never stops or reconfigures the PostgreSQL server; it
# only creates and drops the database $BENCH_DB.
set -euo pipefail
cd "$(dirname "$0")/.."

PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
BENCH_DB=${BENCH_DB:-finpay_bench}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-"16 64 256"}
# Loadgen gives each connection its own share of the payments and notifies each
# payment once; a share used up before the run ends is reported under the table.
PAYMENTS=${PAYMENTS:-600000}
PGB_CLIENTS=${PGB_CLIENTS:-16}
# Both pgbench and the server connect over TCP to 127.0.0.1 with this sslmode
# (the same for both, so the comparison is fair); `prefer` measures with TLS.
PGSSLMODE=${PGSSLMODE:-disable}
DUPLICATES=${DUPLICATES:-0.1}   # extra 64-connection run with this fraction of replays; 0 to skip
LOG_LEVEL=${LOG_LEVEL:-info}     # the service's default; per-request lines are logged at info
REPEAT=${REPEAT:-1}              # runs per point; the table shows the median run (by requests/s) and the range;
                                 # each run of the PostgreSQL points follows a pgbench run of its own
SERVER_ENV=${SERVER_ENV:-}       # extra VAR=value settings for the server, space-separated
METRICS=${METRICS:-on}           # on, off (business metrics off), or ab (each PostgreSQL point both ways)
case "$METRICS" in
    on) ;;
    off) SERVER_ENV="$SERVER_ENV FINPAY_QRIS__METRICS__BUSINESS=false" ;;
    ab) ;;
    *) echo "METRICS must be on, off or ab" >&2; exit 2 ;;
esac
POINT_ENV=""                     # settings of the point being run (METRICS=ab)
ROW_LABEL=""                     # the backend column of the point being run
BACKENDS=${BACKENDS:-"postgres sqlite"}
REFS=${REFS:-generated}          # generated: notifications settle the seeded payments; static: they name unknown ones
LOADGEN_REFS=()
[[ "$REFS" == static ]] && LOADGEN_REFS=(--ref-prefix SQR --finpay-ref-prefix SFP)
FLOOD=${FLOOD:-0}                # badly signed notifications a second in an extra 64-connection point; 0 to skip
FLOOD_CONNS=${FLOOD_CONNS:-8}    # connections carrying that flood
EVENTS=${EVENTS:-0}              # 1: deliver every payment event to a local receiver (finpay-qris listen)
FULL_SHAPE=${FULL_SHAPE:-0}      # 1: also run pgbench with bench/pgbench_notify_full.sql (the service's whole row work)
# CPUs (taskset -c lists) for the server and for loadgen; empty: wherever the kernel puts them.
SERVER_CPUS=${SERVER_CPUS:-}
LOADGEN_CPUS=${LOADGEN_CPUS:-}
SERVER_PIN=()
LOADGEN_PIN=()
[[ -n "$SERVER_CPUS" ]] && SERVER_PIN=(taskset -c "$SERVER_CPUS")
[[ -n "$LOADGEN_CPUS" ]] && LOADGEN_PIN=(taskset -c "$LOADGEN_CPUS")
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=${PORT:-$(free_port)}
API_PORT=${API_PORT:-$(free_port)}
CLIENT_ID=FINPAY-BENCH
SECRET=bench-only-secret-0123456789abcdef
export PGHOST PGPORT PGUSER PGSSLMODE

TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
# BIN=/path/to/finpay-qris runs that binary instead of building one (A/B runs of two builds).
BIN=${BIN:-"$TARGET_DIR/release/finpay-qris"}
WORK=$(mktemp -d /tmp/finpay-bench.XXXXXX)
SERVER_PID=""
LISTEN_PID=""
ROWS="$WORK/rows.tsv"
: >"$ROWS"
EVENT_ROWS="$WORK/events.txt"
: >"$EVENT_ROWS"

cleanup() {
    if [[ -n "$LISTEN_PID" ]] && kill -0 "$LISTEN_PID" 2>/dev/null; then
        kill "$LISTEN_PID" 2>/dev/null || true
        wait "$LISTEN_PID" 2>/dev/null || true
    fi
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    psql -q -d postgres -c "DROP DATABASE IF EXISTS $BENCH_DB" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf '>> %s\n' "$*" >&2; }

if [[ "$BIN" == "$TARGET_DIR/release/finpay-qris" ]]; then
    log "building release binary"
    cargo build --release --quiet
fi

PG_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$BENCH_DB?sslmode=$PGSSLMODE"
SQLITE_URL="sqlite://$WORK/bench.db"

log "fresh database $BENCH_DB, $PAYMENTS payments"
psql -q -d postgres -c "DROP DATABASE IF EXISTS $BENCH_DB" -c "CREATE DATABASE $BENCH_DB"
DATABASE_URL="$PG_URL" "$BIN" migrate >/dev/null
# Payments as generated through Finpay: our reference PRNn, Finpay's FPn (what loadgen's notifications name),
# each with a status check scheduled for the worker (an hour ahead, so the worker stays out of the run), as
# `POST /payments` leaves them; a settlement clears it.
# Every run starts from the same freshly written tables (no bloat carried over from the run before),
# as a freshly migrated database has them: only the seeded payments are vacuumed and analysed. A
# truncated table keeps "never analysed" statistics, so PostgreSQL plans for a table of some size;
# vacuumed while empty, it is known to be empty, and each connection's first foreign-key checks
# into it cache a sequential scan that grows slower with every row the run adds (a stall that no
# deployment, empty or with history, starts from).
pg_reset() {
    psql -q -v ON_ERROR_STOP=1 -d "$BENCH_DB" -c "TRUNCATE payment_actions, payment_events, notifications, refunds, delivery_attempts, deliveries, events, webhook_endpoint_types, webhook_endpoints, payments" \
        -c "INSERT INTO payments (id, partner_reference_no, reference_no, amount_minor, currency, status, origin, created_at, updated_at, next_check_at)
            SELECT 'bench-' || g, 'PRN' || g, 'FP' || g, 1000000, 'IDR', 'pending', 'generated', now(), now(), now() + interval '1 hour'
            FROM generate_series(1, $PAYMENTS) g" \
        -c "VACUUM ANALYZE payments" -c "CHECKPOINT"
}
pg_reset

sqlite_reset() { # a fresh file each run
    rm -f "$WORK/bench.db" "$WORK/bench.db-wal" "$WORK/bench.db-shm"
    DATABASE_URL="$SQLITE_URL" "$BIN" migrate >/dev/null
    sqlite3 -cmd ".timeout 10000" "$WORK/bench.db" "
        WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < $PAYMENTS)
        INSERT INTO payments (id, partner_reference_no, reference_no, amount_minor, currency, status, origin, created_at, updated_at, next_check_at)
        SELECT 'bench-' || n, 'PRN' || n, 'FP' || n, 1000000, 'IDR', 'pending', 'generated',
               strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'), strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'),
               strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now', '+1 hour') FROM g;
        PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
}

machine_ticks() { # "idle-ticks all-ticks" of both cores so far
    awk '/^cpu / {print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat
}

pgbench_run() { # $1 script: one durable run on fresh tables; prints "tps:µs-of-machine-CPU-per-txn"
    local s0 s1 tps
    # Reset first: a run may follow a PostgreSQL point, which leaves its tables as loadgen left them.
    pg_reset >&2
    s0=$(machine_ticks)
    pgbench -n -M prepared -f "$1" -D payments="$PAYMENTS" -c "$PGB_CLIENTS" -j 2 -T "$DURATION" "$BENCH_DB" >"$WORK/pgbench.txt" 2>&1
    s1=$(machine_ticks)
    cat "$WORK/pgbench.txt" >&2
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$WORK/pgbench.txt")
    [[ -n "$tps" ]] || { echo "could not read the pgbench figure of $1" >&2; exit 1; }
    # Machine CPU per transaction: busy ticks over the run (connection set-up included, a slight overestimate).
    echo "$s0 $s1" | awk -v hz="$(getconf CLK_TCK)" -v tps="$tps" -v d="$DURATION" \
        '{ printf "%s:%.0f\n", tps, ((($4 - $3) - ($2 - $1)) / hz) * 1e6 / (tps * d) }'
}

log "pgbench: $PGB_CLIENTS clients, ${DURATION} s, durable (synchronous_commit=$(psql -Atd "$BENCH_DB" -c 'show synchronous_commit')), sslmode=$PGSSLMODE, one run before each run of the PostgreSQL points"
# "tps:µs" per run, in run order: run r's PostgreSQL points are divided by run r's figure.
PGB_SERIES=""
# Optionally, a second reference: pgbench doing the service's whole row work per
# notification (bench/pgbench_notify_full.sql), one transaction each.
PGB_FULL_SERIES=""
if [[ "$FULL_SHAPE" == 1 ]]; then
    log "pgbench of the full row work: $PGB_CLIENTS clients, ${DURATION} s, $REPEAT run(s)"
    for r in $(seq 1 "$REPEAT"); do PGB_FULL_SERIES+="$(pgbench_run bench/pgbench_notify_full.sql) "; done
fi

"$BIN" keygen --out-dir "$WORK" --name finpay >/dev/null 2>&1

# EVENTS=1: a receiver that verifies every event and, when stopped, prints how many and their lag.
EVENT_ENV=()
if [[ "$EVENTS" == 1 ]]; then
    LISTEN_PORT=$(free_port)
    WEBHOOK_SECRET="whsec_$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
    EVENT_ENV=(FINPAY_QRIS__EVENTS__ENDPOINT_URL="http://127.0.0.1:$LISTEN_PORT/events"
        FINPAY_QRIS__EVENTS__ENDPOINT_SECRET="$WEBHOOK_SECRET"
        FINPAY_QRIS__EVENTS__ALLOW_HTTP=true FINPAY_QRIS__EVENTS__ALLOW_PRIVATE_NETWORKS=true)
fi
start_listener() { # $1 log file
    [[ "$EVENTS" == 1 ]] || return 0
    FINPAY_QRIS_LISTEN_SECRET="$WEBHOOK_SECRET" "$BIN" listen --quiet --listen "127.0.0.1:$LISTEN_PORT" >"$1" 2>&1 &
    LISTEN_PID=$!
    for _ in $(seq 1 50); do grep -q listening "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "the event receiver did not start; log:" >&2
    cat "$1" >&2
    exit 1
}
delivered() { # events delivered so far, from the server's metrics
    curl -fsS "http://127.0.0.1:$API_PORT/metrics" | awk '/^finpay_qris_event_deliveries_total\{outcome="delivered"\}/ {s=$2} END {print s+0}'
}
backlog() { # $1 backend: deliveries not yet made
    if [[ "$1" == postgres ]]; then
        psql -Atd "$BENCH_DB" -c "SELECT count(*) FROM deliveries WHERE status = 'pending'"
    else
        sqlite3 -cmd ".timeout 10000" "$WORK/bench.db" "SELECT count(*) FROM deliveries WHERE status = 'pending'"
    fi
}

start_server() { # $1 database URL, $2 log file
    env FINPAY_QRIS__SERVER__LISTEN="127.0.0.1:$PORT" \
        FINPAY_QRIS__API__LISTEN="127.0.0.1:$API_PORT" \
        FINPAY_QRIS__DATABASE__URL="$1" \
        FINPAY_QRIS__INBOUND__CLIENT_ID="$CLIENT_ID" \
        FINPAY_QRIS__INBOUND__CLIENT_SECRET="$SECRET" \
        FINPAY_QRIS__INBOUND__PUBLIC_KEY="$WORK/finpay_public.pem" \
        FINPAY_QRIS__WORKER__ENABLED=false \
        FINPAY_QRIS__LOG__LEVEL="$LOG_LEVEL" \
        "${EVENT_ENV[@]}" \
        $SERVER_ENV $POINT_ENV \
        "${SERVER_PIN[@]}" "$BIN" serve >"$2" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
        if curl -fsS "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "server did not become ready; log:" >&2
    cat "$2" >&2
    exit 1
}

stop_server() { # sets LAST_HWM: the server's peak RSS (kB)
    LAST_HWM=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status")
    kill "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=""
}

batches() { # "committed-notifications transactions seconds-storing-them" so far, from the server's metrics
    curl -fsS "http://127.0.0.1:$API_PORT/metrics" | awk '/^finpay_qris_notify_batch_size_sum/ {s=$2} /^finpay_qris_notify_batch_size_count/ {c=$2}
        /^finpay_qris_notify_batch_duration_seconds_sum/ {d=$2} END {print s+0, c+0, d+0}'
}

ticks() { # CPU clock ticks used so far by the given processes
    local t=0 p
    for p in "$@"; do
        [[ -r "/proc/$p/stat" ]] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}

cpu_sample() { # "server-ticks postgres-ticks loadgen-ticks idle-ticks all-ticks"
    local idle_all
    idle_all=$(machine_ticks)
    echo "$(ticks "$SERVER_PID") $(ticks $(pgrep -x postgres)) $(ticks "$1") $idle_all"
}

pg_work() { # "WAL-records WAL-bytes buffer-accesses" so far (cluster's WAL; the bench database's buffers)
    if [[ "$1" == postgres ]]; then
        psql -Atd "$BENCH_DB" -F ' ' -c "SELECT w.wal_records, w.wal_bytes, d.blks_hit + d.blks_read
            FROM pg_stat_wal w, pg_stat_database d WHERE d.datname = current_database()"
    else
        echo "0 0 0"
    fi
}

run_load() { # $1 backend, $2 connections, $3 duplicates fraction, $4 run number, $5 flood (requests/s)
    local out="$WORK/loadgen-$1-$2-$3-$5.txt" rss before after cpu0 cpu1 work0 work1
    "${LOADGEN_PIN[@]}" "$BIN" loadgen --url "http://127.0.0.1:$PORT" --client-id "$CLIENT_ID" --secret "$SECRET" \
        --private-key "$WORK/finpay_private.pem" --connections "$2" --duration-secs "$DURATION" \
        --warmup-secs "$WARMUP" --payments "$PAYMENTS" --duplicates "$3" "${LOADGEN_REFS[@]}" \
        --flood-rate "$5" --flood-connections "$FLOOD_CONNS" >"$out" 2>&1 &
    local lg=$!
    work0=$(pg_work "$1")
    before=$(batches)
    local delivered0=0
    [[ "$EVENTS" == 1 ]] && delivered0=$(delivered)
    # CPU is sampled over the middle of the measured window (from 0.5 s in to
    # 1 s before its end), RSS half-way through it.
    sleep "$(python3 -c "print($WARMUP + 0.5)")"
    cpu0="$(date +%s.%N) $(cpu_sample "$lg")"
    sleep "$(python3 -c "print($DURATION / 2 - 0.5)")"
    rss=$(ps -o rss= -p "$SERVER_PID" | tr -d ' ')
    sleep "$(python3 -c "print($DURATION / 2 - 1)")"
    cpu1="$(date +%s.%N) $(cpu_sample "$lg")"
    wait "$lg" || true
    after=$(batches)
    if [[ "$EVENTS" == 1 ]]; then
        # Delivery over the loadgen run (warm-up included), and what is left to deliver when it ends.
        local delivered1 pending
        delivered1=$(delivered)
        pending=$(backlog "$1")
        echo "$1 $2 connections (run $4): delivered $(( (delivered1 - delivered0) / (DURATION + WARMUP) ))/s," \
            "backlog at the end $pending, $(grep -o '"requests_per_sec":[0-9.]*' "$out" | tail -n 1)" >>"$EVENT_ROWS"
    fi
    # Statistics reach pg_stat_* when a backend goes idle; the writers have by now.
    sleep 0.6
    work1=$(pg_work "$1")
    cat "$out" >&2
    local per_batch work
    # Notifications per commit, and the writer's mean time per batch (off the queue to its commit).
    per_batch=$(echo "$before $after" | awk '{ if ($5 > $2) printf "%.1f / %.2f", ($4 - $1) / ($5 - $2), ($6 - $3) * 1000 / ($5 - $2); else print "-" }')
    # PostgreSQL's work per stored notification, which does not depend on how fast the machine is today.
    work=$(echo "$before $after $work0 $work1" | awk '{ n = $4 - $1; if (n > 0 && $10 > 0) printf "%.1f %.0f %.1f", ($10 - $7) / n, ($11 - $8) / n, ($12 - $9) / n; else print "- - -" }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${ROW_LABEL:-$1}" "$2" "$3" "$5" "$4" "$rss" "$per_batch" "$cpu0" "$cpu1" "$work" \
        "$(grep '^{' "$out" | tail -n 1)" >>"$ROWS"
}

# Each run: fresh tables, a freshly started server (so no run inherits the
# previous one's connections, caches or cached plans), loadgen, stop.
PG_HWM=0
SQLITE_HWM=0
point() { # $1 backend, $2 connections, $3 duplicates, $4 run number, $5 flood (requests/s, default 0)
    local url
    if [[ "$1" == postgres ]]; then pg_reset; url="$PG_URL"; else sqlite_reset; url="$SQLITE_URL"; fi
    start_listener "$WORK/listen-$1-$2-$4.log"
    start_server "$url" "$WORK/server-$1.log"
    run_load "$1" "$2" "$3" "$4" "${5:-0}"
    stop_server
    if [[ -n "$LISTEN_PID" ]]; then
        kill -INT "$LISTEN_PID"
        wait "$LISTEN_PID" || true
        LISTEN_PID=""
        echo "  receiver: $(tail -n 1 "$WORK/listen-$1-$2-$4.log")" >>"$EVENT_ROWS"
    fi
    if [[ "$1" == postgres ]]; then
        ((LAST_HWM > PG_HWM)) && PG_HWM=$LAST_HWM
    else
        ((LAST_HWM > SQLITE_HWM)) && SQLITE_HWM=$LAST_HWM
    fi
    return 0
}

pg_metrics_off_point() { # $1 connections, $2 run number
    log "PostgreSQL, $1 connections, business metrics off (run $2)"
    POINT_ENV="FINPAY_QRIS__METRICS__BUSINESS=false" ROW_LABEL="postgres-metrics-off" point postgres "$1" 0 "$2"
}
pg_flood_point() { # $1 run number
    log "PostgreSQL, 64 connections, flood of $FLOOD badly signed notifications/s (run $1)"
    point postgres 64 0 "$1" "$FLOOD"
}

if [[ " $BACKENDS " == *" postgres "* ]]; then
    for r in $(seq 1 "$REPEAT"); do
        # This run's own reference, measured just before its points: the
        # machine's speed drifts over minutes (by a fifth and more, seen here),
        # and a ratio of two figures taken minutes apart would carry that drift.
        log "pgbench (run $r)"
        PGB_SERIES+="$(pgbench_run bench/pgbench_notify.sql) "
        # The points of one run follow each other, and the first after pgbench
        # has run faster than the later ones (seen here): in even runs the
        # points compared with the plain one (metrics off, the flood) go first.
        flipped=$(( r % 2 == 0 ))
        if ((flipped)) && [[ "$FLOOD" != "0" ]]; then pg_flood_point "$r"; fi
        for c in $CONNS; do
            if ((flipped)) && [[ "$METRICS" == ab ]]; then pg_metrics_off_point "$c" "$r"; fi
            log "PostgreSQL, $c connections (run $r)"
            point postgres "$c" 0 "$r"
            if ((!flipped)) && [[ "$METRICS" == ab ]]; then pg_metrics_off_point "$c" "$r"; fi
        done
        if [[ "$DUPLICATES" != "0" ]]; then
            log "PostgreSQL, 64 connections, $DUPLICATES duplicate replays (run $r)"
            point postgres 64 "$DUPLICATES" "$r"
        fi
        if ((!flipped)) && [[ "$FLOOD" != "0" ]]; then pg_flood_point "$r"; fi
    done
fi

if [[ " $BACKENDS " == *" sqlite "* ]]; then
    for r in $(seq 1 "$REPEAT"); do
        for c in $CONNS; do
            log "SQLite, $c connections (run $r)"
            point sqlite "$c" 0 "$r"
        done
        if [[ "$FLOOD" != "0" ]]; then
            log "SQLite, 64 connections, flood of $FLOOD badly signed notifications/s (run $r)"
            point sqlite 64 0 "$r" "$FLOOD"
        fi
    done
fi

python3 - "$ROWS" "$PGB_CLIENTS" "$PG_HWM" "$SQLITE_HWM" "$PGB_SERIES" "$PGB_FULL_SERIES" <<'EOF'
import json, sys
rows_path, pgb_clients, pg_hwm, sqlite_hwm = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def in_order(arg):
    """pgbench runs as [(tps, µs per txn)], in run order."""
    return [tuple(float(v) for v in x.split(":")) for x in arg.split()]
def series(arg):
    """pgbench runs as [(tps, µs per txn)], sorted by tps, and the median run (None if there are none)."""
    runs = sorted(in_order(arg))
    return runs, (runs[(len(runs) - 1) // 2] if runs else None)
pgb_series, pgb_median = series(sys.argv[5])
pgb, pgb_busy = pgb_median if pgb_median else (None, None)
pgb_runs = [t for t, _ in pgb_series]
# The pgbench figure of each run, by run number (1-based): the PostgreSQL points of run r follow it.
pgb_of_run = {i + 1: tps for i, (tps, _) in enumerate(in_order(sys.argv[5]))}
def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return (xs[(n - 1) // 2] + xs[n // 2]) / 2 if n else None
full_runs, full_median = series(sys.argv[6])
full = full_median[0] if full_median else None
points = {}
import os
hz = os.sysconf("SC_CLK_TCK")
def cpu(c0, c1, r):
    """Machine CPU per request (µs) of the server, PostgreSQL, loadgen, the rest; idle %."""
    a, b = [float(x) for x in c0.split()], [float(x) for x in c1.split()]
    secs = b[0] - a[0]
    d = [(y - x) / hz for x, y in zip(a[1:], b[1:])]  # server, postgres, loadgen, idle, all (CPU seconds)
    if r is None or secs <= 0 or d[4] <= 0:
        return None
    n = r["requests_per_sec"] * secs
    us = lambda s: s * 1e6 / n
    busy = d[4] - d[3]
    return (us(d[0]), us(d[1]), us(d[2]), us(busy - d[0] - d[1] - d[2]), 100 * d[3] / d[4])
for line in open(rows_path):
    backend, conns, dups, flood, run, rss, per_batch, c0, c1, work, js = line.rstrip("\n").split("\t", 10)
    try:
        r = json.loads(js)
    except ValueError:
        r = None
    points.setdefault((backend, int(conns), float(dups), float(flood)), []).append((r, rss, per_batch, cpu(c0, c1, r), work, int(run)))
print()
if pgb:
    print(f"pgbench (bench/pgbench_notify.sql, {pgb_clients} clients, durable): {pgb:,.0f} TPS (median of "
          f"{' / '.join(f'{x:,.0f}' for x in sorted(pgb_runs))}; in run order {' / '.join(f'{pgb_of_run[i]:,.0f}' for i in sorted(pgb_of_run))})")
    print("Each run of the PostgreSQL points is divided by the pgbench figure of the same run, measured just before it;")
    print("'÷ pgbench' is the median of those ratios (SQLite's: its median run ÷ the median pgbench figure).")
if full:
    print(f"pgbench of the service's whole row work (bench/pgbench_notify_full.sql, {pgb_clients} clients, durable): {full:,.0f} TPS (median of {' / '.join(f'{t:,.0f}' for t, _ in full_runs)})")
print()
print("| backend | connections | duplicates | flood/s | requests/s | ÷ pgbench | p50 ms | p99 ms | max ms | not 2005200 | RSS mid-run MiB | notifications per commit / ms per batch | runs in run order (req/s, ÷ that run's pgbench) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
cpu_rows = []
work_rows = []
against_full = []
for (backend, conns, dups, flood), runs in points.items():
    ok = sorted([x for x in runs if x[0] is not None], key=lambda x: x[0]["requests_per_sec"])
    if not ok:
        print(f"| {backend} | {conns} | {dups:.0%} | {flood:.0f} | loadgen failed |")
        continue
    r, rss, per_batch, c, work, _ = ok[len(ok) // 2]
    label = f"{dups:.0%}" + (f", flood {flood:.0f}/s" if flood else "")
    if c is not None:
        cpu_rows.append((backend, conns, label, c))
    if backend == "postgres":
        work_rows.append((conns, label, work))
    bad = sum(x[0]["unexpected"] for x in ok) + (len(runs) - len(ok))
    if backend.startswith("postgres") and pgb_of_run:
        # Every run of the PostgreSQL points has its pgbench figure (the script stops if one cannot be read).
        ratios = {x[5]: x[0]["requests_per_sec"] / pgb_of_run[x[5]] for x in ok}
        ratio = median(ratios.values())
        spread = " / ".join(f"{x[0]['requests_per_sec']:,.0f} ({ratios[x[5]]:.2f} ×)" for x in sorted(ok, key=lambda x: x[5]))
    else:
        ratio = r["requests_per_sec"] / pgb if pgb else None
        spread = " / ".join(f"{x[0]['requests_per_sec']:,.0f}" for x in ok)
    shown = f"{ratio:.2f}" if ratio is not None else "-"
    print(f"| {backend} | {conns} | {dups:.0%} | {r.get('flood_requests_per_sec', 0):.0f} | {r['requests_per_sec']:,.0f} | {shown} | "
          f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.2f} | {bad} | {int(rss) / 1024:.1f} | {per_batch} | {spread} |")
    if full and backend == "postgres":
        against_full.append(f"{conns} connections{f' ({dups:.0%} replays)' if dups else ''} {r['requests_per_sec'] / full:.2f} ×")
print()
if against_full:
    print("PostgreSQL ÷ the whole-row-work pgbench: " + ", ".join(against_full))
    print()
print("Machine CPU per request (µs, over the middle of the median run's window; 'rest' is the kernel's share not charged to")
print("the three, e.g. softirq, and other processes), and the idle share of both cores:")
print()
print("| backend | connections | duplicates | server | database | loadgen | rest | all | idle % |")
print("|---|---|---|---|---|---|---|---|---|")
for backend, conns, dups, (s_, p_, l_, o_, idle) in cpu_rows:
    db = f"{p_:,.0f}" if backend.startswith("postgres") else "(in server)"
    print(f"| {backend} | {conns} | {dups} | {s_:,.0f} | {db} | {l_:,.0f} | {o_:,.0f} | {s_ + p_ + l_ + o_:,.0f} | {idle:.0f} |")
if work_rows:
    print()
    print("PostgreSQL's work per stored notification (whole loadgen run, warm-up included; WAL is the cluster's, buffer")
    print("accesses the bench database's): unlike the timings, these do not move with the machine's speed.")
    print()
    print("| connections | duplicates | WAL records | WAL bytes | buffer accesses |")
    print("|---|---|---|---|---|")
    for conns, dups, work in work_rows:
        print(f"| {conns} | {dups} | " + " | ".join(work.split()) + " |")
ab = []
for (backend, conns, dups, flood), runs in points.items():
    off = points.get(("postgres-metrics-off", conns, dups, flood))
    if backend != "postgres" or not off:
        continue
    # Each run's pair was measured back to back after the same pgbench run: compare run by run.
    on_by_run = {x[5]: x[0]["requests_per_sec"] for x in runs if x[0]}
    pairs = [on_by_run[x[5]] / x[0]["requests_per_sec"] for x in off if x[0] and x[5] in on_by_run]
    if pairs:
        ab.append(f"{conns} connections {median(pairs):.3f} × (runs: {' / '.join(f'{p:.3f}' for p in pairs)})")
if ab:
    print()
    print("Business metrics on ÷ off, requests/s (median of the per-run ratios; within 5 % means 0.95 or more): " + ", ".join(ab))
renotified = sorted({f"{b} {c}" for (b, c, _, _), runs in points.items() for x in runs if x[0] and x[0].get("payments_renotified")})
if renotified:
    print()
    print(f"WARNING: loadgen ran out of payments ({', '.join(renotified)} connections) and notified some a second time;")
    print("those requests found their payment already paid and are not first deliveries: re-run with more PAYMENTS.")
print()
if pgb_busy:
    print(f"pgbench used {pgb_busy:,.0f} µs of machine CPU per transaction (busy time of both cores over its run, median run).")
print()
print(f"peak RSS (VmHWM) of the server, highest over the runs: PostgreSQL {pg_hwm / 1024:.1f} MiB, SQLite {sqlite_hwm / 1024:.1f} MiB")
print("'not 2005200' sums every run of the point; the other columns are the median run's.")
EOF
if [[ "$EVENTS" == 1 ]]; then
    echo
    echo "Payment events (one endpoint answering 204; lag = from the event's time to its arrival, receiver's clock):"
    cat "$EVENT_ROWS"
fi
