// SPDX-License-Identifier: MIT
// The pad device's RPC: newline-delimited JSON requests and responses (README.md here).
// Parsing is strict: every field is required or forbidden per op, with one type; a request
// that fails validation changes nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "mpotr/bytes.h"
#include "mpotr/otp/packet.h"
#include "mpotr/result.h"

namespace mpotr::otp::device {

// A request line (without its '\n') longer than this is refused and the connection closed.
constexpr std::size_t kMaxRequestLine = 256 * 1024;
// Requests are flat objects; deeper nesting is refused before it costs anything.
constexpr int kMaxJsonDepth = 4;
// Request ids are echoed back; bounded so a response stays small.
constexpr std::size_t kMaxIdLength = 128;
constexpr std::size_t kMaxContactLength = 256;
constexpr std::size_t kMaxTokenLength = 1024;
// A group message's contacts (the recipient set adds the sender: packet.h kMaxRecipients).
constexpr std::size_t kMaxGroupContacts = 63;

enum class Op { Auth, Package, PackageGroup, Unpackage, Status, List };

struct Request {
  std::string id_json;  // the request's "id" re-serialized (a string or a non-negative integer)
  Op op = Op::List;
  std::string contact;  // package, unpackage, status (optional there: empty = all)
  std::vector<std::string> to;  // package_group: the contacts, 1..kMaxGroupContacts, distinct
  SecretBytes payload;  // package: the message (plaintext, so kept as a secret); unpackage: the packet
  std::string token;    // auth
};

struct ParseFailure {
  std::string id_json = "null";  // echoed when the id could be read
  Error error;
};

// Parses one request line. On failure the id is kept when it was readable.
std::variant<Request, ParseFailure> parse_request(std::string_view line);

// Inner message types in responses: "chat", "group", "attestation", "decoy".
std::string_view type_name(MessageType t) noexcept;
std::optional<MessageType> type_from_name(std::string_view name) noexcept;
// A group context in responses: {"group_msg_id": "<32 hex>", "recipients": ["alice", …]}.
nlohmann::json group_to_json(const GroupContext& g);
// Strict inverse (for clients): InvalidArgument on any deviation.
Result<GroupContext> group_from_json(const nlohmann::json& j);

// Response lines, each ending in '\n'. `fields` is an object whose members are added to
// {"id":…,"ok":true}; strings with invalid UTF-8 are replaced, never thrown on.
std::string ok_response(const std::string& id_json, const nlohmann::json& fields);
std::string error_response(const std::string& id_json, const Error& error);

}  // namespace mpotr::otp::device
