// SPDX-License-Identifier: MIT
#include "plugin/core/room_policy.h"

#include "mpotr/store/atomic_file.h"

namespace mpotr::plugin {

namespace {

bool is_bare_jid(std::string_view s) {
  const auto at = s.find('@');
  return !s.empty() && s.size() <= kMaxPolicyRoomLen && at != std::string_view::npos && at > 0 && at + 1 < s.size() &&
         s.find_first_of("/ \t\r") == std::string_view::npos && s.find('@', at + 1) == std::string_view::npos;
}

}  // namespace

Result<RoomSet> load_verified_rooms(const std::string& path) {
  // Each line plus its newline, for the most rooms allowed.
  constexpr std::size_t kMaxFileLen = kMaxPolicyRooms * (kMaxPolicyRoomLen + 1);
  MPOTR_TRY(auto text, store::read_private_file_if_exists(path, kMaxFileLen, "room policy file"));
  RoomSet rooms;
  if (!text) return rooms;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < text->size()) {
    const auto end = text->find('\n', pos);
    const std::string_view line = std::string_view(*text).substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    pos = end == std::string::npos ? text->size() : end + 1;
    ++line_no;
    if (line.empty()) continue;
    if (!is_bare_jid(line)) {
      return Error{ErrorCode::InvalidArgument, path + " line " + std::to_string(line_no) + " is not a room's bare JID"};
    }
    if (rooms.size() == kMaxPolicyRooms) {
      return Error{ErrorCode::InvalidArgument, path + " names more than " + std::to_string(kMaxPolicyRooms) + " rooms"};
    }
    rooms.emplace(line);
  }
  return rooms;
}

Result<void> save_verified_rooms(const std::string& path, const RoomSet& rooms) {
  if (rooms.size() > kMaxPolicyRooms) {
    return Error{ErrorCode::LimitExceeded, "at most " + std::to_string(kMaxPolicyRooms) + " rooms can be verified-only"};
  }
  std::string text;
  for (const auto& r : rooms) {
    if (!is_bare_jid(r)) return Error{ErrorCode::InvalidArgument, "'" + r.substr(0, 64) + "' is not a room's bare JID"};
    text += r + "\n";
  }
  return store::write_file_atomic(path, as_bytes(text));
}

}  // namespace mpotr::plugin
