#!/usr/bin/env bash
# scripts/demo as a newcomer runs it, checked (issue 18): the banner comes only once every
# service answers, `scripts/demo visit` plays a whole web visit with no copy-paste and follows
# the call's record to its end, and what every binary wrote (logs and printouts, to a file)
# holds no phone number, no stream token and no ANSI escape code.
#
#   CALLWAY_BIN_DIR=target/debug scripts/tests/demo.sh
#
# Uses the demo's fixed ports (8080-8082, 8443, 9090) and its state in target/demo (wiped).
# About 20 s with debug binaries. scripts/test runs it after deploy/check.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${CALLWAY_BIN_DIR:?set CALLWAY_BIN_DIR to a directory holding callway-control, callway-gateway and callway-sim}"
export CALLWAY_BIN_DIR

out="$(mktemp -d)"
demo_pid=""
stop() {
    if [ -n "$demo_pid" ]; then kill "$demo_pid" 2>/dev/null || true; wait "$demo_pid" 2>/dev/null || true; fi
    rm -rf "$out"
}
trap stop EXIT
fail() {
    echo "scripts/tests/demo.sh: FAIL $1" >&2
    echo "--- demo output (last 40 lines)" >&2
    tail -40 "$out/demo.log" >&2 || true
    exit 1
}

rm -rf target/demo
scripts/demo >"$out/demo.log" 2>&1 &
demo_pid=$!
for _ in $(seq 1 300); do
    grep -q 'every service answers' "$out/demo.log" && break
    kill -0 "$demo_pid" 2>/dev/null || fail "scripts/demo stopped before its banner"
    sleep 0.2
done
grep -q 'every service answers' "$out/demo.log" || fail "no banner within 60 s"

# Every service said it was listening before the banner.
banner_line="$(grep -n 'every service answers' "$out/demo.log" | cut -d: -f1)"
for started in 'control plane listening' 'callway_gateway: serving' 'OpenAI Realtime simulator on' 'Twilio REST simulator on'; do
    line="$(grep -n "$started" "$out/demo.log" | head -1 | cut -d: -f1)"
    [ -n "$line" ] && [ "$line" -lt "$banner_line" ] || fail "the banner came before \"$started\""
done
echo "scripts/tests/demo.sh: ok    the banner after every service's start-up line"

scripts/demo visit >"$out/visit.log" 2>&1 || { cat "$out/visit.log" >&2; fail "scripts/demo visit failed"; }
for step in 'save_lead' 'trigger_call' ' completed ' 'caller_hung_up' 'Timeline (UTC)' 'Dialogue' '] Agent: ' 'Camille Durand' '  the call:' 'tour(s) de parole'; do
    grep -q -- "$step" "$out/visit.log" || { cat "$out/visit.log" >&2; fail "scripts/demo visit did not show \"$step\""; }
done
echo "scripts/tests/demo.sh: ok    scripts/demo visit: session, save_lead, trigger_call, the call followed to its end"

# Give the simulators a moment to print the finished call's account, then stop everything so
# every line is on disk.
for _ in $(seq 1 50); do grep -q '^call CA' "$out/demo.log" && break; sleep 0.1; done
kill "$demo_pid"
wait "$demo_pid" 2>/dev/null || true
demo_pid=""
if leaks="$(grep -nE '612345678|159000000|v1\.[A-Za-z0-9_-]{70}\.' "$out/demo.log" "$out/visit.log" | cut -c1-200)"; then
    fail "a phone number or a stream token in clear: $leaks"
fi
if grep -q $'\x1b\\[' "$out/demo.log" "$out/visit.log"; then
    fail "ANSI escape codes in output written to a file"
fi
grep -q 'stream token redeemed.*call_sid="CA' "$out/demo.log" || fail "the 'stream token redeemed' line has no call_sid"
echo "scripts/tests/demo.sh: ok    no phone number, stream token or escape code in $(wc -l <"$out/demo.log") lines of output; call_sid on the redeem line"
