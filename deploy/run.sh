#!/usr/bin/env bash
# `make run`: starts pemnd in the foreground on ./var/pemn.db, listening on 127.0.0.1:8080
# (override with PEMND_LISTEN=HOST:PORT, PEMND_DB=FILE; extra pemnd flags after --).
# Ctrl-C stops it gracefully. The demo (if present) is `make demo`.
set -euo pipefail
BUILD=${BUILD:-build/release}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PEMND=$ROOT/$BUILD/bin/pemnd
DB=${PEMND_DB:-$ROOT/var/pemn.db}
LISTEN=${PEMND_LISTEN:-127.0.0.1:8080}
[ -x "$PEMND" ] || { echo "run.sh: $PEMND not built (make all)" >&2; exit 1; }
mkdir -p "$(dirname "$DB")"
cat <<MSG
pemnd: http://$LISTEN  (database $DB)
  health:        curl http://$LISTEN/v1/health
  web console:   http://$LISTEN/ui/   (docs/CONSOLE.md)
  trust a key:   $BUILD/bin/pemnd --db $DB key add alice.pub --name alice
  publish token: $BUILD/bin/pemnd --db $DB token create --scope publish --name me
  push:          curl -X PUT -H "Authorization: Bearer \$TOKEN" --data-binary @net.pemn \\
                      http://$LISTEN/v1/models/net/versions/1.0.0
  API:           docs/API.md      offline demo: make demo      stop: Ctrl-C
MSG
exec "$PEMND" --db "$DB" --listen "$LISTEN" "$@"
