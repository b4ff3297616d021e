#!/bin/sh
# tests/fuzz/run.sh: runs the libFuzzer targets for a while each; builds nothing.
#
#   tests/fuzz/run.sh SECONDS [TARGET...]
#
# Run it from the build directory (the targets are looked for in tests/fuzz/ there, or in
# $FUZZ_BIN_DIR). Each target (default: fuzz_ws fuzz_eio fuzz_sio fuzz_platform fuzz_eio3
# fuzz_admin_http fuzz_sio_query fuzz_redis) runs for SECONDS on a copy of its seed corpus,
# tests/fuzz/corpus/<target>/ next to this script, made in a temporary directory so the
# repository is never written to. FUZZ_PARALLEL=1 runs the targets at the
# same time instead of one after the other. Exits 1 if a target is missing or found a crash
# (or a leak, a timeout, an out-of-memory); the temporary directory, with the crash inputs
# under <target>/artifacts/ and libFuzzer's log, is then kept and its path printed (also
# when FUZZ_KEEP=1, e.g. to look at the corpus the run grew).
set -u

usage() {
    echo "usage: $0 SECONDS [TARGET...]" >&2
    exit 2
}

[ $# -ge 1 ] || usage
secs=$1
shift
case $secs in
'' | *[!0-9]*) usage ;;
esac
[ "$secs" -gt 0 ] || usage

here=$(cd "$(dirname "$0")" && pwd)
bindir=${FUZZ_BIN_DIR:-tests/fuzz}
targets=${*:-fuzz_ws fuzz_eio fuzz_sio fuzz_platform fuzz_eio3 fuzz_admin_http fuzz_sio_query fuzz_redis}
work=$(mktemp -d "${TMPDIR:-/tmp}/rtd-fuzz.XXXXXX") || exit 1

# run_one TARGET: runs it, leaves its exit status in $work/TARGET/status.
run_one() {
    t=$1
    dir=$work/$t
    mkdir -p "$dir/corpus" "$dir/artifacts"
    if [ -d "$here/corpus/$t" ]; then
        cp "$here/corpus/$t"/* "$dir/corpus/" 2>/dev/null
    fi
    set -- -max_total_time="$secs" -max_len=4096 -timeout=30 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$dir/artifacts/"
    if [ -f "$here/$t.dict" ]; then
        set -- "$@" -dict="$here/$t.dict"
    fi
    "$bindir/$t" "$@" "$dir/corpus" >"$dir/log" 2>&1
    echo $? >"$dir/status"
}

status=0
pids=
for t in $targets; do
    if [ ! -x "$bindir/$t" ]; then
        echo "MISSING $t: $bindir/$t is not built (configure --enable-fuzzing; make $bindir/$t)"
        status=1
        continue
    fi
    echo "running $t for ${secs}s"
    if [ "${FUZZ_PARALLEL:-0}" = 1 ]; then
        run_one "$t" &
        pids="$pids $!"
    else
        run_one "$t"
    fi
done
for p in $pids; do
    wait "$p"
done

for t in $targets; do
    [ -f "$work/$t/status" ] || continue
    rc=$(cat "$work/$t/status")
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t/log")
    if [ "$rc" = 0 ]; then
        echo "PASS $t (${runs:-?} runs, $(ls "$work/$t/corpus" | wc -l) corpus entries)"
    else
        status=1
        echo "FAIL $t (exit $rc):"
        grep -E 'ERROR|SUMMARY|check failed|Test unit written' "$work/$t/log" | head -20
        for a in "$work/$t/artifacts"/*; do
            [ -e "$a" ] && echo "  crash input: $a"
        done
        echo "  log: $work/$t/log"
    fi
done

if [ $status = 0 ] && [ "${FUZZ_KEEP:-0}" != 1 ]; then
    rm -rf "$work"
else
    echo "kept $work"
fi
exit $status
