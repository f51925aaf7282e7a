#!/usr/bin/env bash
# Instructions per operation of goexec's hot paths, counted by callgrind (whole process).
#
#   benches/callgrind.sh [NAME...]      # default: every workload below
#
# Each workload runs alone, at procs 1, in the probe binary (benches/src/bin/probe.rs: no
# tokio, no warm-up), under `valgrind --tool=callgrind`, at two sizes. The figure is
#
#   (I(big) - I(small)) / (ops(big) - ops(small))
#
# where I is the instruction count of the whole process (every thread) and ops the number of
# operations the run made: start-up, teardown and other fixed costs cancel (what grows with
# the goroutines alive at once, as in spawn_join and chained_spawn, counts per operation).
# One operation is
#
#   yield_many     a yield (200 goroutines yield in turn)
#   ping_pong      a round trip over two unbuffered channels (two sends, two receives)
#   ring           a hop of the counter round 503 goroutines (one send, one receive)
#   spawn_join     a spawn and its join (all spawned first, then all joined)
#   chained_spawn  a link: a goroutine spawns the next and joins it
#   timer_stop     a Timer::new(1 h) and its stop
#   select_after   a select! of a ready value and a fresh after(1 h)
#   recv_timeout   a round trip over two unbuffered channels, each receive with a 1 h deadline
#   sleep          a sleep(1 ns), due by the time the M looks at its timers
#
# Procs 1 only: with more Ps the interleaving, and so the count, changes from run to run.
# A run in which a second M ran goroutines is repeated (up to 5 tries): sysmon takes the P
# from a goroutine that has run 10 ms of wall time without a scheduling point, and
# callgrind's slowdown makes that likely in spawn_join's spawning loop at larger sizes; the
# count of such a run is for a different interleaving. What still varies is the share of
# sysmon and of the thread waiting in `Runtime::run`, which wake by wall time: two runs of
# this script agree within 0.1%. The whole script takes under a minute.
set -euo pipefail

# NAME SMALL BIG, sizes as the probe takes them (yield_many: yields in all).
SIZES=(
    "yield_many 200000 1000000"
    "ping_pong 40000 200000"
    "ring 200000 1000000"
    "spawn_join 1000 5000"
    "chained_spawn 2000 10000"
    "timer_stop 40000 200000"
    "select_after 40000 200000"
    "recv_timeout 20000 100000"
    "sleep 20000 100000"
)
TRIES=5

names=$(printf '%s\n' "${SIZES[@]}" | cut -d' ' -f1)
picked=("$@")
for name in "${picked[@]}"; do
    grep -qx -- "$name" <<<"$names" || {
        echo "callgrind.sh: no workload named \"$name\"; one of:" $names >&2
        exit 2
    }
done

root=$(cd "$(dirname "$0")/.." && pwd)
command -v valgrind >/dev/null || {
    echo "callgrind.sh: valgrind is not installed (Debian/Ubuntu: apt-get install valgrind)" >&2
    exit 2
}
cd "$root"
cargo build --release -p goexec-benches --bin probe >&2
probe="${CARGO_TARGET_DIR:-$root/target}/release/probe"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# count NAME SIZE: prints "OPS INSTRUCTIONS" for one run with a single M.
count() {
    local try out ops ms
    for ((try = 1; try <= TRIES; try++)); do
        rm -f "$work"/cg.out*
        out=$(valgrind --tool=callgrind --separate-threads=yes --compress-strings=no \
            --callgrind-out-file="$work/cg.out" "$probe" "$1" "$2" 2>"$work/log") || {
            cat "$work/log" >&2
            echo "callgrind.sh: the probe failed: $1 $2" >&2
            exit 1
        }
        ops=$(echo "$out" | awk '{print $3}')
        ms=$({ grep -l 'sched::mstart' "$work"/cg.out-* || true; } | wc -l)
        if [ "$ms" -eq 0 ]; then
            echo "callgrind.sh: no thread ran goexec::runtime::sched::mstart (renamed?)" >&2
            exit 1
        elif [ "$ms" -eq 1 ]; then
            echo "$ops $(awk '/^summary:/ {s += $2} END {print s}' "$work"/cg.out-*)"
            return
        fi
        echo "callgrind.sh: $1 $2: $ms Ms ran goroutines; again ($try of $TRIES)" >&2
    done
    echo "callgrind.sh: $1 $2: no run with a single M in $TRIES tries" >&2
    exit 1
}

start=$(date +%s)
printf '%-14s %10s %10s %14s %14s %12s\n' workload small big "I(small)" "I(big)" "instr/op"
for line in "${SIZES[@]}"; do
    read -r name small big <<<"$line"
    if [ ${#picked[@]} -gt 0 ] && ! grep -qx -- "$name" <<<"$(printf '%s\n' "${picked[@]}")"; then
        continue
    fi
    s=$(count "$name" "$small")
    b=$(count "$name" "$big")
    read -r ops_s ins_s <<<"$s"
    read -r ops_b ins_b <<<"$b"
    awk -v n="$name" -v os="$ops_s" -v ob="$ops_b" -v is="$ins_s" -v ib="$ins_b" 'BEGIN {
        printf "%-14s %10d %10d %14.0f %14.0f %12.1f\n", n, os, ob, is, ib, (ib - is) / (ob - os)
    }'
done
echo "($(uname -m), Linux $(uname -r), $(git describe --always --dirty 2>/dev/null || echo "no git"); $(($(date +%s) - start)) s)"
