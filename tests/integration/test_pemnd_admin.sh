#!/usr/bin/env bash
# pemnd admin commands on a database file: success output, and every failure gives a
# message on stderr and its documented exit status (2 usage, 6 not found, 11 conflict).
. "$(dirname "$0")/lib.sh"
export PEMND_DB="$T_TMP/admin.db"
K="$T_TMP/k"
"$PEMN_MKPKG" keygen "$K" >/dev/null || { fail "keygen"; exit 1; }

admin() { # admin NAME EXPECTED_EXIT ARGS...: stdout in $T_TMP/out, stderr in $T_TMP/err
    local name=$1 want=$2 rc
    shift 2
    "$PEMND_BIN" --db "$PEMND_DB" "$@" >"$T_TMP/out" 2>"$T_TMP/err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then pass "$name"; else
        fail "$name" "exit $rc, expected $want; stderr: $(head -c 200 "$T_TMP/err")"
    fi
}
says() { if grep -Eq -- "$2" "$T_TMP/$3"; then pass "$1"; else fail "$1" "'$2' not in $3"; fi; }

admin "key add" 0 key add "$K.pub" --name alice
says "key add prints the id" '^trusted key [0-9a-f]{16} \(alice\)' out
admin "key add again: conflict" 11 key add "$K.pub" --name alice
says "conflict is explained" 'pemnd: ' err
admin "key add of a non-key file: usage" 2 key add "$PEMND_DB" --name bob
admin "key add of a missing file" 6 key add "$T_TMP/none.pub"
admin "key add with a bad name: usage" 2 key add "$K.pub" --name '../x'
admin "key list" 0 key list
says "key list shows alice" 'alice' out
admin "key remove of an unknown key: not found" 6 key remove nosuch
says "not found is explained" 'pemnd: .*nosuch' err
admin "key remove" 0 key remove alice
admin "key remove again: not found" 6 key remove alice

admin "token create" 0 token create --scope read --name r1
says "token printed last" '^pemn_' out
admin "token create, same name: conflict" 11 token create --scope read --name r1
admin "token create, bad scope: usage" 2 token create --scope root --name r2
admin "token revoke of an unknown token: not found" 6 token revoke nosuch
says "revoke failure names the token" 'nosuch' err
admin "token revoke" 0 token revoke r1
admin "token revoke twice: not found" 6 token revoke r1
admin "token list" 0 token list
admin "audit" 0 audit --limit 10
says "audit records the writes" 'key\.add' out
admin "unknown subcommand: usage" 2 token frobnicate
t_done
