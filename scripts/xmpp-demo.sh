#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the XMPP demo against an existing build: starts a private ejabberd on loopback
# (testserver/), registers alice, bob, carol and dave with random passwords, creates the room,
# runs tools/mpotr-xmpp-demo (which drives four mpotr-chat processes) and stops the server,
# whatever happens. Used by scripts/demo.sh and by the e2e CTest.
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
SERVER="$ROOT/testserver/ejabberd-test"
[ -x "$CHAT" ] || die "$CHAT is missing: build the mpotr-chat target first"
[ -x "$DRIVER" ] || die "$DRIVER is missing: build the mpotr-xmpp-demo target first"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/mpotr-demo.XXXXXX")"
cleanup() {
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

banner "demo: four mpotr-chat clients in demo@conference.localhost"
"$DRIVER" --chat "$CHAT" --port "$c2s" --room demo@conference.localhost --workdir "$WORK"

banner "stopping ejabberd"
