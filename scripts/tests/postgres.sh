#!/usr/bin/env bash
# Tests of scripts/postgres and scripts/test themselves (run by .ci/run, before the suite):
#   1. in a clone of this repository inside a mode-700 directory (as root, the `postgres` user
#      cannot enter it, like a clone in /root), `scripts/postgres start` succeeds, prints the
#      three exports, and the server answers at the printed URL; `stop` stops it;
#   2. when PostgreSQL cannot start (its port is taken), `scripts/test` exits non-zero with
#      PostgreSQL's own message, before any `cargo test` starts.
# The clone gets this working tree's scripts/ so uncommitted changes are what is tested.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo="$PWD"
port="${CALLWAY_SCRIPTS_TEST_PORT:-54339}"
failures=0

ok() { echo "ok   - $1"; }
not_ok() { echo "FAIL - $1" >&2; failures=$((failures + 1)); }

top="$(mktemp -d)"        # mode 700, owned by whoever runs this
blocker_pid=""
cleanup() {
    [ -n "$blocker_pid" ] && kill "$blocker_pid" 2>/dev/null || true
    if [ -x "$top/clone/scripts/postgres" ]; then
        CALLWAY_PG_PORT="$port" "$top/clone/scripts/postgres" stop >/dev/null 2>&1 || true
        # As root the clone's cluster lives outside it, in /var/tmp: leave nothing behind.
        cluster="$("$top/clone/scripts/postgres" dir)"
        case "$cluster" in /var/tmp/callway-pgtest-*) rm -rf "$cluster" ;; esac
    fi
    rm -rf "$top"
}
trap cleanup EXIT
[ "$(stat -c %a "$top")" = 700 ] || { echo "mktemp -d did not make a mode-700 directory" >&2; exit 1; }

git clone --quiet --no-hardlinks "$repo" "$top/clone"
rm -rf "$top/clone/scripts"
cp -a "$repo/scripts" "$top/clone/scripts"

# --- 1. start in an unreachable checkout -----------------------------------------------------
if out="$(CALLWAY_PG_PORT="$port" "$top/clone/scripts/postgres" start 2>"$top/start.err")"; then
    ok "scripts/postgres start succeeds in a clone under a mode-700 directory"
else
    not_ok "scripts/postgres start failed in a clone under a mode-700 directory:"
    cat "$top/start.err" >&2
fi
for name in CALLWAY_TEST_DATABASE_URL CALLWAY_PG_BIN CALLWAY_PG_CLUSTER_DIR; do
    if grep -q "^export $name=." <<<"$out"; then ok "prints export $name"; else not_ok "no export $name in: $out"; fi
done
url="$(sed -n 's/^export CALLWAY_TEST_DATABASE_URL=//p' <<<"$out")"
bin="$(sed -n 's/^export CALLWAY_PG_BIN=//p' <<<"$out")"
if [ -n "$bin" ] && [ -n "$url" ] && "$bin/pg_isready" -q -d "$url"; then
    ok "the server answers at $url"
else
    not_ok "no server answering at '$url'"
fi
private="$(sed -n 's/^export CALLWAY_PG_CLUSTER_DIR=//p' <<<"$out")"
if [ "$(id -u)" = 0 ] && [ -n "$private" ]; then
    if runuser -u postgres -- test -w "$private"; then ok "the private-cluster directory is the postgres user's"; else not_ok "postgres cannot write $private"; fi
fi
CALLWAY_PG_PORT="$port" "$top/clone/scripts/postgres" stop
if [ -n "$bin" ] && ! "$bin/pg_isready" -q -d "$url"; then ok "scripts/postgres stop stops it"; else not_ok "still answering after stop"; fi

# --- 2. a start failure stops scripts/test before cargo -------------------------------------
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT; still exclusive
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); print("ready", flush=True); time.sleep(600)
' "$port" >"$top/blocker.out" &
blocker_pid=$!
for _ in $(seq 50); do grep -q ready "$top/blocker.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$top/blocker.out" || { echo "could not occupy 127.0.0.1:$port for the failure test" >&2; exit 1; }
mkdir "$top/fakebin"
printf '#!/bin/sh\necho "cargo $*" >>"%s/cargo.calls"\n' "$top" >"$top/fakebin/cargo"
chmod +x "$top/fakebin/cargo"
set +e
PATH="$top/fakebin:$PATH" CALLWAY_PG_PORT="$port" "$top/clone/scripts/test" >"$top/test.out" 2>"$top/test.err"
status=$?
set -e
if [ "$status" != 0 ]; then ok "scripts/test exits non-zero ($status) when PostgreSQL cannot start"; else not_ok "scripts/test exited 0 with its port taken"; fi
if grep -q "Address already in use" "$top/test.err"; then ok "with PostgreSQL's own message"; else not_ok "PostgreSQL's message missing from: $(cat "$top/test.err")"; fi
if grep -q "PostgreSQL could not be started" "$top/test.err"; then ok "and says no test was run"; else not_ok "scripts/test's own line missing"; fi
if [ ! -e "$top/cargo.calls" ]; then ok "no cargo command was started"; else not_ok "cargo was run: $(cat "$top/cargo.calls")"; fi

if [ "$failures" != 0 ]; then echo "$failures check(s) failed" >&2; exit 1; fi
echo "all scripts checks passed"
