// SPDX-License-Identifier: MIT
#include "mpotr/transport/xmpp_resolve.h"

#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>

#include <algorithm>
#include <cstring>

namespace mpotr::transport {

namespace {

struct SrvRecord {
  std::uint16_t priority = 0;
  std::uint16_t weight = 0;
  ServerTarget target;
};

}  // namespace

std::optional<std::vector<ServerTarget>> parse_srv_answer(std::span<const unsigned char> answer) {
  ns_msg msg{};
  if (answer.size() > static_cast<std::size_t>(INT32_MAX) ||
      ns_initparse(answer.data(), static_cast<int>(answer.size()), &msg) != 0) {
    return std::nullopt;
  }
  std::vector<SrvRecord> records;
  const int count = ns_msg_count(msg, ns_s_an);
  for (int i = 0; i < count; ++i) {
    ns_rr rr{};
    if (ns_parserr(&msg, ns_s_an, i, &rr) != 0) {
      return std::nullopt;
    }
    if (ns_rr_type(rr) != ns_t_srv || ns_rr_class(rr) != ns_c_in) {
      continue;  // CNAMEs on the way
    }
    const unsigned char* rdata = ns_rr_rdata(rr);
    if (ns_rr_rdlen(rr) < 7) {
      return std::nullopt;
    }
    SrvRecord r;
    r.priority = static_cast<std::uint16_t>(ns_get16(rdata));
    r.weight = static_cast<std::uint16_t>(ns_get16(rdata + 2));
    r.target.port = static_cast<std::uint16_t>(ns_get16(rdata + 4));
    char name[NS_MAXDNAME];
    if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), rdata + 6, name, sizeof name) < 0) {
      return std::nullopt;
    }
    r.target.host = name;
    records.push_back(std::move(r));
  }
  // RFC 2782: a single record with target "." means "decidedly not available here".
  if (records.size() == 1 && (records[0].target.host.empty() || records[0].target.host == ".")) {
    return std::vector<ServerTarget>{};
  }
  std::stable_sort(records.begin(), records.end(), [](const SrvRecord& a, const SrvRecord& b) {
    return a.priority != b.priority ? a.priority < b.priority : a.weight > b.weight;
  });
  std::vector<ServerTarget> out;
  for (auto& r : records) {
    if (!r.target.host.empty() && r.target.host != "." && r.target.port != 0) {
      out.push_back(std::move(r.target));
    }
  }
  if (out.empty()) {
    return std::nullopt;  // nothing usable: as if there were no records
  }
  return out;
}

Result<std::vector<ServerTarget>> xmpp_client_targets(const std::string& domain, const std::string& host,
                                                      std::uint16_t port) {
  if (!host.empty()) {
    return std::vector<ServerTarget>{{host, port != 0 ? port : kXmppClientPort}};
  }
  const std::string name = "_xmpp-client._tcp." + domain;
  unsigned char answer[NS_PACKETSZ * 4];
  const int len = res_query(name.c_str(), ns_c_in, ns_t_srv, answer, sizeof answer);
  if (len > 0) {
    if (auto targets = parse_srv_answer(std::span<const unsigned char>(answer, static_cast<std::size_t>(len)))) {
      if (targets->empty()) {
        return make_error(ErrorCode::InvalidArgument, domain + " offers no XMPP client service (its SRV target is \".\")");
      }
      return std::move(*targets);
    }
  }
  return std::vector<ServerTarget>{{domain, port != 0 ? port : kXmppClientPort}};
}

Result<std::vector<SocketAddress>> resolve_targets(const std::vector<ServerTarget>& targets) {
  std::vector<SocketAddress> out;
  std::string why;
  for (const ServerTarget& t : targets) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(t.port);
    if (const int rc = getaddrinfo(t.host.c_str(), service.c_str(), &hints, &found); rc != 0) {
      why = t.host + ": " + gai_strerror(rc);
      continue;
    }
    for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
      if (a->ai_addrlen > sizeof(sockaddr_storage)) {
        continue;
      }
      SocketAddress s;
      std::memcpy(&s.addr, a->ai_addr, a->ai_addrlen);
      s.len = a->ai_addrlen;
      s.label = t.host + ":" + service;
      out.push_back(std::move(s));
    }
    freeaddrinfo(found);
  }
  if (out.empty()) {
    return make_error(ErrorCode::InvalidArgument, "cannot resolve the server" + (why.empty() ? std::string() : " (" + why + ")"));
  }
  return out;
}

}  // namespace mpotr::transport
