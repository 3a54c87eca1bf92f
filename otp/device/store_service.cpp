// SPDX-License-Identifier: MIT
#include "otp/device/store_service.h"

#include <algorithm>
#include <set>

namespace mpotr::otp::device {
namespace {

Packaged packaged(SentPacket sent) { return Packaged{std::move(sent.packet), sent.region.begin, sent.region.size()}; }

}  // namespace

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

PadStore* StoreService::usable_pad(const std::string& contact) const {
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
  return best;
}

Result<Packaged> StoreService::package(const std::string& contact, ByteView message) {
  PadStore* best = usable_pad(contact);
  if (best == nullptr) return make_error(ErrorCode::InvalidArgument, "no usable pad shared with " + contact);
  OutgoingMessage msg;
  msg.body.assign(message.begin(), message.end());
  auto sent = best->send_package(msg);
  secure_zero(msg.body.data(), msg.body.size());
  if (!sent) return std::move(sent).error();
  return packaged(std::move(sent).value());
}

Result<StoreService::GroupPlan> StoreService::plan_group(const std::vector<std::string>& to,
                                                          std::size_t message_len) const {
  if (message_len > kMaxBody) {
    return make_error(ErrorCode::InvalidArgument, "message longer than " + std::to_string(kMaxBody) + " bytes");
  }
  if (to.empty() || to.size() + 1 > kMaxRecipients) {
    return make_error(ErrorCode::InvalidArgument,
                      "a group message goes to 1.." + std::to_string(kMaxRecipients - 1) + " contacts");
  }
  GroupPlan plan;
  std::set<std::string> recipients;
  std::string me;
  for (const auto& contact : to) {
    for (const auto& p : m_pads) {
      if (p->descriptor().me == contact) {
        return make_error(ErrorCode::InvalidArgument, "a group message is not sent to yourself (" + contact + ")");
      }
    }
    PadStore* pad = usable_pad(contact);
    if (pad == nullptr) {
      const bool known = std::any_of(m_pads.begin(), m_pads.end(),
                                     [&](const auto& p) { return p->descriptor().peer == contact; });
      return make_error(ErrorCode::InvalidArgument,
                        known ? "the pad shared with " + contact + " cannot send any more (exhausted or halted)"
                              : "no pad shared with " + contact);
    }
    // The recipient list names us as the pads do; two pads naming us differently cannot be
    // in one group message (its copies must carry one identical list).
    if (me.empty()) me = pad->descriptor().me;
    if (pad->descriptor().me != me) {
      return make_error(ErrorCode::InvalidArgument, "the pads with " + to.front() + " and " + contact +
                                                        " name you differently (" + me + ", " +
                                                        pad->descriptor().me + ")");
    }
    if (!recipients.insert(contact).second) {
      return make_error(ErrorCode::InvalidArgument, contact + " is named twice");
    }
    plan.pads.push_back(pad);
  }
  if (!recipients.insert(me).second) {
    return make_error(ErrorCode::InvalidArgument, "a group message is not sent to yourself (" + me + ")");
  }
  plan.group.recipients.assign(recipients.begin(), recipients.end());
  OutgoingMessage probe;
  probe.type = MessageType::Group;
  probe.group = plan.group;
  probe.body.resize(message_len);
  for (std::size_t i = 0; i < to.size(); ++i) {
    auto cost = plan.pads[i]->check_can_send(probe);
    if (!cost) {
      auto e = std::move(cost).error();
      e.detail = to[i] + ": " + e.detail;
      return e;
    }
    plan.costs.push_back(*cost);
  }
  return plan;
}

Result<std::vector<std::uint64_t>> StoreService::group_cost(const std::vector<std::string>& to,
                                                            std::size_t message_len) {
  MPOTR_TRY(auto plan, plan_group(to, message_len));
  return plan.costs;
}

Result<GroupPackaged> StoreService::package_group(const std::vector<std::string>& to, ByteView message) {
  MPOTR_TRY(auto plan, plan_group(to, message.size()));
  m_rng.fill(plan.group.group_msg_id.data(), plan.group.group_msg_id.size());
  GroupPackaged out;
  out.group = plan.group;
  OutgoingMessage msg;
  msg.type = MessageType::Group;
  msg.group = plan.group;
  msg.body.assign(message.begin(), message.end());
  for (std::size_t i = 0; i < to.size(); ++i) {
    auto sent = plan.pads[i]->send_package(msg);
    if (!sent) {
      secure_zero(msg.body.data(), msg.body.size());
      auto e = std::move(sent).error();
      e.detail = to[i] + ": " + e.detail;
      return e;
    }
    out.copies.emplace_back(to[i], packaged(std::move(sent).value()));
  }
  secure_zero(msg.body.data(), msg.body.size());
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
  out.type = received.plaintext.type;
  out.seq = received.plaintext.seq;
  out.group = std::move(received.plaintext.group);
  out.offset = received.region.begin;
  out.pad_bytes = received.region.size();
  if (received.gap_detected) out.warnings.emplace_back("skipped_offset");
  if (received.out_of_order) out.warnings.emplace_back("out_of_order");
  return out;
}

}  // namespace mpotr::otp::device
