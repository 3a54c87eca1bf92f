#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the XMPP demo against an existing build: starts a private ejabberd on loopback
# (testserver/), registers alice, bob, carol and dave with random passwords, creates the room,
# gives alice, bob and carol one-time pads (one per pair, mpotr-pad) served by their own pad
# devices (mpotr-padd; dave has none), runs tools/mpotr-xmpp-demo (which drives four mpotr-chat
# processes) and stops the server and the devices, whatever happens. Used by scripts/demo.sh and by the e2e CTest.
#   scripts/xmpp-demo.sh BUILD_DIR
# Knobs (environment): MPOTR_DEMO_C2S_PORT (default 25222), MPOTR_DEMO_HTTP_PORT (default
# 25280); taken ports are skipped in steps of 10.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:?usage: scripts/xmpp-demo.sh BUILD_DIR}"
MPOTR_SCRIPT=xmpp-demo.sh
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"

CHAT="$BUILD/transport/chat/mpotr-chat"
DRIVER="$BUILD/tools/mpotr-xmpp-demo"
PAD="$BUILD/otp/device/mpotr-pad"
PADD="$BUILD/otp/device/mpotr-padd"
SERVER="$ROOT/testserver/ejabberd-test"
[ -x "$CHAT" ] || die "$CHAT is missing: build the mpotr-chat target first"
[ -x "$DRIVER" ] || die "$DRIVER is missing: build the mpotr-xmpp-demo target first"
[ -x "$PAD" ] && [ -x "$PADD" ] || die "$PAD or $PADD is missing: build the mpotr-pad and mpotr-padd targets first"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/mpotr-demo.XXXXXX")"
PADD_PIDS=()
cleanup() {
  for pid in "${PADD_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  "$SERVER" stop --dir "$WORK/server" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

banner "ejabberd on loopback (testserver/)"
c2s="${MPOTR_DEMO_C2S_PORT:-25222}"
http="${MPOTR_DEMO_HTTP_PORT:-25280}"
started=0
for attempt in 1 2 3 4 5; do
  set +e
  "$SERVER" start --dir "$WORK/server" --c2s-port "$c2s" --http-port "$http" --owner-pid $$
  rc=$?
  set -e
  if [ "$rc" -eq 0 ]; then started=1; break; fi
  [ "$rc" -eq 3 ] || die "ejabberd did not start (see above)"
  note "port $c2s or $http is in use (attempt $attempt); trying the next pair"
  c2s=$((c2s + 10))
  http=$((http + 10))
done
[ "$started" -eq 1 ] || die "no free port pair for ejabberd"
users=()
for u in alice bob carol dave; do
  mkdir -m 700 "$WORK/$u"
  pw="$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  (umask 077 && printf '%s\n' "$pw" >"$WORK/$u/password")
  users+=("$u" "$pw")
done
"$SERVER" register --dir "$WORK/server" "${users[@]}"
"$SERVER" create-room --dir "$WORK/server" demo

banner "one-time pads: alice, bob and carol each share a 1 MiB pad with the other two"
for pair in "alice bob" "alice carol" "bob carol"; do
  set -- $pair
  "$PAD" generate --me "$1@localhost" --peer "$2@localhost" --size 1M \
    --out "$WORK/$1/pads" --peer-out "$WORK/$2/pads" 2>/dev/null >/dev/null \
    || die "mpotr-pad generate $1 $2 failed"
done
for u in alice bob carol; do
  mkdir -m 700 "$WORK/$u/run"
  "$PADD" --dir "$WORK/$u/pads" --socket "$WORK/$u/run/padd.sock" --owner-pid $$ \
    --anomaly-log "$WORK/$u/padd-anomalies.log" >"$WORK/$u/padd.out" 2>&1 &
  PADD_PIDS+=("$!")
done
for u in alice bob carol; do
  for _ in $(seq 100); do
    grep -q "mpotr-padd ready" "$WORK/$u/padd.out" 2>/dev/null && break
    sleep 0.1
  done
  grep -q "mpotr-padd ready" "$WORK/$u/padd.out" || die "$u's pad device did not start: $(cat "$WORK/$u/padd.out")"
done
note "pad devices ready: $WORK/{alice,bob,carol}/run/padd.sock"

banner "demo: four mpotr-chat clients in demo@conference.localhost"
"$DRIVER" --chat "$CHAT" --port "$c2s" --room demo@conference.localhost --workdir "$WORK"

banner "stopping ejabberd"
