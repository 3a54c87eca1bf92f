// SPDX-License-Identifier: MIT
// OTP mode in an mpOTR room (spec/otp.md §10), shared by mpotr-chat and the Profanity plugin.
// Sending: a line becomes one pairwise OTP packet per other member, made by the pad device
// and carried as one bundle inside the room's mpOTR session. Receiving: bundles in the notices
// RoomHost produces are opened through the device and rewritten as OTP messages.
// Sans-I/O apart from the PadDevice it is given (whose calls may block).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "mpotr/otp/pad_device.h"
#include "mpotr/transport/room_host.h"

namespace mpotr::otp {

// Below this many pad bytes left with a member, every check warns that the pad runs low.
inline constexpr std::uint64_t kLowPadBytes = 64 * 1024;
// Message length used to say "about N messages left".
inline constexpr std::size_t kTypicalMessageLen = 100;
inline constexpr std::size_t kMaxAliases = 32;
inline constexpr std::size_t kMaxAliasNameLen = 32;
// Own bundles remembered until their "sent" notice shows our text instead.
inline constexpr std::size_t kMaxPendingOwn = 64;

// A named subset of the room (One Time Chat's group alias): an OTP message to it is readable
// by those members only; the others see that it was sent, and to whom.
struct Alias {
  std::string name;
  std::vector<std::string> jids;  // sorted bare JIDs, never ours
};

struct PadReport {
  std::vector<transport::Notice> notices;  // one per member, plus a summary
  bool can_send = false;                   // every other member has a usable pad with room to spare
};

class OtpRoomMode {
 public:
  explicit OtpRoomMode(PadDevice* device = nullptr) : m_device(device) {}
  void set_device(PadDevice* device) noexcept { m_device = device; }
  bool has_device() const noexcept { return m_device != nullptr; }
  bool enabled() const noexcept { return m_enabled; }

  // Turns OTP sending on after checking the pads with every member of the current session (if
  // there is one). Errors (nothing changes): InvalidState without a device, the device's errors.
  Result<PadReport> enable(const transport::RoomHost& host);
  void disable() noexcept { m_enabled = false; }
  // What the device has for the other members of the current session.
  Result<PadReport> check(const transport::RoomHost& host);

  // The text to hand to RoomHost::send_text for `text` to every other member, or to an alias.
  // Every error means nothing was sent and no pad was used (except the device's own I/O
  // errors part-way): NotReady (no session, nobody else), InvalidState (no device, unusable
  // pad), InvalidArgument (no pad with a member, unknown alias, alias member not in the
  // session, device holding pads for another id), LimitExceeded (pad too low, text too long).
  Result<std::string> seal(const transport::RoomHost& host, std::string_view text, std::string_view alias = {});

  // Rewrites a batch of RoomHost notices in place: our bundles' "sent" notices become
  // "otp_sent" with our text; received bundles become "otp_message", "otp_not_for_you" or
  // "otp_failed" (with the reason), followed by any warnings. Other notices are untouched.
  void rewrite(const transport::RoomHost& host, std::vector<transport::Notice>& notices);

  // members: nicks of the current session or bare JIDs. Replaces an alias of the same name.
  // Errors: InvalidArgument (name, unknown nick, our own id, duplicates), LimitExceeded.
  Result<void> define_alias(const transport::RoomHost& host, std::string name, const std::vector<std::string>& members);
  Result<void> remove_alias(std::string_view name);
  const std::vector<Alias>& aliases() const noexcept { return m_aliases; }

 private:
  struct Pending {
    std::string bundle_text;
    std::string text;
    std::vector<std::string> recipients;
  };
  void open_received(const transport::RoomHost& host, transport::Notice& n, std::vector<transport::Notice>& extra);

  PadDevice* m_device;
  bool m_enabled = false;
  std::vector<Alias> m_aliases;
  std::deque<Pending> m_pending;
};

}  // namespace mpotr::otp
