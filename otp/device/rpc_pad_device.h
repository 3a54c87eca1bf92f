// SPDX-License-Identifier: MIT
// PadDevice over mpotr-padd's RPC (README.md here): one Unix-socket connection per call, so a
// daemon restart or an idle timeout between messages costs nothing.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "mpotr/otp/pad_device.h"

namespace mpotr::otp::device {

// Longer than the daemon's confirmation prompt (kConfirmTimeout), so a human answering on the
// device is waited for.
inline constexpr std::chrono::seconds kDeviceCallTimeout{75};

class RpcPadDevice final : public PadDevice {
 public:
  explicit RpcPadDevice(std::string socket_path, std::chrono::milliseconds timeout = kDeviceCallTimeout)
      : m_socket(std::move(socket_path)), m_timeout(timeout) {}
  const std::string& socket_path() const noexcept { return m_socket; }

  Result<DeviceStatus> status() override;
  Result<DeviceGroupSealed> package_group(const std::vector<std::string>& to, ByteView message) override;
  Result<DeviceOpened> unpackage(const std::string& contact, ByteView packet) override;

 private:
  Result<nlohmann::json> call(nlohmann::json request);
  std::string m_socket;
  std::chrono::milliseconds m_timeout;
  std::uint64_t m_next_id = 1;
};

}  // namespace mpotr::otp::device
