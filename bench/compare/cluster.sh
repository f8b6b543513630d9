#!/usr/bin/env bash
# Measures Herald as a cluster: 1 or more `herald serve` hubs sharing one
# engine (Redis Streams or NATS JetStream), started here on free loopback
# ports with their own private redis-server / nats-server (never the shared
# 6379 / 4222), subscribers spread over the hubs and publishes round-robin
# over them. Keeps one JSON result per run: herald bench's figures
# (publishes/s, publish→receipt latency across hubs, loss) plus the CPU
# time of the engine and of the hubs, read from /proc/PID/stat before and
# after the load.
#
#   bash bench/compare/cluster.sh ENGINE HUBS SUBS [DURATION] [RATE] [TAG]
#   bash bench/compare/cluster.sh matrix [ROUNDS]
#   bash bench/compare/cluster.sh summary            # one line per result
#
# ENGINE: redis | nats.  HUBS: number of hubs (1, 3...).  SUBS: subscribers
# in all (connection i goes to hub i mod HUBS).  DURATION: measured publish
# phase (default 20s).  RATE: publishes per second, 0 = flat out (default 0).
# PUBLISHERS (env, default 16): concurrent publishers, publisher j posting
# to hub j mod HUBS.  SIZE (env, default 100): payload bytes.  BATCH (env,
# default 1): updates per publish request (Herald's batch publish when > 1).
#
# matrix: for each engine, 1 and 3 hubs: flat out with one subscriber per
# hub (throughput, engine CPU per update), and 5,000 subscribers at 10
# updates/s (latency p50/p99 across hubs, hub CPU per delivery, not
# dominated by queueing on the shared 2 cores).
#
# Loopback only; every process started here is killed when the script ends
# (normally, on error or on Ctrl-C); herald bench is bounded by `timeout`.
# OUT defaults to bench/compare/out; results in $OUT/cluster/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
OUT=${OUT:-$here/out}
B=$OUT/bin R=$OUT/cluster
PUBLISHERS=${PUBLISHERS:-16}
SIZE=${SIZE:-100}
BATCH=${BATCH:-1}
TCK=$(getconf CLK_TCK)

PIDS=()
WORK=
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	PIDS=()
	[ -n "$WORK" ] && rm -rf "$WORK"
	WORK=
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build() {
	mkdir -p "$B"
	(cd "$root" && go build -o "$B/herald" ./cmd/herald)
}

# freeport prints a free loopback TCP port.
freeport() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# waitport PORT waits until something listens on 127.0.0.1:PORT (10s).
waitport() {
	for _ in $(seq 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "nothing listens on 127.0.0.1:$1 after 10s" >&2
	return 1
}

# enginebytes ENGINE PORT MONITORPORT prints the bytes the engine has sent
# to its clients so far (Redis INFO total_net_output_bytes, NATS /varz
# out_bytes), or 0 when it cannot tell.
enginebytes() {
	case $1 in
	redis) redis-cli -h 127.0.0.1 -p "$2" INFO stats 2>/dev/null | tr -d '\r' | sed -n 's/^total_net_output_bytes://p' ;;
	nats) curl -s "http://127.0.0.1:$3/varz" 2>/dev/null | jq -r '.out_bytes // 0' ;;
	esac | grep . || echo 0
}

# cputicks PID... prints the summed utime+stime of the processes, in clock ticks.
cputicks() {
	local t=0 p f
	for p in "$@"; do
		# The command name (field 2) may hold spaces: cut after its ')'.
		f=$(sed 's/^.*) //' "/proc/$p/stat")
		set -- $f
		t=$((t + ${12} + ${13})) # utime, stime: fields 14 and 15 of the full line
	done
	echo "$t"
}

run() {
	local ENGINE=$1 HUBS=$2 SUBS=$3 DUR=${4:-20s} RATE=${5:-0} TAG=${6:-1}
	case $ENGINE in redis | nats) ;; *) echo "unknown engine $ENGINE (redis, nats)" >&2; exit 2 ;; esac
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/herald-cluster.XXXXXX")
	local EP EPID STORE=() MP=
	EP=$(freeport)
	case $ENGINE in
	redis)
		redis-server --port "$EP" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
			--protected-mode no --logfile "$WORK/engine.log" &
		STORE=(--store redis --redis-url "redis://127.0.0.1:$EP/0") ;;
	nats)
		MP=$(freeport)
		nats-server -a 127.0.0.1 -p "$EP" -m "$MP" -js -sd "$WORK/js" -l "$WORK/engine.log" &
		STORE=(--store nats --nats-url "nats://127.0.0.1:$EP") ;;
	esac
	EPID=$!
	PIDS+=("$EPID")
	waitport "$EP"

	local HPIDS=() SUBURLS=() PUBURLS=() i port M=/.well-known/mercure
	for i in $(seq "$HUBS"); do
		port=$(freeport)
		"$B/herald" serve --addr "127.0.0.1:$port" "${STORE[@]}" --allow-anonymous-publish \
			--log-level warn --no-dashboard >"$WORK/hub$i.log" 2>&1 &
		HPIDS+=($!)
		PIDS+=($!)
		waitport "$port"
		SUBURLS+=(--sub-url "http://127.0.0.1:$port$M?topic=bench")
		PUBURLS+=(--pub-url "http://127.0.0.1:$port$M")
	done
	sleep 0.5

	mkdir -p "$R"
	local O=$R/$ENGINE-${HUBS}hubs-${SUBS}subs-rate$RATE-$TAG BATCHARGS=()
	if [ "$BATCH" -gt 1 ]; then
		O=$R/$ENGINE-${HUBS}hubs-${SUBS}subs-rate$RATE-batch$BATCH-$TAG
		BATCHARGS=(--pub-batch "$BATCH" --pub-body '{"topic":"bench","data":"{{payload}}"}')
	fi
	local load0 e0 h0 e1 h1 rc=0 secs i0 i1 t0 t1 b0 b1
	load0=$(cut -d' ' -f1-3 /proc/loadavg)
	secs=$(("${DUR%s}" + 120)) # bench's own bound: connect, warmup, drain
	# The engine's idle CPU (hubs connected, nothing published), over 3s,
	# subtracted from the figure per update as a rate.
	i0=$(cputicks "$EPID")
	sleep 3
	i1=$(cputicks "$EPID")
	t0=$(date +%s.%N)
	b0=$(enginebytes "$ENGINE" "$EP" "$MP")
	e0=$(cputicks "$EPID")
	h0=$(cputicks "${HPIDS[@]}")
	# In the background so that a signal to this script is handled at once
	# (bash runs traps only between foreground commands, or during wait).
	timeout "$secs" "$B/herald" bench "${SUBURLS[@]}" "${PUBURLS[@]}" --subscribers "$SUBS" \
		--rate "$RATE" --publishers "$PUBLISHERS" --duration "$DUR" --warmup 2s --size "$SIZE" \
		--source-ips 4 "${BATCHARGS[@]}" --json --quiet >"$O.bench.json" 2>"$O.stderr" &
	PIDS+=($!)
	wait $! || rc=$?
	e1=$(cputicks "$EPID")
	h1=$(cputicks "${HPIDS[@]}")
	t1=$(date +%s.%N)
	b1=$(enginebytes "$ENGINE" "$EP" "$MP")
	# The CPU spans the whole bench (connect, warmup, measured phase,
	# drain): per update it divides by every update published, warmup
	# included; per delivery, by every update times the subscribers.
	jq --arg engine "$ENGINE" --argjson hubs "$HUBS" --argjson tck "$TCK" \
		--argjson ecpu "$((e1 - e0))" --argjson hcpu "$((h1 - h0))" \
		--arg load "$load0" --argjson rc "$rc" --argjson idle "$((i1 - i0))" \
		--argjson bout "$((b1 - b0))" --argjson wall "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" '
		(.published + .warmup_events) as $updates |
		(($ecpu - $idle / 3 * $wall) | if . < 0 then 0 else . end) as $ebusy |
		{engine: $engine, hubs: $hubs, subscribers: .connected, rate: .rate, publishers: .publishers,
		 rc: $rc, loadavg: $load,
		 publishes_per_sec: .publishes_per_sec, published: .published, publish_errors: .publish_errors,
		 lost: .lost, loss_ratio: .loss_ratio, deliveries_per_sec: .deliveries_per_sec,
		 latency_p50_us: .latency_us.p50, latency_p99_us: .latency_us.p99, latency_max_us: .latency_us.max,
		 publish_p50_us: .publish_us.p50, publish_p99_us: .publish_us.p99,
		 engine_cpu_seconds: ($ecpu / $tck), hubs_cpu_seconds: ($hcpu / $tck),
		 engine_bytes_out: $bout,
		 engine_bytes_out_per_update: (if $updates > 0 then $bout / $updates else null end),
		 engine_idle_cpu_per_sec: ($idle / 3 / $tck), bench_wall_seconds: $wall,
		 engine_cpu_us_per_update: (if $updates > 0 then $ecpu / $tck * 1e6 / $updates else null end),
		 engine_busy_cpu_us_per_update: (if $updates > 0 then $ebusy / $tck * 1e6 / $updates else null end),
		 hubs_cpu_us_per_delivery: (if $updates * .connected > 0 then $hcpu / $tck * 1e6 / ($updates * .connected) else null end),
		 bench: .}' "$O.bench.json" >"$O.json" || echo "no result (bench exit $rc): see $O.stderr" >&2
	cleanup
	echo "$ENGINE hubs=$HUBS subs=$SUBS rate=$RATE $TAG rc=$rc load=$load0 -> $O.json"
}

summary() {
	local f
	printf '%-6s %4s %6s %6s %10s %8s %9s %9s %10s %10s %10s\n' engine hubs subs rate pub/s lost p50_ms p99_ms eng_us/upd busy_us/upd hub_us/del
	for f in "$R"/*.json; do
		case $f in *.bench.json) continue ;; esac
		jq -r '[.engine, .hubs, .subscribers, .rate, (.publishes_per_sec|floor), .lost,
			((.latency_p50_us // 0)/1000*100|floor/100), ((.latency_p99_us // 0)/1000*100|floor/100),
			((.engine_cpu_us_per_update // 0)*100|floor/100), ((.engine_busy_cpu_us_per_update // 0)*100|floor/100),
			((.hubs_cpu_us_per_delivery // 0)*100|floor/100)] | @tsv' "$f" |
			awk -F'\t' '{printf "%-6s %4s %6s %6s %10s %8s %9s %9s %10s %10s %10s\n", $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11}'
	done
}

case ${1:-} in
build) build ;;
matrix)
	build
	for rep in $(seq "${2:-1}"); do
		for e in redis nats; do
			for h in 1 3; do
				# Throughput: one subscriber per hub, flat out. With
				# 5,000 subscribers a flat-out run measures the fan-out
				# of 2 shared cores, not the engine: 700 updates/s
				# already asked for 3.5 M deliveries/s.
				run "$e" "$h" "$h" 20s 0 "r$rep"
				sleep 2
				# Latency across hubs: 5,000 subscribers at 10/s (50,000
				# deliveries/s, within what the 2 cores deliver while
				# they also run the engine and the generator).
				run "$e" "$h" 5000 20s 10 "r$rep"
				sleep 2
			done
		done
	done
	summary ;;
summary) summary ;;
'') sed -n '2,27p' "$0"; exit 2 ;;
*) [ -x "$B/herald" ] || build; run "$@" ;;
esac
