#!/usr/bin/env bash
# Deploy files: the example config is accepted by pemnd as is; the systemd unit and the
# container file keep their hardening and health check; deploy/run.sh starts pemnd.
source "$(dirname "$0")/lib.sh"
DEP=$PEMN_ROOT/deploy

OUT=$("$PEMND_BIN" --config "$DEP/pemnd.conf.example" --print-config 2>&1)
check_eq "example config parses" 0 "$?"
echo "$OUT" >"$T_TMP/effective.conf"
check "example config: values applied" grep -q '^per_ip_connection_limit = 64' "$T_TMP/effective.conf"
U=$DEP/pemnd.service
for d in 'DynamicUser=yes' 'StateDirectory=pemnd' 'ProtectSystem=strict' 'NoNewPrivileges=yes' \
    'Restart=on-failure' 'KillSignal=SIGTERM'; do
    check "systemd unit: $d" grep -qx "$d" "$U"
done
check "systemd unit: ExecStart uses the state directory" grep -q '^ExecStart=.*--db /var/lib/pemnd/' "$U"
if command -v systemd-analyze >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    check "systemd-analyze verify" bash -c "systemd-analyze verify '$U' 2>&1 | grep -v 'pemnd: No such file' | grep -qv . || true"
fi
C=$DEP/Containerfile
check "Containerfile: Debian 12 base" grep -q '^FROM debian:12' "$C"
check "Containerfile: non-root user" grep -q '^USER pemnd' "$C"
check "Containerfile: volume for the database" grep -q '^VOLUME /var/lib/pemnd' "$C"
check "Containerfile: health check on /v1/health" grep -q '/v1/health' "$C"
check "nginx example caches blobs" grep -q 'location /v1/blobs/' "$DEP/nginx-pemnd.conf"

# deploy/run.sh (what `make run` calls) starts pemnd in the foreground
mkdir -p "$T_TMP/run"
RUNDB=$(pemnd_db "$T_TMP/run") || fail "database"
for attempt in 1 2 3; do
    PORT=$(free_port)
    PEMND_DB=$RUNDB PEMND_LISTEN=127.0.0.1:$PORT bash "$DEP/run.sh" >"$T_TMP/run.log" 2>&1 &
    RUNPID=$!
    T_PIDS+=("$RUNPID")
    for i in $(seq 1 150); do
        kill -0 "$RUNPID" 2>/dev/null || break
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/v1/health" && break
        sleep 0.1
    done
    kill -0 "$RUNPID" 2>/dev/null && break # else the port was taken meanwhile: retry
done
check_eq "run.sh: pemnd answers" ok "$(curl -s "http://127.0.0.1:$PORT/v1/health" | jq -r .status)"
check "run.sh: prints the URL and how to make a token" bash -c "grep -q 'http://127.0.0.1:$PORT' '$T_TMP/run.log' && grep -q 'token create' '$T_TMP/run.log'"
check "run.sh: the admin hints name the database (quoted)" grep -q "pemnd --db '$RUNDB' token create" "$T_TMP/run.log"
kill "$RUNPID"
wait "$RUNPID"
check_eq "run.sh: SIGTERM stops it cleanly" 0 "$?"
t_done
