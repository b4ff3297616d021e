#!/bin/bash
# bench/run.sh: rtd against the Node.js Socket.IO server (socket.io 4.8), same scenarios, one run.
#
#   bench/run.sh RTD RTLOAD [OUT_DIR]
#
#   RTD      the rtd binary (e.g. /tmp/build-bench/rtd/rtd); builds nothing
#   RTLOAD   the load generator (e.g. /tmp/build-bench/tools/rtload)
#   OUT_DIR  where the JSON, the server logs and summary.md go (default: a new /tmp/rtd-bench.*)
#
# Environment:
#   QUICK=1        about 2½ minutes (short windows, fewer steps) instead of about 9
#   ONLY=a,b       run only these steps: fanout1 fanout4 latency ingest idle conns mixed,
#                  curve100 curve5000 curve10000, cluster; "fanout" and "curve" name their
#                  group (cluster needs redis-server: two nodes of each server on one Redis);
#                  opt-in only: adminui (rtd, bench/adminui.sh), fanout-recovery (rtd,
#                  --recovery-window), recovery (bench/recovery.mjs), laravel (bench/laravel.sh)
#   SERVERS=...    "rtd node" (default), or one of them
#   PORT=N         first port to listen on (default 30100; each server start takes the next one;
#                  keep it below the ephemeral range, where rtload's TIME_WAIT sockets live)
#   NODE=node      the Node.js binary
#   RTD_FLAGS=...  more flags for every rtd start (e.g. "--send-threads 1")
#
# Every server is started fresh for every step (rtd with a new database in a temporary
# directory, --rate-limit 0 --presence off; the reference with --presence off), rtload runs
# the step with --server-pid so it reads the server's RSS and CPU time from /proc, and the
# server is stopped. Everything is bounded: each rtload phase has a deadline, and the script
# kills whatever it started when it exits or is interrupted. bench/report.mjs prints the table.
set -u
set -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 2 ] || usage
rtd=$1
rtload=$2
out=${3:-}
[ -x "$rtd" ] || { echo "run.sh: $rtd is not an executable (build rtd first)" >&2; exit 2; }
[ -x "$rtload" ] || { echo "run.sh: $rtload is not an executable (make tools/rtload)" >&2; exit 2; }
node=${NODE:-node}
command -v "$node" >/dev/null || { echo "run.sh: $node not found" >&2; exit 2; }
command -v curl >/dev/null || { echo "run.sh: curl not found" >&2; exit 2; }
if [ ! -f "$here/reference/node_modules/socket.io/package.json" ]; then
    echo "run.sh: installing the reference's packages: npm ci --prefix $here/reference" >&2
    (cd "$here/reference" && npm ci --no-audit --no-fund --ignore-scripts) >&2 || exit 1
fi
[ -n "$out" ] || out=$(mktemp -d "${TMPDIR:-/tmp}/rtd-bench.XXXXXX")
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/rtd-bench-work.XXXXXX")
quick=${QUICK:-0}
servers=${SERVERS:-rtd node}
rtd_flags=${RTD_FLAGS:-}
port=${PORT:-30100}
eph_low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
if [ $((port + 40)) -ge "$eph_low" ]; then
    echo "run.sh: PORT=$port is too close to the ephemeral port range (from $eph_low)" >&2
    exit 2
fi

# Both the server and rtload need many descriptors: 19 000 connections in one step.
hard=$(ulimit -Hn)
ulimit -n "$hard" 2>/dev/null || true
echo "open-file limit: $(ulimit -n) (hard $hard)"

server_pid=
others=() # more processes a step started (the cluster step's second node, Redis)
cleanup() {
    for p in "${others[@]}"; do
        kill -TERM "$p" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
    done
    others=()
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server_pid" 2>/dev/null
    fi
    server_pid=
}
trap 'cleanup; rm -rf "$work"' EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT TERM

# ---- the machine ----
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpus: $(nproc)"
    echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
    echo "memory: $(awk '/^MemTotal:/ {printf "%.0f GB", $2/1048576}' /proc/meminfo)"
    echo "kernel: $(uname -sr)"
    echo "os: $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
    echo "node: $("$node" --version)"
    echo "socket.io: $("$node" -p "require('$here/reference/node_modules/socket.io/package.json').version")"
    echo "rtd: $("$rtd" --version 2>&1 | head -1)"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "quick: $quick"
    [ -z "$rtd_flags" ] || echo "rtd flags: $rtd_flags"
} | tee "$out/machine.txt"
echo "busiest processes at start:" >> "$out/machine.txt"
ps -eo pcpu,etime,comm --sort=-pcpu | head -6 >> "$out/machine.txt"

# ---- servers ----
# start_server NAME STEP [extra flags...]: starts a fresh server on the next port, waits for
# /health, sets server_pid and port.
start_server() {
    local name=$1 step=$2
    shift 2
    port=$((port + 1))
    local log="$out/$step.$name.log"
    if [ "$name" = rtd ]; then
        local dir="$work/$step"
        mkdir -p "$dir"
        "$rtd" --port "$port" --bind 127.0.0.1 --db "$dir/rtd.db" --rate-limit 0 --presence off \
            --log-level warn --max-connections 19500 --retention-days 0 $rtd_flags "$@" >"$log" 2>&1 &
    else
        "$node" "$here/reference/server.mjs" --port "$port" --presence off "$@" >"$log" 2>&1 &
    fi
    server_pid=$!
    disown "$server_pid" 2>/dev/null # no "Killed" notices when a busy server needs SIGKILL
    for _ in $(seq 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/health" && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "run.sh: $name did not start (see $log)" >&2
    cleanup
    return 1
}

# stop_server NAME STEP: stops it and notes whether it was still alive (a crash otherwise).
stop_server() {
    local name=$1 step=$2
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "run.sh: $name died during $step (see $out/$step.$name.log)" | tee -a "$out/crashes.txt" >&2
    fi
    cleanup
}

# step NAME SERVER_FLAGS RTLOAD_ARGS...: runs one step against each server.
# SERVER_FLAGS is one word: "-" for none, or flags joined with commas.
step() {
    local name=$1 sflags=$2
    shift 2
    local group=${name%%[0-9]*}
    case ",${ONLY:-$name}," in *",$name,"* | *",$group,"*) ;; *) return 0 ;; esac
    local flags=()
    [ "$sflags" = - ] || IFS=, read -r -a flags <<<"$sflags"
    for s in $servers; do
        echo "== $name: $s (rtload $*)" >&2
        start_server "$s" "$name" "${flags[@]}" || continue
        timeout 900 "$rtload" --port "$port" --server-pid "$server_pid" --label "$name.$s" \
            --json "$out/$name.$s.json" --quiet "$@" | tee "$out/$name.$s.txt"
        stop_server "$s" "$name"
        sleep 1 # closing sockets and TIME_WAIT settle between steps
    done
}

# ---- the steps ----
if [ "$quick" = 1 ]; then
    d=3; warm=2; hold=3; hbhold=6; curve="100 10000"
else
    d=10; warm=3; hold=10; hbhold=30; curve="100 5000 10000"
fi

# Fan-out: 1 000 WebSocket clients, 1 and 4 senders, as fast as acks and receivers allow.
# The warm-up absorbs the first burst (window x clients frames at once), which keeps the
# Node.js event loop busy for seconds at 10 000 clients.
fan="--scenario fanout --max-lag 256 --warmup $warm --duration $d"
step fanout1 - $fan --clients 1000 --senders 1 --window 256
[ "$quick" = 1 ] || step fanout4 - $fan --clients 1000 --senders 4 --window 64
case ",${ONLY:-}," in *,adminui,*) . "$here/adminui.sh" ;; esac # opt-in: fanout1 with an admin
# Recovery (opt-in: ONLY=fanout1,fanout-recovery compares): fanout1 with --recovery-window,
# every receive-message carrying its offset (rtd only); docs/BENCHMARKS.md.
case ",${ONLY:-}," in *",fanout-recovery,"*) servers=rtd step fanout-recovery --recovery-window,120000 $fan --clients 1000 --senders 1 --window 256 ;; esac
# Latency: 10 000 messages/s fanned out to 100 clients (1 000 000 deliveries/s).
step latency - --scenario fanout --clients 100 --senders 4 --rate 10000 --window 4096 --duration $d
# Ingest: 200 senders, each in its own room, as fast as acks come back.
step ingest - --scenario ingest --clients 200 --window 32 --duration $d
# Memory: 10 000 idle WebSocket connections.
step idle - --scenario idle --clients 10000 --duration $hold --settle 3
# 19 000 connections with 2 s heartbeats, every ping answered at once and timed.
step conns --ping-interval,2000,--ping-timeout,2000 --scenario idle --clients 19000 --duration $hbhold --settle 2
# Mixed: 1 000 clients, 10 % long-polling, 10 rooms, 10 senders at 1 000 msg/s.
[ "$quick" = 1 ] || step mixed - --scenario mixed --clients 1000 --senders 10 --rate 1000 --rooms 10 --polling-fraction 0.1 --window 1024 --duration $d
# Cost per delivery from 100 to 10 000 clients (1 000 is fanout1).
for n in $curve; do
    step "curve$n" - $fan --clients "$n" --senders 1 --window 256
done

# Cluster: a broadcast stream published on one node reaches 1 000 WebSocket clients spread
# over two nodes on one Redis (rtd --redis; the reference with @socket.io/redis-adapter 8.3).
# One rtload holds 500 clients and the sender on node 1, another 500 receivers on node 2;
# both run the same phases at the same time. Deliveries/s is their sum; node 2's delivery
# latency includes the Redis hop, node 1's does not.
cluster_step() {
    case ",${ONLY:-cluster}," in *",cluster,"*) ;; *) return 0 ;; esac
    local redis_bin
    redis_bin=$(command -v redis-server) || { echo "run.sh: no redis-server: cluster step skipped" >&2; return 0; }
    port=$((port + 1))
    local rport=$port
    "$redis_bin" --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
        >"$out/cluster.redis.log" 2>&1 &
    local redis_pid=$!
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$rport") 2>/dev/null && break; sleep 0.1; done
    local mode cl tag
    for mode in max rate; do
        # max: as fast as node 1's acks allow; rate: 2 000 messages/s, for the latency
        cl="--scenario fanout --max-lag 256 --warmup $warm --duration $d --clients 500"
        tag=cluster
        if [ "$mode" = rate ]; then
            cl="--scenario fanout --warmup $warm --duration $d --clients 500"
            tag=clusterlat
        fi
        for s in $servers; do
            echo "== $tag: $s (2 nodes, rtload $cl)" >&2
            start_server "$s" "$tag.n2" --redis "redis://127.0.0.1:$rport" || continue
            local pid2=$server_pid port2=$port
            others+=("$pid2")
            server_pid=
            start_server "$s" "$tag.n1" --redis "redis://127.0.0.1:$rport" || { cleanup; continue; }
            sleep 1 # both subscribed
            local send="--senders 1 --window 256"
            [ "$mode" = rate ] && send="--senders 1 --rate 2000 --window 4096"
            timeout 900 "$rtload" --port "$port2" --server-pid "$pid2" --label "$tag-n2.$s" \
                --json "$out/$tag-n2.$s.json" --quiet $cl --senders 0 >"$out/$tag-n2.$s.txt" &
            local load2=$!
            timeout 900 "$rtload" --port "$port" --server-pid "$server_pid" --label "$tag-n1.$s" \
                --json "$out/$tag-n1.$s.json" --quiet $cl $send | tee "$out/$tag-n1.$s.txt"
            wait "$load2"
            cat "$out/$tag-n2.$s.txt"
            "$node" -e '
                const fs = require("fs");
                const [a, b] = process.argv.slice(1, 3).map((f) => JSON.parse(fs.readFileSync(f, "utf8")));
                const lat = (j) => j.latency_ms.delivery ?? {};
                console.log(JSON.stringify({ step: process.argv[3], server: process.argv[4],
                    deliveries_per_s: a.messages.deliveries_per_s + b.messages.deliveries_per_s,
                    local_p50_ms: lat(a).p50, local_p99_ms: lat(a).p99,
                    remote_p50_ms: lat(b).p50, remote_p99_ms: lat(b).p99 }));
            ' "$out/$tag-n1.$s.json" "$out/$tag-n2.$s.json" "$tag" "$s" | tee "$out/$tag.$s.sum.json"
            stop_server "$s" "$tag"
            sleep 1
        done
    done
    kill -TERM "$redis_pid" 2>/dev/null
    wait "$redis_pid" 2>/dev/null
}
cluster_step
case ",${ONLY:-}," in *,laravel,*) PORT=$((port + 1)) NODE=$node SERVERS=$servers RTD_FLAGS=$rtd_flags QUICK=$quick "$here/laravel.sh" "$rtd" "$rtload" "$out" ;; esac # opt-in: ONLY=laravel (bench/laravel.sh)
# Recovery (opt-in, ONLY=recovery): 1 000 clients recover 100 missed messages each after a restart of rtd.
case ",${ONLY:-}," in *",recovery,"*) port=$((port + 1)); mkdir -p "$work/recovery"; "$node" "$here/recovery.mjs" --rtd "$rtd" --port "$port" --dir "$work/recovery" --json "$out/recovery.rtd.result" ;; esac

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/machine.txt"
"$node" "$here/report.mjs" "$out" | tee "$out/summary.md"
echo "results: $out" >&2
