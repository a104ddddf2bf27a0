#!/usr/bin/env bash
# Integration test of the registry client against the real pemnd on loopback:
# push -> ls -> tag -> pull by :version, @tag and latest -> --expand, compared byte for byte
# with expanding the original package locally; refusals (untrusted signer, no token,
# unknown version, rollback), PEMN_SERVER/PEMN_TOKEN/PEMN_TRUST/PEMN_CACHE, the cache, and a
# bounded failure once the server is gone. Packages and keys come from the tool mode of
# the test_client_pull binary (tests/common/client_fixture.h).
source "$(dirname "$0")/lib.sh"
unset PEMN_SERVER PEMN_TOKEN PEMN_TRUST PEMN_CACHE # hermetic: only what each check sets

P=$PEMN_BIN
S=$PEMND_BIN
TOOL=$PEMN_ROOT/$BUILD/tests/test_client_pull
D=$T_TMP

run() { # run NAME EXPECTED_EXIT CMD... (stdout in $D/out, stderr in $D/err)
    local name=$1 want=$2 rc
    shift 2
    "$@" >"$D/out" 2>"$D/err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then pass "$name"; else
        fail "$name" "exit $rc, expected $want; stderr: $(head -c 300 "$D/err")"
    fi
}
has() { # has NAME FILE REGEX
    if grep -Eq -- "$3" "$2"; then pass "$1"; else fail "$1" "'$3' not in $(head -c 300 "$2")"; fi
}
absent() { # absent NAME PATH...
    local name=$1 p
    shift
    for p in "$@"; do
        if [ -e "$p" ]; then
            fail "$name" "$p exists"
            return
        fi
    done
    pass "$name"
}

[ -x "$P" ] || { fail "pemn binary" "missing $P"; exit 1; }
[ -x "$S" ] || { fail "pemnd binary" "missing $S"; exit 1; }
[ -x "$TOOL" ] || { fail "package tool" "missing $TOOL"; exit 1; }

# ---- help and usage (no server needed) ---------------------------------------------------
for c in push ls tag pull; do
    run "$c --help exits 0" 0 "$P" $c --help
    has "$c --help shows usage" "$D/out" "usage: pemn $c"
done
run "push without a file -> 2" 2 env -u PEMN_SERVER "$P" push --server http://127.0.0.1:1
run "pull without --trust -> 2" 2 env -u PEMN_TRUST "$P" pull --server http://127.0.0.1:1 net
run "pull with a bad reference -> 2" 2 "$P" pull --server http://127.0.0.1:1 --trust x 'net:1@a'
run "ls without a server -> 2" 2 env -u PEMN_SERVER "$P" ls
has "missing server is explained" "$D/err" "PEMN_SERVER"
run "bad --timeout -> 2" 2 "$P" ls --server http://127.0.0.1:1 --timeout -3
run "tag with two arguments -> 2" 2 "$P" tag --server http://127.0.0.1:1 net 1.0

# ---- keys and packages -------------------------------------------------------------------
check "keygen alice" "$TOOL" keygen "$D/alice"
check "keygen mallory" "$TOOL" keygen "$D/mallory"
MLP=784x300,300x100,100x10
check "package net 1.0.0" "$TOOL" make-pkg "$D/alice.key" net 1.0.0 1 $MLP "$D/net-1.0.0.src"
check "package net 1.1.0" "$TOOL" make-pkg "$D/alice.key" net 1.1.0 2 $MLP "$D/net-1.1.0.src"
check "package by mallory" "$TOOL" make-pkg "$D/mallory.key" net 1.2.0 3 $MLP "$D/evil.src"
check "local expansion of 1.0.0" "$TOOL" expand "$D/net-1.0.0.src" "$D/local-1.0.0.st"

# ---- the registry ------------------------------------------------------------------------
DB=$D/reg.db
run "pemnd key add alice" 0 "$S" --db "$DB" key add "$D/alice.pub" --name alice
run "pemnd token create publish" 0 "$S" --db "$DB" token create --scope publish --name ci
PUB=$(tail -1 "$D/out")
run "pemnd token create read" 0 "$S" --db "$DB" token create --scope read --name reader
READ=$(tail -1 "$D/out")
# free_port can race with other jobs on the machine: try a few ports
UP=0
for _ in 1 2 3 4 5; do
    PORT=$(free_port)
    URL=http://127.0.0.1:$PORT
    "$S" --db "$DB" --listen "127.0.0.1:$PORT" >"$D/pemnd.log" 2>&1 &
    SPID=$!
    T_PIDS+=("$SPID")
    if wait_http "$URL/v1/health" 10 && kill -0 "$SPID" 2>/dev/null; then
        UP=1
        break
    fi
    kill "$SPID" 2>/dev/null
done
if [ "$UP" = 1 ]; then pass "pemnd up"; else
    fail "pemnd up" "$(tail -5 "$D/pemnd.log")"
    exit 1
fi

# ---- push --------------------------------------------------------------------------------
run "push 1.0.0" 0 "$P" push --server "$URL" --token "$PUB" "$D/net-1.0.0.src"
has "push says pushed" "$D/out" "^net 1.0.0 \(release 1\): pushed"
run "re-push is harmless" 0 "$P" push --server "$URL" --token "$PUB" "$D/net-1.0.0.src"
has "re-push says already present" "$D/out" "already present"
run "push without a token -> 10" 10 env -u PEMN_TOKEN "$P" push --server "$URL" \
    "$D/net-1.1.0.src"
run "push with a read token -> 10" 10 "$P" push --server "$URL" --token "$READ" \
    "$D/net-1.1.0.src"
run "push of an untrusted signer -> 5" 5 "$P" push --server "$URL" --token "$PUB" "$D/evil.src"
has "untrusted push names the reason" "$D/err" "untrusted"
printf 'not a package' >"$D/junk.src"
run "push of junk -> 3" 3 "$P" push --server "$URL" --token "$PUB" "$D/junk.src"
# PEMN_SERVER / PEMN_TOKEN from the environment, --json
run "push 1.1.0 from env, --json" 0 env PEMN_SERVER="$URL" PEMN_TOKEN="$PUB" "$P" push --json \
    "$D/net-1.1.0.src"
has "push --json created" "$D/out" '"created": ?true'
has "push --json digest" "$D/out" '"digest": ?"sha256:[0-9a-f]{64}"'

# ---- ls and tag --------------------------------------------------------------------------
run "ls" 0 "$P" ls --server "$URL"
has "ls shows net at 1.1.0" "$D/out" "^net +1\.1\.0 +2 +2 "
run "ls --json" 0 env PEMN_SERVER="$URL" "$P" ls --json
has "ls --json" "$D/out" '"models": ?\[\{"name": ?"net"'
run "tag stable -> 1.0.0" 0 "$P" tag --server "$URL" --token "$PUB" net 1.0.0 stable
has "tag prints the target" "$D/out" "net@stable -> 1\.0\.0"
run "tag without a token -> 10" 10 env -u PEMN_TOKEN "$P" tag --server "$URL" net 1.1.0 beta
run "tag of an unknown version -> 6" 6 "$P" tag --server "$URL" --token "$PUB" net 9.9 beta
run "ls net" 0 "$P" ls --server "$URL" net
has "ls net lists 1.1.0 first" "$D/out" "^1\.1\.0 "
has "ls net shows the tag" "$D/out" "^1\.0\.0 .* stable"
run "ls of an unknown model -> 6" 6 "$P" ls --server "$URL" nosuch

# ---- pull --------------------------------------------------------------------------------
run "pull net:1.0.0" 0 "$P" pull --server "$URL" --trust "$D/alice.pub" --out "$D/a.pemn" \
    net:1.0.0
check "pulled bytes are the pushed bytes" cmp -s "$D/a.pemn" "$D/net-1.0.0.src"
has "pull summary" "$D/err" "net 1\.0\.0 \(release 1\): .*verified, installed"
absent "no .part left" "$D/a.pemn.part"
run "pull net@stable --expand" 0 "$P" pull --server "$URL" --trust "$D/alice.pub" \
    --out "$D/b.pemn" --expand "$D/b.st" net@stable
check "tag resolves to 1.0.0" cmp -s "$D/b.pemn" "$D/net-1.0.0.src"
check "pull --expand equals local expansion" cmp -s "$D/b.st" "$D/local-1.0.0.st"
run "pull into folders that do not exist yet" 0 "$P" pull --server "$URL" \
    --trust "$D/alice.pub" --out "$D/new/dev/m.pemn" --expand "$D/other/m.st" net@stable
check "created --out folder holds the package" cmp -s "$D/new/dev/m.pemn" "$D/net-1.0.0.src"
check "created --expand folder holds the expansion" cmp -s "$D/other/m.st" "$D/local-1.0.0.st"
: >"$D/blocker"
run "a file where --out's folder should be -> error" 1 "$P" pull --server "$URL" \
    --trust "$D/alice.pub" --out "$D/blocker/m.pemn" net@stable
has "says which path is not a folder" "$D/err" "blocker"
if "$P" expand --help >/dev/null 2>&1; then
    run "pemn expand of the original" 0 "$P" expand "$D/net-1.0.0.src" --out "$D/c.st" \
        --trust "$D/alice.pub"
    check "pull --expand equals pemn expand" cmp -s "$D/b.st" "$D/c.st"
fi
(cd "$D" && "$P" pull --server "$URL" --trust "$D/alice.pub" --quiet net) >"$D/out" 2>"$D/err"
check_eq "pull latest exits 0" 0 $?
check "latest is 1.1.0, default name" cmp -s "$D/net-1.1.0.pemn" "$D/net-1.1.0.src"
check_eq "--quiet prints nothing" "" "$(cat "$D/out" "$D/err")"
run "pull --json" 0 "$P" pull --server "$URL" --trust "$D/alice.pub" --out "$D/j.pemn" --json \
    --no-cache net:1.1.0
has "pull --json counts bytes" "$D/out" "\"bytes_received\": ?$(stat -c %s "$D/net-1.1.0.src")"

# the progress bar: drawn on a terminal, never into a pipe or a file
run "pull with stderr to a file" 0 "$P" pull --server "$URL" --trust "$D/alice.pub" --no-cache \
    --out "$D/nt.pemn" net:1.1.0
if ! grep -q '%' "$D/err" && ! grep -q 'ETA' "$D/err"; then pass "no progress bar when not a TTY"; else
    fail "no progress bar when not a TTY" "$(head -c 200 "$D/err")"
fi
if command -v script >/dev/null; then
    script -qec "$P pull --server $URL --trust $D/alice.pub --no-cache --out $D/tty.pemn net:1.1.0" \
        /dev/null >"$D/tty.out" 2>&1
    has "progress bar on a TTY" "$D/tty.out" "100%.*B/s"
    script -qec "$P pull --quiet --server $URL --trust $D/alice.pub --no-cache --out $D/tty2.pemn net:1.1.0" \
        /dev/null >"$D/tty.out" 2>&1
    check_eq "--quiet on a TTY prints nothing" "" "$(tr -d '\r\n' <"$D/tty.out")"
fi

# refusals leave nothing behind
run "untrusted signer -> 5" 5 "$P" pull --server "$URL" --trust "$D/mallory.pub" \
    --out "$D/u.pemn" net:1.0.0
has "untrusted is explained" "$D/err" "not trusted"
absent "nothing installed after untrusted" "$D/u.pemn" "$D/u.pemn.part"
cp "$D/net-1.1.0.src" "$D/keep.pemn"
run "untrusted leaves an existing file alone" 5 "$P" pull --server "$URL" \
    --trust "$D/mallory.pub" --out "$D/keep.pemn" net:1.0.0
check "existing file unchanged" cmp -s "$D/keep.pemn" "$D/net-1.1.0.src"
run "rollback refused -> 9" 9 "$P" pull --server "$URL" --trust "$D/alice.pub" \
    --out "$D/r.pemn" --min-release 2 net@stable
absent "nothing installed after rollback" "$D/r.pemn" "$D/r.pemn.part"
run "unknown version -> 6" 6 "$P" pull --server "$URL" --trust "$D/alice.pub" \
    --out "$D/n.pemn" net:9.9.9
run "unknown tag -> 6" 6 "$P" pull --server "$URL" --trust "$D/alice.pub" --out "$D/n.pemn" \
    net@nosuch
run "missing trust file -> 6" 6 "$P" pull --server "$URL" --trust "$D/nonexistent.pub" net
has "missing trust file explained" "$D/err" "nonexistent.pub"

# environment and cache
run "pull via PEMN_SERVER/PEMN_TRUST/PEMN_CACHE" 0 env PEMN_SERVER="$URL" \
    PEMN_TRUST="$D/mallory.pub:$D/alice.pub" PEMN_CACHE="$D/cache" "$P" pull --json \
    --out "$D/e1.pemn" net:1.1.0
has "first pull downloads" "$D/out" '"from_cache": ?false'
check "cache holds the blob" test -s \
    "$D/cache/blobs/sha256/$(sha256sum "$D/net-1.1.0.src" | cut -c1-64)"
run "second pull from the cache" 0 env PEMN_SERVER="$URL" PEMN_TRUST="$D/alice.pub" \
    PEMN_CACHE="$D/cache" "$P" pull --json --out "$D/e2.pemn" net:1.1.0
has "second pull from cache" "$D/out" '"from_cache": ?true'
has "second pull: zero bytes" "$D/out" '"bytes_received": ?0[,}]'
check "cached copy is right" cmp -s "$D/e2.pemn" "$D/net-1.1.0.src"

# resume against pemnd's Range support: a .part left by an interrupted run
SZ=$(stat -c %s "$D/net-1.1.0.src")
head -c $((SZ / 2)) "$D/net-1.1.0.src" >"$D/res.pemn.part"
run "pull resumes a leftover .part" 0 "$P" pull --server "$URL" --trust "$D/alice.pub" \
    --no-cache --json --out "$D/res.pemn" net:1.1.0
has "resumed with Range" "$D/out" '"resumes": ?1[,}]'
has "only the rest was downloaded" "$D/out" "\"bytes_received\": ?$((SZ - SZ / 2))[,}]"
check "resumed package is right" cmp -s "$D/res.pemn" "$D/net-1.1.0.src"
absent "no .part after resume" "$D/res.pemn.part"
head -c 1000 "$D/net-1.0.0.src" >"$D/gar.pemn.part"
run "pull after a foreign .part" 0 "$P" pull --server "$URL" --trust "$D/alice.pub" \
    --no-cache --json --out "$D/gar.pemn" net:1.1.0
has "foreign .part: restarted from 0" "$D/out" '"restarts": ?1[,}]'
check "package right after restart" cmp -s "$D/gar.pemn" "$D/net-1.1.0.src"

# ---- the server goes away ----------------------------------------------------------------
kill "$SPID"
for _ in $(seq 1 50); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
start=$(date +%s)
run "server down -> 7" 7 "$P" pull --server "$URL" --trust "$D/alice.pub" --out "$D/d.pemn" \
    --timeout 5 --retries 3 net:1.0.0
check "server down fails within the deadline" test $(($(date +%s) - start)) -le 8
has "server down is explained" "$D/err" "gave up|deadline"
absent "nothing installed when down" "$D/d.pemn"
# Ctrl-C while retrying stops at once, cleanly
"$P" pull --server "$URL" --trust "$D/alice.pub" --out "$D/i.pemn" --retries 100 --timeout 60 \
    net:1.0.0 >"$D/out" 2>"$D/err" &
IPID=$!
sleep 1
t0=$(date +%s%N)
kill -INT "$IPID"
wait "$IPID"
check_eq "SIGINT exits 1" 1 $?
check "SIGINT stops within a second" test $((($(date +%s%N) - t0) / 1000000)) -lt 1000
has "SIGINT says canceled" "$D/err" "canceled"
absent "nothing installed after SIGINT" "$D/i.pemn"

t_done
