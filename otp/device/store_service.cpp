// SPDX-License-Identifier: MIT
#include "otp/device/store_service.h"

#include <algorithm>
#include <set>

namespace mpotr::otp::device {

Result<std::unique_ptr<StoreService>> StoreService::open(const std::string& dir, std::uint64_t reserve_block) {
  MPOTR_TRY(auto ids, list_pads(dir));
  std::unique_ptr<StoreService> svc(new StoreService());
  for (const auto& id : ids) {
    auto pad = PadStore::open(dir, id);
    if (!pad) {
      auto e = std::move(pad).error();
      e.detail = "pad " + pad_id_hex(id) + ": " + e.detail;
      return e;
    }
    if (reserve_block != 0) MPOTR_CHECK(pad.value()->set_reserve_block(reserve_block));
    svc->m_pads.push_back(std::move(pad).value());
  }
  return svc;
}

std::string StoreService::me() const {
  return m_pads.empty() ? std::string("this device") : m_pads.front()->descriptor().me;
}

Result<std::vector<std::string>> StoreService::contacts() {
  std::set<std::string> peers;
  for (const auto& p : m_pads) peers.insert(p->descriptor().peer);
  return std::vector<std::string>(peers.begin(), peers.end());
}

Result<ContactStatus> StoreService::status(const std::string& contact) {
  ContactStatus st;
  st.contact = contact;
  bool found = false;
  for (const auto& p : m_pads) {
    if (p->descriptor().peer != contact) continue;
    found = true;
    const auto s = p->status();
    if (s.phase == SendPhase::Healthy) {
      st.send_remaining += s.send_remaining;
    } else {
      // One bad pad is worth knowing about even when another one still works.
      const bool halted = s.phase == SendPhase::Halted;
      if (halted || st.health == "healthy") st.health = halted ? "halted" : "exhausted";
    }
    st.receive_remaining += s.peer_remaining;
  }
  if (!found) return make_error(ErrorCode::InvalidArgument, "no pad shared with " + contact);
  return st;
}

Result<std::uint64_t> StoreService::package_cost(const std::string& contact, std::size_t message_len) {
  if (message_len > kMaxBody) {
    return make_error(ErrorCode::InvalidArgument, "message longer than " + std::to_string(kMaxBody) + " bytes");
  }
  MPOTR_TRY(auto st, status(contact));
  Plaintext probe;
  probe.body.resize(message_len);
  MPOTR_TRY(std::size_t cost, pad_cost(probe));
  if (cost > st.send_remaining) {
    return make_error(ErrorCode::LimitExceeded, "pad exhausted: " + std::to_string(st.send_remaining) +
                                                    " bytes left for " + contact + ", " + std::to_string(cost) + " needed");
  }
  return static_cast<std::uint64_t>(cost);
}

Result<Packaged> StoreService::package(const std::string& contact, ByteView message) {
  // Of the contact's pads, the one with the most pad left (a new pad takes over from an old one).
  PadStore* best = nullptr;
  std::uint64_t best_left = 0;
  for (const auto& p : m_pads) {
    if (p->descriptor().peer != contact) continue;
    const auto s = p->status();
    if (s.phase != SendPhase::Healthy) continue;
    if (best == nullptr || s.send_remaining > best_left) {
      best = p.get();
      best_left = s.send_remaining;
    }
  }
  if (best == nullptr) return make_error(ErrorCode::InvalidArgument, "no usable pad shared with " + contact);
  OutgoingMessage msg;
  msg.body.assign(message.begin(), message.end());
  auto sent = best->send_package(msg);
  secure_zero(msg.body.data(), msg.body.size());
  if (!sent) return std::move(sent).error();
  Packaged out;
  out.packet = std::move(sent->packet);
  out.offset = sent->region.begin;
  out.pad_bytes = sent->region.size();
  return out;
}

Result<Unpackaged> StoreService::unpackage(const std::string& contact, ByteView packet) {
  MPOTR_TRY(auto parsed, parse_packet(packet));
  PadStore* pad = nullptr;
  for (const auto& p : m_pads) {
    if (p->descriptor().pad_id == parsed.header.pad_id) pad = p.get();
  }
  if (pad == nullptr) return make_error(ErrorCode::UnknownSession, "no pad with id " + pad_id_hex(parsed.header.pad_id));
  // The pad authenticates the sender; a packet under another contact's name is refused
  // before anything is read, so the caller can retry with the right one.
  if (pad->descriptor().peer != contact) {
    return make_error(ErrorCode::NickMismatch, "packet is under the pad shared with " + pad->descriptor().peer +
                                                   ", not " + contact);
  }
  MPOTR_TRY(auto received, pad->receive_unpackage(packet));
  Unpackaged out;
  out.message = SecretBytes(view(received.plaintext.body));
  secure_zero(received.plaintext.body.data(), received.plaintext.body.size());
  out.offset = received.region.begin;
  out.pad_bytes = received.region.size();
  if (received.gap_detected) out.warnings.emplace_back("skipped_offset");
  if (received.out_of_order) out.warnings.emplace_back("out_of_order");
  return out;
}

}  // namespace mpotr::otp::device
