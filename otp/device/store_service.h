// SPDX-License-Identifier: MIT
// PadService over the pad store: every pad under a directory, opened (and so locked) for the
// daemon's lifetime, addressed by the peer's id.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mpotr/otp/pad_store.h"
#include "otp/device/pad_service.h"

namespace mpotr::otp::device {

class StoreService final : public PadService {
 public:
  // Opens every pad in dir. reserve_block 0 keeps the store's default.
  static Result<std::unique_ptr<StoreService>> open(const std::string& dir, std::uint64_t reserve_block);

  std::string me() const override;
  Result<std::vector<std::string>> contacts() override;
  Result<ContactStatus> status(const std::string& contact) override;
  Result<std::uint64_t> package_cost(const std::string& contact, std::size_t message_len) override;
  Result<Packaged> package(const std::string& contact, ByteView message) override;
  Result<Unpackaged> unpackage(const std::string& contact, ByteView packet) override;

 private:
  StoreService() = default;
  std::vector<std::unique_ptr<PadStore>> m_pads;
};

}  // namespace mpotr::otp::device
