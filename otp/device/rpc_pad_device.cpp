// SPDX-License-Identifier: MIT
#include "otp/device/rpc_pad_device.h"

#include "otp/device/client.h"
#include "otp/device/protocol.h"

namespace mpotr::otp::device {
namespace {

using json = nlohmann::json;

Error malformed(const std::string& what) {
  return make_error(ErrorCode::DecodeBadValue, "malformed response from the pad device: " + what);
}

ErrorCode code_from_name(const std::string& name) {
  for (int i = 1; i <= static_cast<int>(ErrorCode::Internal); ++i) {
    const auto c = static_cast<ErrorCode>(i);
    if (to_string(c) == name) return c;
  }
  return ErrorCode::Internal;
}

Result<std::uint64_t> u64_of(const json& j, const char* name) {
  const auto it = j.find(name);
  if (it == j.end() || !it->is_number_unsigned()) return malformed(std::string("\"") + name + "\"");
  return it->get<std::uint64_t>();
}

Result<std::string> string_of(const json& j, const char* name) {
  const auto it = j.find(name);
  if (it == j.end() || !it->is_string()) return malformed(std::string("\"") + name + "\"");
  return it->get<std::string>();
}

Result<Bytes> b64_of(const json& j, const char* name) {
  MPOTR_TRY(std::string text, string_of(j, name));
  Bytes out;
  if (!from_base64(text, out)) return malformed(std::string("\"") + name + "\" is not base64");
  return out;
}

}  // namespace

Result<json> RpcPadDevice::call(json request) {
  auto client = Client::connect_unix(m_socket);
  if (!client) {
    return make_error(ErrorCode::Storage, "cannot reach the pad device at " + m_socket + ": " + client.error().detail);
  }
  request["id"] = m_next_id++;
  MPOTR_CHECK(client->send_raw(request.dump() + "\n"));
  MPOTR_TRY(std::string line, client->read_line(m_timeout));
  auto response = json::parse(line, nullptr, false);
  if (response.is_discarded() || !response.is_object()) return malformed("not a JSON object");
  if (response.value("ok", false) != true) {
    const auto& e = response.value("error", json::object());
    const std::string detail = e.is_object() ? e.value("detail", std::string("no detail")) : std::string("no detail");
    const std::string code = e.is_object() ? e.value("code", std::string()) : std::string();
    return make_error(code_from_name(code), "pad device: " + detail);
  }
  return response;
}

Result<DeviceStatus> RpcPadDevice::status() {
  MPOTR_TRY(json r, call({{"op", "status"}}));
  DeviceStatus st;
  MPOTR_TRY(st.me, string_of(r, "me"));
  const auto it = r.find("contacts");
  if (it == r.end() || !it->is_array()) return malformed("\"contacts\"");
  for (const auto& c : *it) {
    if (!c.is_object()) return malformed("contact entry");
    DeviceContact dc;
    MPOTR_TRY(dc.contact, string_of(c, "contact"));
    MPOTR_TRY(dc.send_remaining, u64_of(c, "send_remaining"));
    MPOTR_TRY(dc.receive_remaining, u64_of(c, "receive_remaining"));
    MPOTR_TRY(dc.health, string_of(c, "health"));
    st.contacts.push_back(std::move(dc));
  }
  return st;
}

Result<DeviceGroupSealed> RpcPadDevice::package_group(const std::vector<std::string>& to, ByteView message) {
  std::string b64 = to_base64(message);
  auto response = call({{"op", "package_group"}, {"to", to}, {"message_b64", b64}});
  secure_zero(b64.data(), b64.size());
  MPOTR_TRY(json r, std::move(response));
  DeviceGroupSealed out;
  const auto g = r.find("group");
  if (g == r.end()) return malformed("\"group\"");
  MPOTR_TRY(out.group, group_from_json(*g));
  const auto it = r.find("packets");
  if (it == r.end() || !it->is_array() || it->size() != to.size()) return malformed("\"packets\"");
  for (const auto& p : *it) {
    if (!p.is_object()) return malformed("packet entry");
    DeviceGroupPacket dp;
    MPOTR_TRY(dp.contact, string_of(p, "contact"));
    MPOTR_TRY(dp.packet, b64_of(p, "packet_b64"));
    MPOTR_TRY(dp.pad_bytes, u64_of(p, "pad_bytes"));
    out.packets.push_back(std::move(dp));
  }
  return out;
}

Result<DeviceOpened> RpcPadDevice::unpackage(const std::string& contact, ByteView packet) {
  MPOTR_TRY(json r, call({{"op", "unpackage"}, {"contact", contact}, {"packet_b64", to_base64(packet)}}));
  DeviceOpened out;
  MPOTR_TRY(Bytes body, b64_of(r, "message_b64"));
  out.body = SecretBytes(view(body));
  secure_zero(body.data(), body.size());
  if (r.contains("message_b64") && r["message_b64"].is_string()) {
    auto& s = r["message_b64"].get_ref<std::string&>();
    secure_zero(s.data(), s.size());
  }
  MPOTR_TRY(std::string type, string_of(r, "type"));
  const auto t = type_from_name(type);
  if (!t) return malformed("unknown type \"" + type + "\"");
  out.type = *t;
  MPOTR_TRY(out.seq, u64_of(r, "seq"));
  if (const auto g = r.find("group"); g != r.end()) {
    MPOTR_TRY(auto group, group_from_json(*g));
    out.group = std::move(group);
  }
  if (const auto w = r.find("warnings"); w != r.end() && w->is_array()) {
    for (const auto& x : *w) {
      if (x.is_string()) out.warnings.push_back(x.get<std::string>());
    }
  }
  return out;
}

}  // namespace mpotr::otp::device
