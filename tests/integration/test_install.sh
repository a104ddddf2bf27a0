#!/usr/bin/env bash
# make install into a staging root, then build a program against the installed headers and
# pemn.pc, linked once against libpemn.so and once against libpemn.a (its dependencies
# dynamically: Debian ships no static libcurl dependencies), and run both.
. "$(dirname "$0")/lib.sh"
cd "$PEMN_ROOT" || exit 1
ROOT="$T_TMP/root"
variant=$(basename "$BUILD")

if make -s --no-print-directory VARIANT="$variant" install DESTDIR="$ROOT" PREFIX=/usr \
    >"$T_TMP/install.log" 2>&1; then
    pass "make install succeeds"
else
    fail "make install succeeds" "$(tail -5 "$T_TMP/install.log")"
    exit 1
fi

for f in usr/include/pemn/pemn.h usr/include/pemn/pkg.h usr/lib/libpemn.a \
    usr/lib/pkgconfig/pemn.pc usr/bin/pemn usr/bin/pemnd; do
    if [ -e "$ROOT/$f" ]; then pass "installed $f"; else fail "installed $f"; fi
done
if [ -L "$ROOT/usr/lib/libpemn.so" ] && [ -f "$ROOT/usr/lib/$(readlink "$ROOT/usr/lib/libpemn.so")" ]; then
    pass "libpemn.so symlink resolves"
else
    fail "libpemn.so symlink resolves"
fi

cat >"$T_TMP/prog.c" <<'C'
#include <pemn/pemn.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
    uint8_t d[PEMN_DIGEST_BYTES];
    char txt[PEMN_DIGEST_TEXT_MAX];
    pemn_sha256("abc", 3, d);
    pemn_digest_format(d, txt);
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    if (pemn_key_generate(&sk, &pk) != PEMN_OK)
        return 1;
    pemn_builder *b = NULL;
    if (pemn_builder_new("net", "1.0", 1, &b, NULL) != PEMN_OK)
        return 1;
    float proto[3] = {1, 2, 3};
    uint32_t id;
    uint64_t shape[1] = {5};
    uint8_t mask[5] = {1, 0, 1, 1, 0};
    uint8_t *buf = NULL;
    size_t len = 0;
    if (pemn_builder_add_proto_values(b, proto, 3, &id) || pemn_builder_add_masked(b, "w", 1, shape, id, 0, 1.0f, mask, NULL) ||
        pemn_builder_finish(b, &sk, &buf, &len, NULL))
        return 1;
    pemn_builder_free(b);
    pemn_pkg *p = NULL;
    if (pemn_pkg_open_mem(buf, len, 0, &p, NULL) != PEMN_OK)
        return 1;
    float out[5];
    if (pemn_pkg_expand(p, 0, out, 5, NULL) != PEMN_OK)
        return 1;
    printf("%s %g %g %g %g %g\n", txt + 7 + 60, out[0], out[1], out[2], out[3], out[4]);
    pemn_pkg_free(p);
    free(buf);
    pemn_seckey_wipe(&sk);
    return 0;
}
C
export PKG_CONFIG_PATH="$ROOT/usr/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$ROOT"
check "pkg-config knows pemn" pkg-config --exists pemn
expect="15ad 1 0 3 1 0"
# shellcheck disable=SC2046
if cc -std=c11 -Wall -Werror -include stdlib.h -o "$T_TMP/prog_shared" "$T_TMP/prog.c" \
    $(pkg-config --cflags --libs pemn) 2>"$T_TMP/cc1.log"; then
    pass "program compiles against installed headers and libpemn.so"
    out=$(LD_LIBRARY_PATH="$ROOT/usr/lib" "$T_TMP/prog_shared")
    check_eq "shared build runs and expands" "$expect" "$out"
    if LD_LIBRARY_PATH="$ROOT/usr/lib" ldd "$T_TMP/prog_shared" | grep -q 'libpemn.so.0 => '"$ROOT"; then
        pass "shared build uses libpemn.so.0"
    else
        fail "shared build uses libpemn.so.0"
    fi
else
    fail "program compiles against installed headers and libpemn.so" "$(head -5 "$T_TMP/cc1.log")"
fi
# shellcheck disable=SC2046
if cc -std=c11 -Wall -Werror -include stdlib.h -o "$T_TMP/prog_static" "$T_TMP/prog.c" \
    "$ROOT/usr/lib/libpemn.a" $(pkg-config --cflags pemn) \
    $(PKG_CONFIG_SYSROOT_DIR= pkg-config --libs libsodium jansson libcurl) -lm \
    2>"$T_TMP/cc2.log"; then
    pass "program links statically against libpemn.a"
    check_eq "static build runs and expands" "$expect" "$("$T_TMP/prog_static")"
else
    fail "program links statically against libpemn.a" "$(head -5 "$T_TMP/cc2.log")"
fi

# the web console: installed next to the binaries, found by the installed pemnd by default
check_eq "installed the console" "$(cd ui && ls | sort)" "$(cd "$ROOT/usr/share/pemn/ui" && ls | sort)"
PEMND_BIN="$ROOT/usr/bin/pemnd"
if pemnd_start "$T_TMP/srv"; then
    check_eq "installed pemnd serves its console" "$(sha256sum <ui/app.js)" \
        "$(curl -s "$PEMND_URL/ui/app.js" | sha256sum)"
else
    fail "installed pemnd starts" "$(tail -3 "$T_TMP/srv/pemnd.log")"
fi
t_done
