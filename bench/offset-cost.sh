#!/bin/bash
# bench/offset-cost.sh: what the recovery offset costs rtd per delivery, counted rather than
# timed, so that a machine shared with other work cannot blur it.
#
#   bench/offset-cost.sh RTD RTLOAD [ROUNDS]
#
# Each round runs the same fixed-rate fan-out against rtd without and with --recovery-window
# (every receive-message then carries its offset): 1 000 WebSocket clients, 1 sender at 100
# messages/s (100 000 deliveries/s). rtd runs under valgrind's callgrind, which counts the
# instructions it executes (user space: the kernel's part, the same sends of a few more bytes,
# is not counted). Once every client is connected and messages flow, the counters are zeroed
# (callgrind_control -z) and rtd_messages_out_total read; 8 s later they are dumped and read
# again: the figure is instructions per delivery in that window. No timing is involved.
# ROUNDS (default 2); RATE=N changes the 100 messages/s (a lower rate batches fewer frames per
# write, which steadies the count). Needs valgrind; every wait is bounded.
set -u
[ $# -ge 2 ] || { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
rtd=$1 rtload=$2 rounds=${3:-2}
command -v callgrind_control >/dev/null || { echo "offset-cost.sh: valgrind (callgrind) not found" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/rtd-offset-cost.XXXXXX")
pid= lpid=
trap '[ -n "$lpid" ] && kill -KILL "$lpid" 2>/dev/null; [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$work"' EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
port=${PORT:-30170}
rate=${RATE:-100}
# a metric's value, summed over its labels
metric() {
    curl -sf "http://127.0.0.1:$port/metrics" |
        awk -v m="$1" '{n = $1; sub(/\{.*/, "", n)} n == m {s += $2} END {print s + 0}'
}
printf '%-6s %-9s %11s %13s %12s\n' round recovery deliveries instructions instr/deliv
for r in $(seq "$rounds"); do
    for mode in off on; do
        port=$((port + 1))
        flags=()
        [ "$mode" = on ] && flags=(--recovery-window 120000)
        dir="$work/$r-$mode"
        mkdir -p "$dir"
        valgrind -q --tool=callgrind --callgrind-out-file="$dir/cg.out" \
            "$rtd" --port "$port" --bind 127.0.0.1 --db "$dir/rtd.db" --rate-limit 0 --presence off \
            --log-level warn --max-connections 19500 --retention-days 0 "${flags[@]}" >"$dir/rtd.log" 2>&1 &
        pid=$!
        for _ in $(seq 300); do curl -sf -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.1; done
        timeout 300 "$rtload" --port "$port" --quiet --scenario fanout \
            --clients 1000 --senders 1 --rate "$rate" --window 4096 --warmup 30 --duration 5 \
            --connect-rate 500 >/dev/null &
        lpid=$!
        # every client connected, and deliveries flowing
        for _ in $(seq 600); do
            [ "$(metric rtd_connections)" -ge 1000 ] && [ "$(metric rtd_messages_out_total)" -gt 0 ] && break
            sleep 0.1
        done
        sleep 2
        callgrind_control -z "$pid" >/dev/null 2>&1
        m0=$(metric rtd_messages_out_total)
        sleep 8
        m1=$(metric rtd_messages_out_total)
        callgrind_control -d "$pid" >/dev/null 2>&1
        sleep 1
        kill -KILL "$lpid" 2>/dev/null
        wait "$lpid" 2>/dev/null
        lpid=
        kill -TERM "$pid"
        for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        pid=
        # the dump after -z holds the window; the one written at exit comes last
        ir=$(ls -tr "$dir"/cg.out* | head -1 | xargs grep -h '^summary:' | awk '{print $2}')
        d=$((m1 - m0))
        printf '%-6s %-9s %11s %13s %12s\n' "$r" "$mode" "$d" "$ir" \
            "$(awk -v i="$ir" -v d="$d" 'BEGIN {printf "%.0f", d ? i / d : 0}')"
    done
done
