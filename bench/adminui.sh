# bench/adminui.sh: bench/run.sh's opt-in "adminui" step (ONLY=adminui), sourced by run.sh
# and using its functions: fanout1's load against rtd with --admin-ui development and no
# admin connected, then with one admin (bench/adminui.mjs) connected for the whole run, so
# the cost of development mode's events shows against fanout1 (--admin-ui off). rtd only:
# the reference server has no Admin UI. The admin is made with admin-fcgi --create-admin
# (ADMIN_FCGI, default next to RTD in the build tree).
admin_fcgi=${ADMIN_FCGI:-$(dirname "$rtd")/../admin-fcgi/admin-fcgi}
for variant in none one; do
    name=adminui-$variant
    echo "== $name: rtd (rtload $fan --clients 1000 --senders 1 --window 256)" >&2
    start_server rtd "$name" --admin-ui development || continue
    printf 'bench admin pw\n' | "$admin_fcgi" --db "$work/$name/rtd.db" --create-admin ops >/dev/null 2>&1
    admin_pid=
    if [ "$variant" = one ]; then
        "$node" "$here/adminui.mjs" "$port" ops 'bench admin pw' $((warm + d + 8)) \
            >"$out/$name.admin.json" 2>"$out/$name.admin.err" &
        admin_pid=$!
        sleep 1
    fi
    timeout 900 "$rtload" --port "$port" --server-pid "$server_pid" --label "$name.rtd" \
        --json "$out/$name.rtd.json" --quiet $fan --clients 1000 --senders 1 --window 256 |
        tee "$out/$name.rtd.txt"
    [ -z "$admin_pid" ] || wait "$admin_pid"
    stop_server rtd "$name"
    sleep 1
done
