// SPDX-License-Identifier: MIT
// Trust per peer JID: unknown → TOFU (first key seen) → verified (fingerprint or SMP checked),
// and blocked; beside it, fingerprints blocked under every JID. Pure data: persistence lives in
// mpotr/store (trust_file.h).
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "mpotr/identity.h"
#include "mpotr/result.h"

namespace mpotr {

enum class TrustLevel : std::uint8_t { Unknown = 0, Tofu = 1, Verified = 2, Blocked = 3 };
std::string_view to_string(TrustLevel level) noexcept;

enum class TrustDecision : std::uint8_t {
  NewIdentity,  // JID never seen: accept, host records TOFU when the session is established
  Trusted,      // same key as recorded (TOFU or verified)
  Changed,      // a different key than the recorded one: refuse until the user decides
  Blocked,      // user blocked this JID, or this key under any JID
};

struct TrustRecord {
  Fingerprint fingerprint;
  TrustLevel level = TrustLevel::Unknown;
};

class TrustStore {
 public:
  // Blocked when fp is a blocked fingerprint (whatever the JID: a blocked person cannot escape
  // by registering a new account) or the JID is blocked; otherwise by the JID's record.
  TrustDecision check(std::string_view jid, const Fingerprint& fp) const;
  // The JID's own level; a blocked fingerprint does not show here (check() applies it).
  TrustLevel level(std::string_view jid) const;
  const TrustRecord* find(std::string_view jid) const;

  // Unknown → Tofu. Errors: InvalidState if the JID already has a record or fp is blocked.
  Result<void> record_first_use(std::string_view jid, const Fingerprint& fp);
  // → Verified with this fingerprint (replaces a TOFU or changed key: the user checked it).
  // Errors: InvalidState if fp is blocked (unblock_fingerprint first).
  Result<void> verify(std::string_view jid, const Fingerprint& fp);
  // Forget the JID (back to Unknown). Errors: InvalidArgument if unknown.
  Result<void> untrust(std::string_view jid);
  // → Blocked (keeps the fingerprint if any).
  Result<void> block(std::string_view jid);

  // Block a key under every JID. The JIDs' records are kept, and apply again once the key is
  // unblocked. Blocking a blocked fingerprint again is fine. Errors: InvalidArgument for the
  // all-zero fingerprint (no key's); LimitExceeded when the store is full.
  Result<void> block_fingerprint(const Fingerprint& fp);
  // Errors: InvalidArgument if fp is not blocked.
  Result<void> unblock_fingerprint(const Fingerprint& fp);
  bool fingerprint_blocked(const Fingerprint& fp) const;
  // The blocked fingerprints, in byte order.
  std::vector<Fingerprint> blocked_fingerprints() const;

  // Every JID (in order) whose record holds this fingerprint, whatever its level: two or more
  // means one key under several JIDs, which the host warns about. Empty for the all-zero
  // fingerprint, which stands for "no key" in records blocked before a key was seen.
  std::vector<std::string> jids_with(const Fingerprint& fp) const;

  // JSON document {"version":1,"peers":{jid:{"fingerprint":hex,"level":"tofu"}},
  // "blocked_fingerprints":[hex, …]}; the last field only when a fingerprint is blocked (so a
  // store without one writes the same document as before the field existed).
  std::string to_json() const;
  // Errors: Storage with a precise detail for any malformed document (nothing partially loaded).
  // "blocked_fingerprints" is optional.
  static Result<TrustStore> from_json(std::string_view json);

  const std::map<std::string, TrustRecord, std::less<>>& records() const noexcept { return m_records; }

 private:
  std::map<std::string, TrustRecord, std::less<>> m_records;
  std::set<Hash32> m_blocked_fingerprints;
};

}  // namespace mpotr
