#!/usr/bin/env bash
# Runs one herald bench load against one SSE server, freshly started, and
# keeps the JSON result. The numbers in BENCHMARKS.md come from this script.
#
#   bash bench/compare/run.sh build                 # build every server into $OUT/bin
#   bash bench/compare/run.sh SERVER LOAD [TAG]     # one run; result in $OUT/results
#   bash bench/compare/run.sh matrix [ROUNDS]       # every server, every load
#   go run ./bench/compare/summarize                # the results as BENCHMARKS.md's tables
#
# SERVER: herald heraldbolt heraldnopark heraldnouring gosse r3sse gossesrv
#         mercure mercurebolt node.  LOAD: A (idle memory) B (fan-out 10k x 5/s)
#         C (CPU 1k x 50/s) D (publish throughput) E (publish throughput,
#         100 updates per request: Herald's batch publish; herald* only)
#         R (E at a fixed 150,000 updates/s: delivered throughput, which
#         one subscriber can read; herald* only)
#         S (A held 170 s: memory after the runtime's periodic GC, which a
#         Go server runs every 2 minutes when nothing else triggers one).
#   bash bench/compare/run.sh settled [ROUNDS]      # load S for every server (~3 min each)
# Loopback only; each run stops its server. OUT defaults to bench/compare/out.
# GEN (env) is the herald binary that runs the load (default: OUT's own), so
# that two builds of Herald can be measured with the same generator.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
OUT=${OUT:-$here/out}
B=$OUT/bin R=$OUT/results
K=benchkey-0123456789abcdef0123456789abcdef

build() {
	mkdir -p "$B"
	(cd "$root" && go build -o "$B/herald" ./cmd/herald)
	for d in gosse r3labs gosselib mercure; do
		(cd "$here/$d" && go build -o "$B/$d" .)
	done
}

run() {
	local S=$1 L=$2 TAG=${3:-1} PORT CMD SUB PUB BODY PUBH=()
	local TOKEN
	TOKEN=$("$B/herald" token --key "$K" --publish '*' --ttl 24h)
	local M=/.well-known/mercure
	case $S in
	herald) PORT=8080 CMD=("$B/herald" serve --addr 127.0.0.1:$PORT --store memory --allow-anonymous-publish --log-level warn) ;;
	heraldnopark) PORT=8082 CMD=("$B/herald" serve --addr 127.0.0.1:$PORT --store memory --allow-anonymous-publish --log-level warn --no-park) ;;
	heraldnouring) PORT=8083 CMD=("$B/herald" serve --addr 127.0.0.1:$PORT --store memory --allow-anonymous-publish --log-level warn --io-uring=false) ;;
	heraldbolt)
		PORT=8081
		rm -rf "$OUT/heraldbolt-data"
		CMD=("$B/herald" serve --addr 127.0.0.1:$PORT --data-dir "$OUT/heraldbolt-data" --publisher-key "$K" --log-level warn)
		PUBH=(--pub-header "Authorization: Bearer $TOKEN") ;;
	gosse) PORT=8090 CMD=("$B/gosse" --addr 127.0.0.1:$PORT) ;;
	r3sse) PORT=8091 CMD=("$B/r3labs" --addr 127.0.0.1:$PORT) ;;
	gossesrv) PORT=8092 CMD=("$B/gosselib" --addr 127.0.0.1:$PORT) ;;
	mercure)
		PORT=8093 CMD=("$B/mercure" --addr 127.0.0.1:$PORT --publisher-key "$K")
		PUBH=(--pub-header "Authorization: Bearer $TOKEN") ;;
	mercurebolt)
		PORT=8095
		rm -f "$OUT/mercure-bench.db"
		CMD=("$B/mercure" --addr 127.0.0.1:$PORT --publisher-key "$K" --transport bolt --bolt-path "$OUT/mercure-bench.db")
		PUBH=(--pub-header "Authorization: Bearer $TOKEN") ;;
	node) PORT=8094 CMD=(node "$here/node/server.js" $PORT) ;;
	*) echo "unknown server $S" >&2; exit 2 ;;
	esac
	case $S in
	herald*|mercure*) SUB="http://127.0.0.1:$PORT$M?topic=bench" PUB="http://127.0.0.1:$PORT$M" BODY='topic=bench&data={{payload}}' ;;
	r3sse) SUB="http://127.0.0.1:$PORT/events?stream=bench" PUB="http://127.0.0.1:$PORT/publish" BODY='data={{payload}}' ;;
	*) SUB="http://127.0.0.1:$PORT/events" PUB="http://127.0.0.1:$PORT/publish" BODY='data={{payload}}' ;;
	esac
	local LOAD
	case $L in
	A) LOAD=(--idle --subscribers 10000 --duration 5s --source-ips 4) ;;
	S) LOAD=(--idle --subscribers 10000 --duration 170s --source-ips 4) ;;
	B) LOAD=(--subscribers 10000 --rate 5 --duration 20s --size 100 --source-ips 4) ;;
	C) LOAD=(--subscribers 1000 --rate 50 --duration 20s --size 100 --source-ips 4) ;;
	D) LOAD=(--rate 0 --publishers 16 --subscribers 1 --duration 10s --size 100) ;;
	E | R)
		case $S in herald*) ;; *) echo "loads E and R (batch publish) are Herald's extension: herald* servers only" >&2; exit 2 ;; esac
		LOAD=(--rate 0 --publishers 16 --subscribers 1 --duration 10s --size 100 --pub-batch 100)
		[ "$L" = R ] && LOAD[1]=150000
		BODY='{"topic":"bench","data":"{{payload}}"}' ;;
	*) echo "unknown load $L" >&2; exit 2 ;;
	esac
	mkdir -p "$R"
	local O=$R/$S-$L-$TAG
	"${CMD[@]}" >"$O.server.log" 2>&1 &
	local SPID=$!
	for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
	sleep 0.5
	cut -d' ' -f1-3 /proc/loadavg >"$O.loadavg"
	local BENCH=("${GEN:-$B/herald}" bench --sub-url "$SUB" "${LOAD[@]}" --pid $SPID --json --quiet)
	[ "$L" != A ] && BENCH+=(--pub-url "$PUB" --pub-body "$BODY" "${PUBH[@]}")
	local rc=0
	"${BENCH[@]}" >"$O.json" 2>"$O.stderr" || rc=$?
	kill $SPID
	wait $SPID 2>/dev/null || true
	echo "$S $L $TAG rc=$rc load=$(cat "$O.loadavg")"
}

case ${1:-} in
build) build ;;
settled)
	build
	for rep in $(seq "${2:-1}"); do
		for s in herald gosse r3sse gossesrv mercure node; do run $s S r$rep; sleep 2; done
	done ;;
matrix)
	build
	for rep in $(seq "${2:-2}"); do
		for L in A B C; do
			for s in herald gosse r3sse gossesrv mercure node; do run $s $L r$rep; sleep 2; done
		done
		for s in herald heraldbolt gosse r3sse gossesrv mercure mercurebolt node; do run $s D r$rep; sleep 2; done
		for s in herald heraldbolt; do run $s E r$rep; sleep 2; run $s R r$rep; sleep 2; done
	done ;;
'') sed -n '2,13p' "$0"; exit 2 ;;
*) [ -x "$B/herald" ] || build; run "$@" ;;
esac
