// SPDX-License-Identifier: MIT
// The pad device as a chat client sees it: it packages and unpackages, and never hands out
// pad bytes. In practice an RPC client of mpotr-padd (otp/device/rpc_pad_device.h); tests may
// use anything that keeps the same promises. Calls may block (the device may ask its owner).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mpotr/bytes.h"
#include "mpotr/otp/packet.h"
#include "mpotr/result.h"

namespace mpotr::otp {

struct DeviceContact {
  std::string contact;                  // the peer's id (bare JID)
  std::uint64_t send_remaining = 0;     // pad bytes left for our messages to them
  std::uint64_t receive_remaining = 0;  // pad bytes left for theirs to us
  std::string health = "healthy";       // "healthy", "exhausted", "halted"
};

struct DeviceStatus {
  std::string me;  // the id the device's pads name us by (must be our bare JID)
  std::vector<DeviceContact> contacts;
};

struct DeviceGroupPacket {
  std::string contact;
  Bytes packet;
  std::uint64_t pad_bytes = 0;
};

struct DeviceGroupSealed {
  GroupContext group;
  std::vector<DeviceGroupPacket> packets;  // one per contact asked
};

struct DeviceOpened {
  SecretBytes body;
  MessageType type = MessageType::Chat;
  std::uint64_t seq = 0;
  std::optional<GroupContext> group;
  std::vector<std::string> warnings;  // "skipped_offset", "out_of_order"
};

class PadDevice {
 public:
  virtual ~PadDevice() = default;
  // Every contact the device holds a pad with.
  virtual Result<DeviceStatus> status() = 0;
  // All-or-nothing pre-check, one confirmation, then one packet per contact.
  virtual Result<DeviceGroupSealed> package_group(const std::vector<std::string>& to, ByteView message) = 0;
  // Verify, record, destroy, release. `contact` is who the transport says sent it.
  virtual Result<DeviceOpened> unpackage(const std::string& contact, ByteView packet) = 0;
};

}  // namespace mpotr::otp
