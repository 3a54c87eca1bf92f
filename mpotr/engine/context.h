// SPDX-License-Identifier: MIT
// What the per-attempt and per-session state machines need from the engine around them.
#pragma once

#include <string>
#include <vector>

#include "mpotr/engine.h"

namespace mpotr::detail {

struct Context {
  const EngineConfig& config;
  const IdentityKey& identity;
  const TrustStore* trust;
};

// Index of nick in a roster sorted by nick bytes, or -1.
int index_of(const std::vector<Member>& roster, std::string_view nick);

// The member index a message claims, checked against the roster and the transport's sender.
// Errors: NotAMember (index outside the roster), NickMismatch (someone else's index).
Result<std::uint8_t> check_sender(const std::vector<Member>& roster, std::string_view from_nick, std::uint8_t claimed);

Event make_event(EventKind kind, std::string nick = {});
Event rejected_event(const Error& error, std::string_view nick);

}  // namespace mpotr::detail
