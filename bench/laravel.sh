#!/bin/bash
# bench/laravel.sh: Laravel broadcasting, rtd --laravel-config against laravel-echo-server 1.6.3.
#
#   bench/laravel.sh RTD RTLOAD [OUT_DIR]
#
# One public channel with 1 000 Laravel Echo subscribers (socket.io-client 2.x's protocol,
# Engine.IO 3 over WebSocket, which both servers speak: rtd with --allow-eio3); events
# published through Redis as Laravel's RedisBroadcaster does (PUBLISH laravel_database_bench
# {"event","data","socket"}) by rtload's publisher, as fast as the receivers keep up (at most
# --max-lag events behind on average, so the servers' queues stay bounded). Deliveries/s is
# what the clients received in the measured window. A real redis-server is started on a
# loopback port; each server gets a fresh laravel-echo-server.json in a temporary directory.
#
# Environment:
#   QUICK=1           shorter windows (3 s instead of 10)
#   SERVERS=...       "rtd node" (default; node is laravel-echo-server), or one of them
#   PORT=N            first port to use (default 30300): Redis, then one per server
#   NODE=node         the Node.js binary
#   RTD_FLAGS=...     more flags for rtd
#   LV_CLIENTS=1000   subscribers
#   LV_PROCS=2        rtload processes the subscribers are split over (the first publishes);
#                     their deliveries are summed, so one client process is not the limit
#   LV_MAXLAG=64      events the receivers may lag behind, on average
#   LV_PERF=1         also perf record rtd during its run (OUT_DIR/laravel.rtd.perf.txt)
#   LES=DIR           laravel-echo-server's package (default tests/node_modules/laravel-echo-server)
#
# Writes OUT_DIR/laravel.rtd.json and laravel.node.json (rtload's report of the first process,
# deliveries and CPU per delivery over all of them), the per-process reports, the logs, and
# prints one line per server and the ratio. Everything is bounded: every rtload has a deadline,
# timeout wraps it, and the script stops what it started when it exits or is interrupted.
set -u
set -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
[ $# -ge 2 ] || { sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
rtd=$1
rtload=$2
out=${3:-$(mktemp -d "${TMPDIR:-/tmp}/rtd-bench-laravel.XXXXXX")}
mkdir -p "$out"
[ -x "$rtd" ] || { echo "laravel.sh: $rtd is not an executable" >&2; exit 2; }
[ -x "$rtload" ] || { echo "laravel.sh: $rtload is not an executable" >&2; exit 2; }
node=${NODE:-node}
redis_bin=$(command -v redis-server) || { echo "laravel.sh: no redis-server: laravel step skipped" >&2; exit 0; }
les=${LES:-$src/tests/node_modules/laravel-echo-server}
servers=${SERVERS:-rtd node}
if [[ " $servers " == *" node "* ]] && [ ! -f "$les/bin/server.js" ]; then
    echo "laravel.sh: no laravel-echo-server at $les (npm ci in tests/): reference skipped" >&2
    servers=${servers//node/}
fi
port=${PORT:-30300}
clients=${LV_CLIENTS:-1000}
procs=${LV_PROCS:-2}
maxlag=${LV_MAXLAG:-64}
if [ "${QUICK:-0}" = 1 ]; then d=3; warm=2; else d=10; warm=3; fi
work=$(mktemp -d "${TMPDIR:-/tmp}/rtd-bench-laravel-work.XXXXXX")
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
    done
    pids=()
}
redis_pid=
loads=()
stop_all() { # at exit or interruption: the rtloads, the server, Redis
    for p in "${loads[@]}"; do kill -TERM "$p" 2>/dev/null; done
    cleanup
    [ -z "$redis_pid" ] || pids=("$redis_pid")
    cleanup
}
trap 'stop_all; rm -rf "$work"' EXIT
trap 'echo "laravel.sh: interrupted" >&2; exit 130' INT TERM

rport=$port
"$redis_bin" --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
    >"$out/laravel.redis.log" 2>&1 &
redis_pid=$!
disown "$redis_pid" 2>/dev/null
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$rport") 2>/dev/null && break; sleep 0.1; done

app=benchapp
key=0123456789abcdef0123456789abcdef
for s in $servers; do
    port=$((port + 1))
    dir="$work/$s"
    mkdir -p "$dir"
    # the same file for both: laravel-echo-server's own format, read by rtd --laravel-config
    cat >"$dir/laravel-echo-server.json" <<EOF
{
  "authHost": "http://127.0.0.1",
  "authEndpoint": "/broadcasting/auth",
  "clients": [{"appId": "$app", "key": "$key"}],
  "database": "redis",
  "databaseConfig": {"redis": {"host": "127.0.0.1", "port": "$rport", "keyPrefix": "laravel_database_"}},
  "devMode": false,
  "host": "127.0.0.1",
  "port": "$port",
  "protocol": "http",
  "socketio": {},
  "subscribers": {"http": true, "redis": true},
  "apiOriginAllow": {"allowCors": false}
}
EOF
    log="$out/laravel.$s.log"
    if [ "$s" = rtd ]; then
        # shellcheck disable=SC2086
        "$rtd" --laravel-config "$dir/laravel-echo-server.json" --allow-eio3 --db "$dir/rtd.db" \
            --rate-limit 0 --presence off --log-level warn --max-connections 19500 \
            --retention-days 0 ${RTD_FLAGS:-} >"$log" 2>&1 &
    else
        (cd "$dir" && exec "$node" "$les/bin/server.js" start --config=laravel-echo-server.json) >"$log" 2>&1 &
    fi
    spid=$!
    disown "$spid" 2>/dev/null
    pids+=("$spid")
    up=0
    for _ in $(seq 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/apps/$app/status?auth_key=$key" && { up=1; break; }
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.1
    done
    if [ "$up" = 0 ]; then
        echo "laravel.sh: $s did not start (see $log)" >&2
        cleanup
        continue
    fi
    perf_pid=
    if [ "$s" = rtd ] && [ "${LV_PERF:-0}" = 1 ] && command -v perf >/dev/null; then
        perf record -g -o "$work/perf.data" -p "$spid" -- sleep $((warm + d + 4)) >/dev/null 2>&1 &
        perf_pid=$!
    fi
    echo "== laravel: $s ($clients Echo subscribers over $procs rtload, Redis publisher)" >&2
    common=(--port "$port" --server-pid "$spid" --scenario fanout --eio 3 --subscribe bench
            --warmup "$warm" --duration "$d" --max-lag "$maxlag" --quiet)
    per=$((clients / procs))
    loads=()
    for i in $(seq 2 "$procs"); do
        timeout 300 "$rtload" "${common[@]}" --clients "$per" --senders 0 --label "laravel-p$i.$s" \
            --json "$out/laravel-p$i.$s.json" >"$out/laravel-p$i.$s.txt" &
        loads+=($!)
    done
    timeout 300 "$rtload" "${common[@]}" --clients $((clients - per * (procs - 1))) --senders 0 \
        --redis-publish "127.0.0.1:$rport" --redis-key laravel_database_bench --window 64 \
        --label "laravel-p1.$s" --json "$out/laravel-p1.$s.json" | tee "$out/laravel-p1.$s.txt"
    for p in "${loads[@]}"; do wait "$p"; done
    loads=()
    [ -n "$perf_pid" ] && wait "$perf_pid"
    reports=()
    for i in $(seq 1 "$procs"); do reports+=("$out/laravel-p$i.$s.json"); done
    kill -0 "$spid" 2>/dev/null || echo "laravel.sh: $s died during the run (see $log)" | tee -a "$out/crashes.txt" >&2
    "$node" -e '
        const fs = require("fs");
        const [outFile, n, ...files] = process.argv.slice(1);
        const js = files.map((f) => { try { return JSON.parse(fs.readFileSync(f, "utf8")); } catch { return null; } });
        if (!js[0]) process.exit(1);
        const all = js.filter(Boolean);
        const sum = all.reduce((a, j) => a + j.messages.deliveries_per_s, 0);
        const delivered = all.reduce((a, j) => a + j.messages.delivered, 0);
        const j = js[0];
        j.label = "laravel." + n;
        j.processes = all.length;
        j.messages.deliveries_per_s = sum;
        j.messages.delivered = delivered;
        j.messages.missing_deliveries = all.reduce((a, x) => a + x.messages.missing_deliveries, 0);
        j.config.clients = all.reduce((a, x) => a + x.config.clients, 0);
        if (j.server && j.server.cpu_s && delivered) j.server.cpu_ns_per_delivery = (j.server.cpu_s * 1e9) / delivered;
        j.client.cpu_s_all = all.reduce((a, x) => a + (x.client?.cpu_s ?? 0), 0);
        fs.writeFileSync(outFile, JSON.stringify(j, null, 2) + "\n");
        const d = j.latency_ms.delivery;
        console.log(`laravel ${n}: ${Math.round(sum)} deliveries/s (${all.length} rtload, ${j.config.clients} clients, ` +
            `${Math.round(j.messages.sent_per_s)} events/s published, missing ${j.messages.missing_deliveries}), ` +
            `server CPU ${j.server.cpu_pct} %, ${Math.round(j.server.cpu_ns_per_delivery)} ns/delivery, ` +
            `RSS ${j.server.rss_end_kb} kB, delivery p50 ${d.p50.toFixed(2)} ms p99 ${d.p99.toFixed(2)} ms`);
    ' "$out/laravel.$s.json" "$s" "${reports[@]}" |
        tee "$out/laravel.$s.sum.txt"
    if [ -n "$perf_pid" ]; then
        perf report -i "$work/perf.data" --no-children --stdio --percent-limit 1 2>/dev/null |
            head -150 >"$out/laravel.rtd.perf.txt"
        echo "laravel.sh: rtd profile in $out/laravel.rtd.perf.txt" >&2
    fi
    cleanup
    sleep 1 # sockets settle between servers
done
"$node" -e '
    const fs = require("fs");
    const r = (s) => { try { return JSON.parse(fs.readFileSync(`${process.argv[1]}/laravel.${s}.json`, "utf8")); } catch { return null; } };
    const a = r("rtd"), b = r("node");
    if (a && b && b.messages.deliveries_per_s > 0)
        console.log(`laravel: rtd / laravel-echo-server = ${(a.messages.deliveries_per_s / b.messages.deliveries_per_s).toFixed(1)}x (target 20x)`);
' "$out" | tee "$out/laravel.ratio.txt"
pids=("$redis_pid")
cleanup
redis_pid=
echo "results: $out" >&2
