#!/usr/bin/env bash
# The peer50 comparison in one run: the workload in ../shared/bench/peer50 (50 rules,
# 10,000 events) through json-rules-engine 7.3.1 (bench/peers/jre), zen-expression 2.1.6
# (bench/peers/zen) and Rally (`cargo bench --bench peer50`), in ROUNDS interleaved
# rounds so that a machine busy with something else slows every engine alike. Ends with
# a markdown table of each engine's events/s, min–max over the rounds, and fails if any
# engine fires other than 40,130 times.
#
# Each Rally run measures its pure step and `rally sim` 3 times itself, so Rally's rows
# span 3 × ROUNDS measurements; the peers' rows span ROUNDS.
#
# usage: scripts/peer50.sh   (installs Node and npm from Debian when missing, runs
#        `npm ci` in bench/peers/jre when its node_modules is missing, builds the zen
#        harness in release into bench/peers/zen/target; Rally's bench builds Rally in
#        release)
# env:   ROUNDS (default 3), PEER50 (default ../shared/bench/peer50)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ROUNDS=${ROUNDS:-3}
PEER50=${PEER50:-$ROOT/../shared/bench/peer50}
RULES=$PEER50/rules/rules.yaml
EVENTS=$PEER50/events.jsonl
PEER_FIRINGS=40130
say() { echo "peer50: $*" >&2; }
die() { say "$*"; exit 1; }

[ -f "$RULES" ] && [ -f "$EVENTS" ] ||
    die "$PEER50 has no rules/rules.yaml and events.jsonl (the shared folder goes beside the repository)"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive whole number, not '$ROUNDS'"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    say "installing nodejs and npm (json-rules-engine runs on Node)..."
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -d bench/peers/jre/node_modules/json-rules-engine ]; then
    say "installing json-rules-engine (npm ci)..."
    (cd bench/peers/jre && npm ci --no-audit --no-fund >&2)
fi
say "building the zen-expression harness (release)..."
cargo build --release --quiet --manifest-path bench/peers/zen/Cargo.toml \
    --target-dir bench/peers/zen/target
ZEN=bench/peers/zen/target/release/peer50-zen

# Every measurement as `engine<TAB>events/s<TAB>firings`, in the order first seen.
RESULTS=$(mktemp)
trap 'rm -f "$RESULTS"' EXIT

# Runs one peer harness; its line reads `ENGINE: 95,000 events/s (40130 firings)`.
peer() {
    local out
    if ! out=$("$@"); then
        printf '%s\n' "$out" >&2
        die "failed: $*"
    fi
    printf '%s\n' "$out" >&2
    local re='^(.+): ([0-9,]+) events/s \(([0-9]+) firings\)$'
    [[ "$out" =~ $re ]] || die "cannot read the output of: $*"
    printf '%s\t%s\t%s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]//,/}" \
        "${BASH_REMATCH[3]}" >>"$RESULTS"
}

# Runs Rally's bench; benches/peer50.rs prints, per inner round,
#   `  round 1  pure step               41234 events/s   40130 firings`
#   `  round 1  rally sim (binary)       8123 events/s   40130 firings`
rally() {
    local out
    out=$(cargo bench --bench peer50) || { printf '%s\n' "$out" >&2; die "Rally's bench failed"; }
    printf '%s\n' "$out" >&2
    local re='^ *round [0-9]+ +(pure step|rally sim \(binary\)) +([0-9]+) events/s +([0-9]+) firings$'
    local line engine steps=0 sims=0
    while IFS= read -r line; do
        [[ "$line" =~ $re ]] || continue
        if [ "${BASH_REMATCH[1]}" = "pure step" ]; then
            steps=$((steps + 1))
            engine="Rally's pure step (\`engine::step\` per event, members kept in a map)"
        else
            sims=$((sims + 1))
            engine='`rally sim` end to end (process start, rules, in-memory store, output document)'
        fi
        printf '%s\t%s\t%s\n' "$engine" "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}" >>"$RESULTS"
    done <<<"$out"
    if [ "$steps" -eq 0 ] || [ "$sims" -eq 0 ]; then
        die "cannot read Rally's bench output (benches/peer50.rs changed its lines?)"
    fi
}

for round in $(seq "$ROUNDS"); do
    say "round $round of $ROUNDS"
    peer node bench/peers/jre/bench.js "$RULES" "$EVENTS" nested
    peer node bench/peers/jre/bench.js "$RULES" "$EVENTS" flat
    peer "$ZEN" "$RULES" "$EVENTS" converted
    peer "$ZEN" "$RULES" "$EVENTS" prebuilt
    rally
done

# The peer harnesses exit 1 on a wrong count themselves; this checks Rally's too.
WRONG=$(awk -F'\t' -v want="$PEER_FIRINGS" '$3 != want { print "  " $1 ": " $3 " firings" }' "$RESULTS")
[ -z "$WRONG" ] || die "firings other than $PEER_FIRINGS:"$'\n'"$WRONG"

echo
echo "| engine | events/s (min–max over $ROUNDS rounds) |"
echo "|---|---|"
awk -F'\t' '
    function commas(n,   s) {
        s = sprintf("%.0f", n)
        while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s)
        return s
    }
    !($1 in min) { order[++engines] = $1; min[$1] = $2 + 0; max[$1] = $2 + 0 }
    $2 + 0 < min[$1] { min[$1] = $2 + 0 }
    $2 + 0 > max[$1] { max[$1] = $2 + 0 }
    END {
        for (i = 1; i <= engines; i++) {
            e = order[i]
            printf "| %s | %s–%s |\n", e, commas(min[e]), commas(max[e])
        }
    }' "$RESULTS"
