// SPDX-License-Identifier: MIT
// TrustStore::from_json: never crashes on any document; whatever it accepts serialises with
// to_json() to a document that loads again to the same records and blocked fingerprints and
// serialises identically.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "mpotr/trust.h"

using namespace mpotr;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  auto store = TrustStore::from_json(json);
  if (!store.ok()) {
    FUZZ_CHECK(store.error().code == ErrorCode::Storage);
    return 0;
  }
  const std::string first = store->to_json();
  auto reloaded = TrustStore::from_json(first);
  FUZZ_CHECK_MSG(reloaded.ok(), "to_json() output does not load: %s", reloaded.ok() ? "" : reloaded.error().detail.c_str());
  FUZZ_CHECK(reloaded->records().size() == store->records().size());
  for (const auto& [jid, record] : store->records()) {
    const TrustRecord* other = reloaded->find(jid);
    FUZZ_CHECK(other != nullptr && other->level == record.level && other->fingerprint == record.fingerprint);
  }
  FUZZ_CHECK(reloaded->blocked_fingerprints() == store->blocked_fingerprints());
  for (const Fingerprint& fp : store->blocked_fingerprints()) {
    FUZZ_CHECK(reloaded->fingerprint_blocked(fp) && reloaded->check("fuzz@example.org", fp) == TrustDecision::Blocked);
  }
  FUZZ_CHECK(reloaded->to_json() == first);
  return 0;
}
