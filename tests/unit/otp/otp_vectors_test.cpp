// SPDX-License-Identifier: MIT
// Known answers for OTP-v1 packets (spec/vectors/otp_packets.json). Every value is re-derived
// from the seed as the file's description says, so the file is reproducible without a tool.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "mpotr/otp/packet.h"
#include "mpotr/rng.h"

using namespace mpotr;
using namespace mpotr::otp;

namespace {
Bytes unhex(const nlohmann::json& j) {
  Bytes out;
  REQUIRE(from_hex(j.get<std::string>(), out));
  return out;
}
}  // namespace

TEST_CASE("otp packet vectors match the implementation", "[otp][vectors]") {
  const std::string path = std::string(MPOTR_SOURCE_DIR) + "/spec/vectors/otp_packets.json";
  std::ifstream in(path);
  REQUIRE(in.good());
  const auto doc = nlohmann::json::parse(in);
  REQUIRE(doc.at("version") == 1);
  const std::uint64_t seed = doc.at("seed").get<std::uint64_t>();
  REQUIRE(doc.at("cases").size() == 4);
  SecretBytes first_region;
  for (std::size_t i = 0; i < doc.at("cases").size(); ++i) {
    const auto& c = doc.at("cases")[i];
    INFO(c.at("name").get<std::string>());
    DeterministicRng rng(seed + i);
    PacketHeader h;
    h.sender = c.at("sender_role") == "A" ? Role::A : Role::B;
    h.pad_id = rng.array<kPadIdSize>();
    CHECK(pad_id_hex(h.pad_id) == c.at("pad_id").get<std::string>());
    h.offset = c.at("offset").get<std::uint64_t>();
    Plaintext p;
    p.type = static_cast<MessageType>(c.at("type").get<int>());
    p.seq = c.at("seq").get<std::uint64_t>();
    const auto body = c.at("body_utf8").get<std::string>();
    p.body.assign(body.begin(), body.end());
    if (p.type == MessageType::Group) {
      GroupContext g;
      g.group_msg_id = rng.array<kGroupMsgIdSize>();
      CHECK(to_hex(view(g.group_msg_id)) == c.at("group_msg_id").get<std::string>());
      g.recipients = c.at("recipients").get<std::vector<std::string>>();
      p.group = g;
    }
    const Bytes inner = encode_inner(p).value();
    CHECK(inner == unhex(c.at("inner")));
    CHECK(pad_cost(p).value() == c.at("pad_cost").get<std::size_t>());
    h.clen = static_cast<std::uint32_t>(inner.size());
    const SecretBytes region = rng.secret(kMacKeySize + inner.size());
    CHECK(region.expose_copy() == unhex(c.at("region")));
    const Bytes packet = unhex(c.at("packet"));
    CHECK(seal_packet(h, region, view(inner)).value() == packet);
    auto parsed = parse_packet(view(packet));
    REQUIRE(parsed.ok());
    CHECK(parsed->header == h);
    auto opened = open_packet(*parsed, region);
    REQUIRE(opened.ok());
    auto back = decode_inner(view(*opened));
    REQUIRE(back.ok());
    CHECK(back->body == p.body);
    CHECK(back->group == p.group);
    if (i == 0) first_region = region;
  }
  REQUIRE(doc.at("invalid").size() == 10);
  for (const auto& v : doc.at("invalid")) {
    INFO(v.at("name").get<std::string>());
    const Bytes packet = unhex(v.at("packet"));
    auto parsed = parse_packet(view(packet));
    const ErrorCode got = parsed.ok() ? open_packet(*parsed, first_region).error().code : parsed.error().code;
    CHECK(to_string(got) == v.at("error").get<std::string>());
  }
}
