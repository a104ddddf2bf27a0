#!/usr/bin/env bash
# Hardening item 6: `pemnd key add` refuses a name that is (or could be taken for) another
# key's id, and `key remove X` removes exactly one key, never every key whose name or id is X.
. "$(dirname "$0")/lib.sh"
PEMND_DB=$(pemnd_db "$T_TMP") || { fail "database"; exit 1; }
export PEMND_DB
K="$T_TMP/k"
"$PEMN_MKPKG" keygen "$K.a" >/dev/null && "$PEMN_MKPKG" keygen "$K.b" >/dev/null &&
    "$PEMN_MKPKG" keygen "$K.c" >/dev/null || { fail "keygen"; exit 1; }
adm() { "$PEMND_BIN" --db "$PEMND_DB" "$@"; }
ida=$(adm key add "$K.a.pub" --name alice | sed -n 's/^trusted key \([0-9a-f]*\).*/\1/p')
check "key a added" test -n "$ida"
adm key add "$K.b.pub" --name "$ida" >"$T_TMP/out" 2>"$T_TMP/err"
check_eq "key add: a name equal to another key's id is refused" 2 "$?"
check_eq "the refused key is not stored" 1 "$(adm key list | grep -c .)"
adm key add "$K.b.pub" --name 0123456789abcdef >/dev/null 2>&1
check_eq "key add: a name shaped like a key id is refused (usage)" 2 "$?"
check "key b added under a plain name" adm key add "$K.b.pub" --name bob
idb=$(adm key list | awk '/bob/ {print $1}')
# a database written by an older pemnd may already hold a name equal to another key's id
db_sql "$PEMND_DB" "UPDATE keys SET name = '$ida' WHERE id = '$idb'"
adm key remove "$ida" >"$T_TMP/out" 2>"$T_TMP/err"
check_eq "key remove of an ambiguous name/id is refused (conflict)" 11 "$?"
check "the refusal says it is ambiguous" grep -q "ambiguous" "$T_TMP/err"
check_eq "both keys are still trusted" 2 "$(db_sql "$PEMND_DB" 'SELECT count(*) FROM keys')"
check "key remove by exact id works" adm key remove "$idb"
check_eq "only that key went" "$ida" "$(db_sql "$PEMND_DB" 'SELECT id FROM keys')"
check "key c added as carol" adm key add "$K.c.pub" --name carol
check "key remove by name" adm key remove carol
check "key remove by id" adm key remove "$ida"
check_eq "no keys left" 0 "$(db_sql "$PEMND_DB" 'SELECT count(*) FROM keys')"
t_done
