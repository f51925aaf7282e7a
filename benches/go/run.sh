#!/usr/bin/env bash
# Go's side of the compare binary's timer rows: builds timers.go and runs it at each worker
# count, printing median (min–max) per row. Usage: benches/go/run.sh [ROUNDS] [PROCS...]
# (default 5 rounds at procs 1 and 2). Skipped, with a note, where `go` is not installed.
set -euo pipefail
cd "${0%/*}"
rounds=${1:-5}
shift || true
procs=("${@:-1 2}")
if ! command -v go >/dev/null; then
    echo "benches/go/run.sh: skipped: no \`go\` on PATH (Go >= 1.23 runs the Go side of the timer rows)"
    exit 0
fi
echo "$(go version)"
bin=$(mktemp -d)/timers
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" .
for p in ${procs[*]}; do
    "$bin" -procs "$p" -rounds "$rounds"
done
