#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The project's demo command (README): installs the build dependencies (ejabberd included),
# builds mpotr-chat and the demo driver in build/ (the tree scripts/test.sh uses), starts a
# private ejabberd on loopback (testserver/), registers four users and runs real mpotr-chat
# clients in one room: alice, bob and carol set up a session and chat, dave joins (re-key),
# carol leaves (transcript check, key publication). It prints every member's decrypted view and
# a line of what the server relayed, then stops the server.
# Knobs (environment): JOBS, MPOTR_SKIP_BOOTSTRAP=1, and those of scripts/xmpp-demo.sh.
# The in-process demo (no server) is build/tools/mpotr-demo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MPOTR_SCRIPT=demo.sh
# shellcheck source=scripts/common.sh
source scripts/common.sh

banner "bootstrap (apt packages)"
bootstrap

banner "build (build/)"
configure_normal
cmake --build build -j "$JOBS" --target mpotr-chat mpotr-xmpp-demo mpotr-pad mpotr-padd \
  || die "building mpotr-chat, mpotr-xmpp-demo and the pad device failed (see the compiler output above)"

exec bash scripts/xmpp-demo.sh "$ROOT/build"
