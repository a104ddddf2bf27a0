#!/usr/bin/env bash
# The house rules that a machine can check (DEVELOPERS.md, ../shared/CONVENTIONS.md):
# clang-format clean, no banned C functions in the product code, no file past 1,500 lines,
# libpemn.so exports only the public pemn_* API, every public header compiles on its own,
# every `pemn` command answers --help.
. "$(dirname "$0")/lib.sh"
cd "$PEMN_ROOT" || exit 1
mapfile -t SRC < <(git ls-files '*.c' '*.h')
[ "${#SRC[@]}" -gt 50 ] || { fail "tracked C sources found" "${#SRC[@]}"; exit 1; }

if command -v clang-format >/dev/null; then
    if clang-format --dry-run --Werror "${SRC[@]}" >"$T_TMP/fmt" 2>&1; then
        pass "clang-format clean (${#SRC[@]} files)"
    else
        fail "clang-format clean" "$(grep -m3 'error:' "$T_TMP/fmt")"
    fi
else
    fail "clang-format installed (deploy/install-deps.sh)"
fi

# curl's banned list: unbounded or error-blind functions. Tests may use them on fixed data.
banned='\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|atoll|atof|strtok)[[:space:]]*\('
hits=$(git ls-files 'proto/*' 'client/*' 'server/*' 'storage/*' 'train/*' 'cli/*' 'bench/*.c' |
    grep -E '\.(c|h)$' | xargs grep -nE "$banned" | grep -vE '^[^:]+:[0-9]+:\s*(/?\*|//)')
if [ -z "$hits" ]; then pass "no banned functions in product code"; else
    fail "no banned functions in product code" "$(echo "$hits" | head -3)"; fi

long=$(wc -l "${SRC[@]}" | awk '$2 != "total" && $1 > 1500 {print $2 " (" $1 ")"}')
if [ -z "$long" ]; then pass "no source file past 1,500 lines"; else
    fail "no source file past 1,500 lines" "$long"; fi

# the layering: a lower part never includes a header of a higher one
lay=$( (git ls-files 'proto/*.[ch]' | xargs grep -lE '#include "(client|server|storage|train|cli)/'
    git ls-files 'storage/*.[ch]' 'client/*.[ch]' 'train/*.[ch]' |
        xargs grep -lE '#include "(server|cli)/'
    git ls-files 'server/*.[ch]' | xargs grep -lE '#include "(client|cli|train)/') 2>/dev/null)
if [ -z "$lay" ]; then pass "includes follow the layering"; else
    fail "includes follow the layering" "$lay"; fi

SO="$BUILD/lib/libpemn.so"
if [ ! -e "$SO" ]; then make -s --no-print-directory VARIANT="$(basename "$BUILD")" lib >/dev/null 2>&1; fi
if [ -e "$SO" ]; then
    bad=$(nm -D --defined-only "$SO" | awk '$2 ~ /[TDBRW]/ {print $3}' | grep -v '^pemn_')
    if [ -z "$bad" ]; then pass "libpemn.so exports only pemn_*"; else
        fail "libpemn.so exports only pemn_*" "$(echo "$bad" | head -5 | tr '\n' ' ')"; fi
    check "libpemn.so exports the core API" bash -c "nm -D --defined-only '$SO' | grep -qw pemn_pkg_open_mem"
else
    fail "libpemn.so built"
fi

for h in include/pemn/*.h; do
    if printf '#include <%s>\nint main(void){return 0;}\n' "${h#include/}" |
        cc -std=c11 -Wall -Wextra -Werror -Iinclude -x c - -fsyntax-only 2>"$T_TMP/h.err"; then
        pass "header compiles alone: $h"
    else
        fail "header compiles alone: $h" "$(head -2 "$T_TMP/h.err")"
    fi
done

if [ -x "$PEMN_BIN" ]; then
    for c in $("$PEMN_BIN" --help | awk '/^commands:/{f=1;next} f && NF>=2 && /^  [a-z]/{print $1}'); do
        if "$PEMN_BIN" "$c" --help >"$T_TMP/h" 2>&1 && grep -qi usage "$T_TMP/h"; then
            pass "pemn $c --help"
        else
            fail "pemn $c --help"
        fi
    done
fi
t_done
