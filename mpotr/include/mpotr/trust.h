// SPDX-License-Identifier: MIT
// Trust per peer JID: unknown → TOFU (first key seen) → verified (fingerprint or SMP checked),
// and blocked. Pure data: persistence lives in mpotr/store (trust_file.h).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "mpotr/identity.h"
#include "mpotr/result.h"

namespace mpotr {

enum class TrustLevel : std::uint8_t { Unknown = 0, Tofu = 1, Verified = 2, Blocked = 3 };
std::string_view to_string(TrustLevel level) noexcept;

enum class TrustDecision : std::uint8_t {
  NewIdentity,  // JID never seen: accept, host records TOFU when the session is established
  Trusted,      // same key as recorded (TOFU or verified)
  Changed,      // a different key than the recorded one: refuse until the user decides
  Blocked,      // user blocked this JID
};

struct TrustRecord {
  Fingerprint fingerprint;
  TrustLevel level = TrustLevel::Unknown;
};

class TrustStore {
 public:
  TrustDecision check(std::string_view jid, const Fingerprint& fp) const;
  TrustLevel level(std::string_view jid) const;
  const TrustRecord* find(std::string_view jid) const;

  // Unknown → Tofu. Errors: InvalidState if the JID already has a record.
  Result<void> record_first_use(std::string_view jid, const Fingerprint& fp);
  // → Verified with this fingerprint (replaces a TOFU or changed key: the user checked it).
  Result<void> verify(std::string_view jid, const Fingerprint& fp);
  // Forget the JID (back to Unknown). Errors: InvalidArgument if unknown.
  Result<void> untrust(std::string_view jid);
  // → Blocked (keeps the fingerprint if any).
  Result<void> block(std::string_view jid);

  // JSON document {"version":1,"peers":{jid:{"fingerprint":hex,"level":"tofu"}}}.
  std::string to_json() const;
  // Errors: Storage with a precise detail for any malformed document (nothing partially loaded).
  static Result<TrustStore> from_json(std::string_view json);

  const std::map<std::string, TrustRecord, std::less<>>& records() const noexcept { return m_records; }

 private:
  std::map<std::string, TrustRecord, std::less<>> m_records;
};

}  // namespace mpotr
