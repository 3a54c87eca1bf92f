// SPDX-License-Identifier: MIT
// The pad device in process, for tests of OTP mode (room mode, plugin): mpotr-padd's
// StoreService over a real pad directory, without the socket. Counts what it was asked.
#pragma once

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "mpotr/otp/pad_device.h"
#include "otp/device/store_service.h"

namespace mpotr::test {

class LocalPadDevice final : public otp::PadDevice {
 public:
  explicit LocalPadDevice(const std::string& dir) {
    auto s = otp::device::StoreService::open(dir, 0);
    REQUIRE(s.ok());
    m_service = std::move(s).value();
  }
  Result<otp::DeviceStatus> status() override {
    otp::DeviceStatus st;
    st.me = m_service->me();
    MPOTR_TRY(auto contacts, m_service->contacts());
    for (const auto& c : contacts) {
      MPOTR_TRY(auto s, m_service->status(c));
      st.contacts.push_back({s.contact, s.send_remaining, s.receive_remaining, s.health});
    }
    return st;
  }
  Result<otp::DeviceGroupSealed> package_group(const std::vector<std::string>& to, ByteView message) override {
    ++packaged;
    MPOTR_TRY(auto g, m_service->package_group(to, message));
    otp::DeviceGroupSealed out;
    out.group = g.group;
    for (auto& [contact, p] : g.copies) out.packets.push_back({contact, std::move(p.packet), p.pad_bytes});
    return out;
  }
  Result<otp::DeviceOpened> unpackage(const std::string& contact, ByteView packet) override {
    ++unpackaged;
    MPOTR_TRY(auto u, m_service->unpackage(contact, packet));
    return otp::DeviceOpened{std::move(u.message), u.type, u.seq, std::move(u.group), std::move(u.warnings)};
  }
  std::uint64_t send_remaining(const std::string& contact) { return m_service->status(contact)->send_remaining; }
  // A one-to-one packet (the daemon's "package"), for splicing tests.
  Bytes one_to_one(const std::string& contact, const std::string& text) {
    auto p = m_service->package(contact, as_bytes(text));
    REQUIRE(p.ok());
    return p->packet;
  }
  int packaged = 0;
  int unpackaged = 0;

 private:
  std::unique_ptr<otp::device::StoreService> m_service;
};

}  // namespace mpotr::test
