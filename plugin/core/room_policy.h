// SPDX-License-Identifier: MIT
// The rooms where the user chose "verified only" (/mpotr policy verified), kept across runs
// so that a restart never silently widens who is admitted: one bare room JID per line.
#pragma once

#include <cstddef>
#include <set>
#include <string>

#include "mpotr/result.h"

namespace mpotr::plugin {

// Most rooms the file may name, and the longest line (a bare JID: localpart@domain).
inline constexpr std::size_t kMaxPolicyRooms = 1024;
inline constexpr std::size_t kMaxPolicyRoomLen = 2048;

using RoomSet = std::set<std::string, std::less<>>;

// A missing file is the empty set. Errors: Storage (unsafe or unreadable file),
// InvalidArgument (a line that is not a bare JID, too many or too long lines) — the caller
// keeps the file as it is and says so.
Result<RoomSet> load_verified_rooms(const std::string& path);
// Replaces the file atomically (mode 0600). Errors: LimitExceeded, Storage.
Result<void> save_verified_rooms(const std::string& path, const RoomSet& rooms);

}  // namespace mpotr::plugin
