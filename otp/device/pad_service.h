// SPDX-License-Identifier: MIT
// What the daemon needs from the pad store, as an interface: the RPC core is tested without
// pad files, and the store adapter (store_service.cpp) is the only code that knows PadStore.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include "mpotr/bytes.h"
#include "mpotr/otp/packet.h"
#include "mpotr/result.h"

namespace mpotr::otp::device {

struct ContactStatus {
  std::string contact;
  std::uint64_t send_remaining = 0;     // pad bytes left for our messages to the contact
  std::uint64_t receive_remaining = 0;  // pad bytes left for the contact's messages to us
  std::string health = "healthy";       // "healthy", "exhausted" or "halted" (fail closed: never sends)
};

struct Packaged {
  Bytes packet;
  std::uint64_t offset = 0;     // region start in the pad (also in the packet header)
  std::uint64_t pad_bytes = 0;  // region length
};

// One message to several contacts: one pairwise packet each, all carrying the same group
// context (a random group message id and the full recipient set, sender included).
struct GroupPackaged {
  GroupContext group;
  std::vector<std::pair<std::string, Packaged>> copies;  // by contact, in the order asked
};

struct Unpackaged {
  SecretBytes message;
  MessageType type = MessageType::Chat;
  std::uint64_t seq = 0;
  std::optional<GroupContext> group;  // type Group only
  std::uint64_t offset = 0;
  std::uint64_t pad_bytes = 0;
  std::vector<std::string> warnings;  // e.g. "skipped_offset" (also written to the anomaly log)
};

class PadService {
 public:
  virtual ~PadService() = default;
  // Our own id (for the confirmation prompt).
  virtual std::string me() const = 0;
  virtual Result<std::vector<std::string>> contacts() = 0;
  virtual Result<ContactStatus> status(const std::string& contact) = 0;
  // Pad bytes a message of this length would consume (asked before the confirmation prompt).
  virtual Result<std::uint64_t> package_cost(const std::string& contact, std::size_t message_len) = 0;
  // Must be durable before returning: a packet returned here never shares pad with another.
  virtual Result<Packaged> package(const std::string& contact, ByteView message) = 0;
  // Pad bytes each contact's copy of a group message would consume, checked for ALL contacts
  // before anything is used: an error names the first contact that cannot be served.
  virtual Result<std::vector<std::uint64_t>> group_cost(const std::vector<std::string>& to,
                                                        std::size_t message_len) = 0;
  // All-or-nothing as far as pad is concerned: every copy is pre-checked, then packaged (an I/O
  // failure part-way burns the pad of the copies made, never reuses it).
  virtual Result<GroupPackaged> package_group(const std::vector<std::string>& to, ByteView message) = 0;
  virtual Result<Unpackaged> unpackage(const std::string& contact, ByteView packet) = 0;
};

}  // namespace mpotr::otp::device
