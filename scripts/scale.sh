#!/usr/bin/env bash
# One machine, a million members: loads N members who each joined once with
# `rally import`, lets the daemon catch up and run its retention pass, and measures
# what the README's Performance table reports for scale:
#   - bytes per member on disk (du of the data directory) after import, after the
#     first start (history, journal and event ids past their windows removed), and
#     after `rally compact`; with SENDS=on, also once the messages' retention has
#     passed (a run under faketime, 31 days on: the dispatcher dates deliveries by the
#     wall clock);
#   - the daemon's resident memory (VmRSS, VmHWM) with the members loaded;
#   - its start time, and how long the first retention pass takes;
#   - p99 of GET /v1/members/{id} alone and under write load (scripts/scale_load.py).
#
# A member who only joined has no inactivity timer (nothing to be silent from), so
# the timer sweep's cost is measured by `cargo bench --bench timers`, and the timers
# left here are counted by the census in src/store/tests.rs.
#
# usage: scripts/scale.sh [N]   (default 1000000; release build; needs python3 and,
#        for the last stage, faketime: apt-get install faketime)
# env:   WORK (default a fresh temporary directory), RALLY_CACHE_MB (passed on),
#        LOAD_SECONDS (20), LOAD_RATE (2000 check-ins/s offered)
set -euo pipefail

N=${1:-1000000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/target/release/rally}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
LOAD_SECONDS=${LOAD_SECONDS:-20}
LOAD_RATE=${LOAD_RATE:-2000}
DATA=$WORK/data
RULES=$WORK/rules
LOG=$WORK/daemon.log
say() { echo "scale: $*" >&2; }

[ -x "$BIN" ] || { say "build first: cargo build --release"; exit 2; }

# The shipped rules, with retention on for everything it can remove, and every
# `send` made a no-op (`untag` of a tag nobody has): the dispatcher paces each channel
# at 20 messages/s, so the 1M welcome messages alone would take 14 hours to go out
# before retention could remove them. SENDS=on keeps them, for a run of a few
# thousand members, with a last stage under faketime 31 days on that lets
# `retention.messages` remove them.
rm -rf "$RULES" "$DATA"
cp -r "$ROOT/rules" "$RULES"
sed -i 's/^settings:$/settings:\n  retention: { messages: 30d, history: 30d, journal: 30d }/' \
    "$RULES/settings.yaml"
grep -q 'retention:' "$RULES/settings.yaml" || { say "could not set retention"; exit 2; }
if [ "${SENDS:-off}" = off ]; then
    sed -i 's/^\(\s*\)- send: .*$/\1- untag: never-given/' "$RULES"/*.yaml
fi

# N joins, one millisecond apart, starting 70 days ago: past every window.
EVENTS=$WORK/joins.jsonl
python3 - "$N" "$EVENTS" <<'PY'
import datetime, json, sys
n, path = int(sys.argv[1]), sys.argv[2]
start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=70)
with open(path, "w") as out:
    for i in range(n):
        at = (start + datetime.timedelta(milliseconds=i)).isoformat(timespec="milliseconds")
        out.write(json.dumps({"id": f"join-{i}", "type": "join", "member": f"m-{i}", "at": at,
                              "data": {"name": f"Member {i}", "email": f"m{i}@example.com"}}) + "\n")
PY

bytes_per_member() { echo "$(du -sb "$DATA" | cut -f1) $N" | awk '{printf "%d bytes (%.0f per member)", $1, $1 / $2}'; }

say "importing $N joins"
/usr/bin/time -f "import: %e s, peak RSS %M KiB" "$BIN" import --rules "$RULES" --data "$DATA" \
    --events "$EVENTS" 2>"$WORK/import.log" >"$WORK/import.json" || { tail "$WORK/import.log"; exit 1; }
tail -1 "$WORK/import.log" >&2
say "after import: $(bytes_per_member)"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
PID=
STARTED=
BEGAN=
# Starts the daemon (under "$@", e.g. faketime) and sets STARTED to its start time:
# from the spawn until /healthz answers.
start_daemon() {
    BEGAN=$(date +%s.%N)
    RUST_LOG=info,rally::messages=warn "$@" "$BIN" run --rules "$RULES" --data "$DATA" \
        --listen "127.0.0.1:$PORT" >/dev/null 2>"$LOG" &
    PID=$!
    until curl -sf "$URL/healthz" >/dev/null 2>&1; do
        kill -0 "$PID" 2>/dev/null || { tail "$LOG" >&2; exit 1; }
        sleep 0.05
    done
    STARTED=$(since "$BEGAN")
}
since() { echo "$(date +%s.%N) $1" | awk '{printf "%.2f s", $1 - $2}'; }
stop_daemon() { kill -TERM "$PID"; wait "$PID" || true; }
# Waits for the end of the retention pass that runs at start, and prints what it removed.
await_retention() {
    until grep -q 'retention pass over' "$LOG"; do
        kill -0 "$PID" 2>/dev/null || { tail "$LOG" >&2; exit 1; }
        sleep 1
    done
    grep 'retention pass over' "$LOG" | tail -1 | sed 's/.*INFO [^ ]* //' >&2
}
memory() { grep -E 'VmRSS|VmHWM' "/proc/$PID/status" | tr -s ' \t' ' ' | paste -sd' '; }

start_daemon
say "first start: $STARTED to answer /healthz"
await_retention
say "first retention pass over $(since "$BEGAN") after the start"
say "memory after the catch-up: $(memory)"
say "reads alone: $(python3 "$ROOT/scripts/scale_load.py" "127.0.0.1:$PORT" "$N" "$LOAD_SECONDS" 0)"
say "reads under write load: $(python3 "$ROOT/scripts/scale_load.py" "127.0.0.1:$PORT" "$N" \
    "$LOAD_SECONDS" "$LOAD_RATE")"
say "memory after the load: $(memory)"
stop_daemon
say "after the first start: $(bytes_per_member)"

for round in 1 2; do
    start_daemon
    say "restart $round, nothing due: $STARTED; memory $(memory)"
    await_retention
    stop_daemon
done
say "once every window has passed: $(bytes_per_member)"
# sled reuses freed space but never shrinks its file: give it back.
say "compact: $("$BIN" compact --data "$DATA")"
say "compacted: $(bytes_per_member)"
start_daemon
say "start after compacting: $STARTED; memory $(memory)"
await_retention
stop_daemon

if [ "${SENDS:-off}" = on ] && command -v faketime >/dev/null; then
    # 31 days on: the messages sent meanwhile are past settings.retention.messages.
    start_daemon env FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f +31d
    await_retention
    stop_daemon
    say "31 days on, messages removed too: $(bytes_per_member)"
fi
say "work directory: $WORK"
