// SPDX-License-Identifier: MIT
// PadService over the pad store: every pad under a directory, opened (and so locked) for the
// daemon's lifetime, addressed by the peer's id.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mpotr/otp/pad_store.h"
#include "mpotr/rng.h"
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
  Result<std::vector<std::uint64_t>> group_cost(const std::vector<std::string>& to,
                                                std::size_t message_len) override;
  Result<GroupPackaged> package_group(const std::vector<std::string>& to, ByteView message) override;
  Result<Unpackaged> unpackage(const std::string& contact, ByteView packet) override;

 private:
  struct GroupPlan {
    GroupContext group;  // group_msg_id still zero
    std::vector<PadStore*> pads;
    std::vector<std::uint64_t> costs;
  };
  StoreService() = default;
  PadStore* usable_pad(const std::string& contact) const;
  Result<GroupPlan> plan_group(const std::vector<std::string>& to, std::size_t message_len) const;
  SystemRng m_rng;  // group message ids (not pad bytes)
  std::vector<std::unique_ptr<PadStore>> m_pads;
};

}  // namespace mpotr::otp::device
