// SPDX-License-Identifier: MIT
#include "otp/device/protocol.h"

#include <set>

namespace mpotr::otp::device {
namespace {

using json = nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Error bad(std::string detail) { return make_error(ErrorCode::InvalidArgument, std::move(detail)); }

struct FieldSpec {
  const char* name;
  bool required;
};

// The fields each op takes besides "id" and "op"; anything else is refused.
std::vector<FieldSpec> fields_of(Op op) {
  switch (op) {
    case Op::Auth: return {{"token", true}};
    case Op::Package: return {{"contact", true}, {"message_b64", true}};
    case Op::PackageGroup: return {{"to", true}, {"message_b64", true}};
    case Op::Unpackage: return {{"contact", true}, {"packet_b64", true}};
    case Op::Status: return {{"contact", false}};
    case Op::List: return {};
  }
  return {};
}

std::optional<Op> op_from(std::string_view s) {
  if (s == "auth") return Op::Auth;
  if (s == "package") return Op::Package;
  if (s == "package_group") return Op::PackageGroup;
  if (s == "unpackage") return Op::Unpackage;
  if (s == "status") return Op::Status;
  if (s == "list") return Op::List;
  return std::nullopt;
}

Result<std::string> string_field(const json& obj, const char* name, std::size_t max_len) {
  const auto& v = obj.at(name);
  if (!v.is_string()) return bad(std::string("field \"") + name + "\" must be a string");
  const auto& s = v.get_ref<const std::string&>();
  if (s.size() > max_len) {
    return bad(std::string("field \"") + name + "\" is longer than " + std::to_string(max_len) + " bytes");
  }
  return s;
}

Result<SecretBytes> b64_field(const json& obj, const char* name) {
  MPOTR_TRY(std::string text, string_field(obj, name, kMaxRequestLine));
  Bytes out;
  const bool ok = from_base64(text, out);
  secure_zero(text.data(), text.size());
  if (!ok) return bad(std::string("field \"") + name + "\" is not canonical base64 (RFC 4648, padded)");
  SecretBytes secret(view(out));
  secure_zero(out.data(), out.size());
  return secret;
}

bool valid_contact(std::string_view c) {
  if (c.empty() || c.size() > kMaxContactLength) return false;
  // Contacts name files of the pad store: no path separators, no control characters.
  for (unsigned char ch : c) {
    if (ch < 0x20 || ch == 0x7f || ch == '/' || ch == '\\') return false;
  }
  return c != "." && c != "..";
}

}  // namespace

std::variant<Request, ParseFailure> parse_request(std::string_view line) {
  ParseFailure fail;
  if (line.size() > kMaxRequestLine) {
    fail.error = make_error(ErrorCode::DecodeOversize, "request longer than " + std::to_string(kMaxRequestLine) + " bytes");
    return fail;
  }
  // The callback sees every value with its depth: too deep or a repeated top-level key marks
  // the request bad (nlohmann's parser is iterative, so depth costs no stack).
  bool too_deep = false;
  bool duplicate = false;
  std::set<std::string> keys;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (depth > kMaxJsonDepth) too_deep = true;
    if (ev == json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      if (!keys.insert(parsed.get<std::string>()).second) duplicate = true;
    }
    return !too_deep;
  };
  json j = json::parse(line.begin(), line.end(), cb, /*allow_exceptions=*/false);
  if (too_deep) {
    fail.error = make_error(ErrorCode::DecodeOversize, "JSON nested deeper than " + std::to_string(kMaxJsonDepth));
    return fail;
  }
  if (j.is_discarded()) {
    fail.error = make_error(ErrorCode::DecodeBadValue, "malformed JSON");
    return fail;
  }
  if (!j.is_object()) {
    fail.error = bad("request must be a JSON object");
    return fail;
  }
  // The id first, so every later error can be matched to its request.
  auto id_it = j.find("id");
  if (id_it != j.end()) {
    if (id_it->is_string() && id_it->get_ref<const std::string&>().size() <= kMaxIdLength) {
      fail.id_json = dump(*id_it);
    } else if (id_it->is_number_unsigned()) {
      fail.id_json = dump(*id_it);
    } else {
      fail.error = bad("field \"id\" must be a string of at most " + std::to_string(kMaxIdLength) +
                       " bytes or a non-negative integer");
      return fail;
    }
  } else {
    fail.error = bad("missing field \"id\"");
    return fail;
  }
  if (duplicate) {
    fail.error = bad("a field appears twice");
    return fail;
  }
  auto op_it = j.find("op");
  if (op_it == j.end() || !op_it->is_string()) {
    fail.error = bad("field \"op\" (a string) is required");
    return fail;
  }
  auto op = op_from(op_it->get_ref<const std::string&>());
  if (!op) {
    fail.error = make_error(ErrorCode::DecodeUnknownType,
                            "unknown op (known: auth, package, package_group, unpackage, status, list)");
    return fail;
  }
  const auto spec = fields_of(*op);
  for (const auto& [key, value] : j.items()) {
    if (key == "id" || key == "op") continue;
    bool known = false;
    for (const auto& f : spec) known = known || key == f.name;
    if (!known) {
      fail.error = bad("unexpected field \"" + key + "\" for op \"" + op_it->get<std::string>() + "\"");
      return fail;
    }
  }
  for (const auto& f : spec) {
    if (f.required && !j.contains(f.name)) {
      fail.error = bad(std::string("missing field \"") + f.name + "\"");
      return fail;
    }
  }

  Request req;
  req.id_json = fail.id_json;
  req.op = *op;
  auto take = [&](auto&& result, auto& out) -> bool {
    if (!result.ok()) {
      fail.error = std::move(result).error();
      return false;
    }
    out = std::move(result).value();
    return true;
  };
  if (j.contains("contact")) {
    if (!take(string_field(j, "contact", kMaxContactLength), req.contact)) return fail;
    if (!valid_contact(req.contact)) {
      fail.error = bad("field \"contact\" must be 1-256 bytes without '/', '\\' or control characters");
      return fail;
    }
  }
  switch (*op) {
    case Op::Auth:
      if (!take(string_field(j, "token", kMaxTokenLength), req.token)) return fail;
      break;
    case Op::Package:
      if (!take(b64_field(j, "message_b64"), req.payload)) return fail;
      break;
    case Op::PackageGroup: {
      const auto& to = j.at("to");
      if (!to.is_array() || to.empty() || to.size() > kMaxGroupContacts) {
        fail.error = bad("field \"to\" must be an array of 1-" + std::to_string(kMaxGroupContacts) + " contacts");
        return fail;
      }
      std::set<std::string> seen;
      for (const auto& c : to) {
        if (!c.is_string() || !valid_contact(c.get_ref<const std::string&>())) {
          fail.error = bad("every contact in \"to\" must be a string of 1-256 bytes without '/', '\\' or control characters");
          return fail;
        }
        if (!seen.insert(c.get<std::string>()).second) {
          fail.error = bad("contact \"" + c.get<std::string>() + "\" appears twice in \"to\"");
          return fail;
        }
        req.to.push_back(c.get<std::string>());
      }
      if (!take(b64_field(j, "message_b64"), req.payload)) return fail;
      break;
    }
    case Op::Unpackage:
      if (!take(b64_field(j, "packet_b64"), req.payload)) return fail;
      break;
    case Op::Status:
    case Op::List: break;
  }
  return req;
}

std::string_view type_name(MessageType t) noexcept {
  switch (t) {
    case MessageType::Chat: return "chat";
    case MessageType::Group: return "group";
    case MessageType::Attestation: return "attestation";
    case MessageType::Decoy: return "decoy";
  }
  return "unknown";
}

std::optional<MessageType> type_from_name(std::string_view name) noexcept {
  for (auto t : {MessageType::Chat, MessageType::Group, MessageType::Attestation, MessageType::Decoy}) {
    if (type_name(t) == name) return t;
  }
  return std::nullopt;
}

json group_to_json(const GroupContext& g) {
  return json{{"group_msg_id", to_hex(ByteView(g.group_msg_id.data(), g.group_msg_id.size()))},
              {"recipients", g.recipients}};
}

Result<GroupContext> group_from_json(const json& j) {
  if (!j.is_object() || j.size() != 2 || !j.contains("group_msg_id") || !j.contains("recipients")) {
    return bad("group must be {\"group_msg_id\", \"recipients\"}");
  }
  GroupContext g;
  const auto& id = j.at("group_msg_id");
  Bytes raw;
  if (!id.is_string() || !from_hex(id.get_ref<const std::string&>(), raw) || raw.size() != g.group_msg_id.size()) {
    return bad("group_msg_id must be " + std::to_string(2 * g.group_msg_id.size()) + " hex digits");
  }
  std::copy(raw.begin(), raw.end(), g.group_msg_id.begin());
  const auto& rec = j.at("recipients");
  if (!rec.is_array() || rec.empty() || rec.size() > kMaxRecipients) return bad("recipients must be 1-64 ids");
  for (const auto& r : rec) {
    if (!r.is_string() || r.get_ref<const std::string&>().empty() ||
        r.get_ref<const std::string&>().size() > kMaxRecipientLen) {
      return bad("every recipient must be a string of 1-255 bytes");
    }
    g.recipients.push_back(r.get<std::string>());
  }
  return g;
}

std::string ok_response(const std::string& id_json, const nlohmann::json& fields) {
  json r = json::object();
  r["id"] = json::parse(id_json, nullptr, false);
  r["ok"] = true;
  if (fields.is_object()) {
    for (const auto& [k, v] : fields.items()) r[k] = v;
  }
  return dump(r) + "\n";
}

std::string error_response(const std::string& id_json, const Error& error) {
  json r = json::object();
  r["id"] = json::parse(id_json, nullptr, false);
  r["ok"] = false;
  r["error"] = {{"code", std::string(to_string(error.code))}, {"detail", error.detail}};
  return dump(r) + "\n";
}

}  // namespace mpotr::otp::device
