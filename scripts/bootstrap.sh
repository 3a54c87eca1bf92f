#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian 12 packages this project builds and tests with.
# Non-interactive; waits for the dpkg lock instead of failing when another apt runs.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  clang libclang-rt-14-dev          # libFuzzer + sanitizer runtimes
  libssl-dev libsodium-dev nlohmann-json3-dev
  catch2 libbenchmark-dev
  libstrophe-dev libotr5-dev tmux
  ejabberd curl openssl             # testserver/: the loopback XMPP server the demo and tests use
  profanity                         # the e2e tests drive the real client (in tmux) with the plugin
  python3 python3-cryptography python3-slixmpp  # tests/conformance: the independent Python member
  spin                              # spec/model/: the Promela model of shutdown (test spec.model)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "bootstrap: all packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0 -y -q)
echo "bootstrap: installing ${missing[*]}"
$SUDO apt-get "${APT_OPTS[@]}" update
$SUDO apt-get "${APT_OPTS[@]}" install --no-install-recommends "${missing[@]}"
