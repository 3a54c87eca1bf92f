// SPDX-License-Identifier: MIT
// Trust store: per-JID decision state, blocked fingerprints, and their JSON form. No I/O here
// (see mpotr/store).
#include "mpotr/trust.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace mpotr {

namespace {

// Bounds on what from_json accepts. Mutators enforce the same bounds, so whatever a store
// holds can always be saved and loaded back.
constexpr std::size_t kMaxJidLen = 1023;  // RFC 7622: each part ≤ 1023 bytes; we bound the whole
constexpr std::size_t kMaxDocumentLen = 4u * 1024u * 1024u;
constexpr std::size_t kMaxPeers = 100000;
constexpr std::size_t kMaxBlockedFingerprints = 10000;
constexpr int kDocumentVersion = 1;
// Containers nest at most root → peers → record (and root → blocked_fingerprints).
constexpr std::size_t kMaxDepth = 3;
// Upper bound of one peer's share of to_json(): the JID at worst doubles when escaped
// ('"' and '\\'; control characters are rejected); the rest (indentation, field names, 64 hex
// digits, the longest level name) is 132 bytes, rounded up.
constexpr std::size_t kEntryOverhead = 160;
// One blocked fingerprint's share: 64 hex digits, quotes, comma, newline, indentation (72 bytes).
constexpr std::size_t kBlockedEntryCost = 80;
// Braces, "version", and the "peers" and "blocked_fingerprints" fields around their entries.
constexpr std::size_t kDocumentOverhead = 128;

std::size_t entry_cost(std::string_view jid) noexcept { return 2 * jid.size() + kEntryOverhead; }

// Decodes one UTF-8 sequence at s[i]; returns the code point and advances i, or nullopt for
// malformed input (truncated, overlong, surrogate, > U+10FFFF).
std::optional<std::uint32_t> next_code_point(std::string_view s, std::size_t& i) noexcept {
  const auto b0 = static_cast<std::uint8_t>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  std::size_t len = 0;
  std::uint32_t cp = 0;
  std::uint32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    cp = b0 & 0x1F;
    min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    cp = b0 & 0x0F;
    min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    cp = b0 & 0x07;
    min = 0x10000;
  } else {
    return std::nullopt;
  }
  if (s.size() - i < len) {
    return std::nullopt;
  }
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<std::uint8_t>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      return std::nullopt;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return std::nullopt;
  }
  i += len;
  return cp;
}

bool is_unicode_whitespace(std::uint32_t cp) noexcept {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

bool is_control(std::uint32_t cp) noexcept { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

// Nullopt when the JID is acceptable as a trust-store key, else why not. Only the byte-level
// shape is checked; normalising JIDs (case folding, PRECIS) is the host's business.
std::optional<std::string> jid_problem(std::string_view jid) {
  if (jid.empty()) {
    return "JID is empty";
  }
  if (jid.size() > kMaxJidLen) {
    return "JID is " + std::to_string(jid.size()) + " bytes long (limit " + std::to_string(kMaxJidLen) + ")";
  }
  std::size_t i = 0;
  while (i < jid.size()) {
    const std::size_t at = i;
    const auto cp = next_code_point(jid, i);
    if (!cp) {
      return "JID is not valid UTF-8 (byte " + std::to_string(at) + ")";
    }
    if (is_unicode_whitespace(*cp)) {
      return "JID contains whitespace (byte " + std::to_string(at) + ")";
    }
    if (is_control(*cp)) {
      return "JID contains a control character (byte " + std::to_string(at) + ")";
    }
  }
  return std::nullopt;
}

Result<void> check_jid(std::string_view jid) {
  if (auto problem = jid_problem(jid)) {
    return make_error(ErrorCode::InvalidArgument, "invalid JID: " + *problem);
  }
  return {};
}

bool is_zero(const Fingerprint& fp) noexcept {
  return std::all_of(fp.bytes.begin(), fp.bytes.end(), [](std::uint8_t b) { return b == 0; });
}

Result<void> check_fingerprint_arg(const Fingerprint& fp) {
  // The all-zero fingerprint marks "blocked without a known key"; it is never a real key's.
  if (is_zero(fp)) {
    return make_error(ErrorCode::InvalidArgument, "fingerprint is all zeros (not a key's fingerprint)");
  }
  return {};
}

Result<void> check_not_blocked(const std::set<Hash32>& blocked, const Fingerprint& fp) {
  if (blocked.count(fp.bytes) != 0) {
    return make_error(ErrorCode::InvalidState,
                      "fingerprint " + fp.grouped() + " is blocked (unblock the fingerprint first)");
  }
  return {};
}

// A JID already validated by jid_problem() is printable; quote it for messages.
std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Any other string from the document may hold anything: show a short, printable form.
std::string printable(std::string_view s) {
  constexpr std::size_t kMaxShown = 40;
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    out.push_back(c >= 0x20 && c < 0x7F ? static_cast<char>(c) : '?');
  }
  if (s.size() > kMaxShown) {
    out += "...";
  }
  return out + "\"";
}

std::optional<TrustLevel> level_from_name(std::string_view name) noexcept {
  if (name == "tofu") {
    return TrustLevel::Tofu;
  }
  if (name == "verified") {
    return TrustLevel::Verified;
  }
  if (name == "blocked") {
    return TrustLevel::Blocked;
  }
  return std::nullopt;
}

// First pass over the text: nlohmann's DOM silently keeps the last of duplicate keys and
// accepts any nesting, so duplicates and depth are caught here, before a DOM is built.
class StructureCheck final : public nlohmann::json_sax<nlohmann::json> {
 public:
  std::string problem;

  bool null() override { return true; }
  bool boolean(bool /*val*/) override { return true; }
  bool number_integer(number_integer_t /*val*/) override { return true; }
  bool number_unsigned(number_unsigned_t /*val*/) override { return true; }
  bool number_float(number_float_t /*val*/, const string_t& /*s*/) override { return true; }
  bool string(string_t& /*val*/) override { return true; }
  bool binary(binary_t& /*val*/) override { return true; }
  bool start_object(std::size_t /*elements*/) override {
    m_keys.emplace_back();
    return enter();
  }
  bool key(string_t& val) override {
    if (!m_keys.back().insert(val).second) {
      problem = "duplicate key " + printable(val);
      return false;
    }
    return true;
  }
  bool end_object() override {
    m_keys.pop_back();
    --m_depth;
    return true;
  }
  bool start_array(std::size_t /*elements*/) override { return enter(); }  // no keys to track
  bool end_array() override {
    --m_depth;
    return true;
  }
  bool parse_error(std::size_t position, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& /*ex*/) override {
    // The exception text quotes document content; the position is enough and says nothing secret.
    problem = "not valid JSON (error at byte " + std::to_string(position) + ")";
    return false;
  }

 private:
  bool enter() {
    if (++m_depth > kMaxDepth) {
      problem = "nested more than " + std::to_string(kMaxDepth) + " levels deep";
      return false;
    }
    return true;
  }
  std::vector<std::set<std::string, std::less<>>> m_keys;
  std::size_t m_depth = 0;
};

Error storage_error(std::string detail) {
  return make_error(ErrorCode::Storage, "invalid trust document: " + std::move(detail));
}

// A stored fingerprint: exactly 64 hex digits (the grouped form is for people). `what` names the
// value in messages.
Result<Fingerprint> parse_stored_fingerprint(const std::string& where, const std::string& what,
                                             const std::string& text) {
  if (text.size() != 64 || text.find(' ') != std::string::npos) {
    return storage_error(where + what + " must be 64 hex digits");
  }
  auto fp = Fingerprint::parse(text);
  if (!fp) {
    return storage_error(where + "bad " + what + ": " + fp.error().detail);
  }
  return fp;
}

Result<TrustRecord> parse_record(std::string_view jid, const nlohmann::json& rec) {
  const std::string where = "peer " + quoted(jid) + ": ";
  if (!rec.is_object()) {
    return storage_error(where + "record must be a JSON object");
  }
  for (const auto& [name, value] : rec.items()) {
    if (name != "fingerprint" && name != "level") {
      return storage_error(where + "unknown field " + printable(name));
    }
  }
  const auto fp_it = rec.find("fingerprint");
  if (fp_it == rec.end()) {
    return storage_error(where + "missing \"fingerprint\"");
  }
  if (!fp_it->is_string()) {
    return storage_error(where + "\"fingerprint\" must be a string");
  }
  MPOTR_TRY(const Fingerprint fp, parse_stored_fingerprint(where, "\"fingerprint\"",
                                                           fp_it->get_ref<const std::string&>()));
  const auto level_it = rec.find("level");
  if (level_it == rec.end()) {
    return storage_error(where + "missing \"level\"");
  }
  if (!level_it->is_string()) {
    return storage_error(where + "\"level\" must be a string");
  }
  const auto& level_name = level_it->get_ref<const std::string&>();
  const auto level = level_from_name(level_name);
  if (!level) {
    return storage_error(where + "unknown level " + printable(level_name) +
                         " (expected \"tofu\", \"verified\" or \"blocked\")");
  }
  if (*level != TrustLevel::Blocked && is_zero(fp)) {
    return storage_error(where + "all-zero \"fingerprint\" is only allowed for blocked peers");
  }
  return TrustRecord{fp, *level};
}

Result<std::set<Hash32>> parse_blocked_fingerprints(const nlohmann::json& list) {
  if (!list.is_array()) {
    return storage_error("\"blocked_fingerprints\" must be a JSON array");
  }
  if (list.size() > kMaxBlockedFingerprints) {
    return storage_error(std::to_string(list.size()) + " blocked fingerprints (limit " +
                         std::to_string(kMaxBlockedFingerprints) + ")");
  }
  std::set<Hash32> blocked;
  std::size_t index = 0;
  for (const auto& item : list) {
    const std::string what = "\"blocked_fingerprints\"[" + std::to_string(index) + "]";
    if (!item.is_string()) {
      return storage_error(what + " must be a string");
    }
    MPOTR_TRY(const Fingerprint fp, parse_stored_fingerprint("", what, item.get_ref<const std::string&>()));
    if (is_zero(fp)) {
      return storage_error(what + " is all zeros (not a key's fingerprint)");
    }
    if (!blocked.insert(fp.bytes).second) {
      return storage_error(what + " repeats an earlier entry");
    }
    ++index;
  }
  return blocked;
}

}  // namespace

std::string_view to_string(TrustLevel level) noexcept {
  switch (level) {
    case TrustLevel::Unknown:
      return "unknown";
    case TrustLevel::Tofu:
      return "tofu";
    case TrustLevel::Verified:
      return "verified";
    case TrustLevel::Blocked:
      return "blocked";
  }
  return "invalid";
}

TrustDecision TrustStore::check(std::string_view jid, const Fingerprint& fp) const {
  if (fingerprint_blocked(fp)) {
    return TrustDecision::Blocked;
  }
  const TrustRecord* rec = find(jid);
  if (rec == nullptr) {
    return TrustDecision::NewIdentity;
  }
  if (rec->level == TrustLevel::Blocked) {
    return TrustDecision::Blocked;
  }
  return rec->fingerprint == fp ? TrustDecision::Trusted : TrustDecision::Changed;
}

TrustLevel TrustStore::level(std::string_view jid) const {
  const TrustRecord* rec = find(jid);
  return rec == nullptr ? TrustLevel::Unknown : rec->level;
}

const TrustRecord* TrustStore::find(std::string_view jid) const {
  const auto it = m_records.find(jid);
  return it == m_records.end() ? nullptr : &it->second;
}

namespace {

using RecordMap = std::map<std::string, TrustRecord, std::less<>>;

// Whether the store grown by one record for new_jid (when given) or else by one blocked
// fingerprint stays within what from_json accepts.
Result<void> check_room(const RecordMap& records, std::size_t blocked, std::optional<std::string_view> new_jid) {
  if (new_jid && records.size() >= kMaxPeers) {
    return make_error(ErrorCode::LimitExceeded,
                      "trust store is full (" + std::to_string(kMaxPeers) + " peers)");
  }
  if (!new_jid && blocked >= kMaxBlockedFingerprints) {
    return make_error(ErrorCode::LimitExceeded, "trust store is full (" + std::to_string(kMaxBlockedFingerprints) +
                                                    " blocked fingerprints)");
  }
  // Summing is only needed once the worst case could exceed the document bound (with every
  // blocked fingerprint there may be).
  constexpr std::size_t kSafePeers =
      (kMaxDocumentLen - kDocumentOverhead - kMaxBlockedFingerprints * kBlockedEntryCost) /
          (2 * kMaxJidLen + kEntryOverhead) -
      1;
  if (records.size() < kSafePeers) {
    return {};
  }
  std::size_t total = kDocumentOverhead;
  if (new_jid) {
    total += entry_cost(*new_jid) + blocked * kBlockedEntryCost;
  } else {
    total += (blocked + 1) * kBlockedEntryCost;
  }
  for (const auto& [key, rec] : records) {
    total += entry_cost(key);
  }
  if (total > kMaxDocumentLen) {
    return make_error(ErrorCode::LimitExceeded, "trust store is full (its file would exceed " +
                                                    std::to_string(kMaxDocumentLen) + " bytes)");
  }
  return {};
}

}  // namespace

Result<void> TrustStore::record_first_use(std::string_view jid, const Fingerprint& fp) {
  MPOTR_CHECK(check_jid(jid));
  MPOTR_CHECK(check_fingerprint_arg(fp));
  if (const TrustRecord* rec = find(jid)) {
    return make_error(ErrorCode::InvalidState, "JID " + quoted(jid) + " already has a trust record (level " +
                                                   std::string(to_string(rec->level)) + ")");
  }
  MPOTR_CHECK(check_not_blocked(m_blocked_fingerprints, fp));
  MPOTR_CHECK(check_room(m_records, m_blocked_fingerprints.size(), jid));
  m_records.emplace(std::string(jid), TrustRecord{fp, TrustLevel::Tofu});
  return {};
}

Result<void> TrustStore::verify(std::string_view jid, const Fingerprint& fp) {
  MPOTR_CHECK(check_jid(jid));
  MPOTR_CHECK(check_fingerprint_arg(fp));
  MPOTR_CHECK(check_not_blocked(m_blocked_fingerprints, fp));
  const auto it = m_records.find(jid);
  if (it != m_records.end()) {
    it->second = TrustRecord{fp, TrustLevel::Verified};
    return {};
  }
  MPOTR_CHECK(check_room(m_records, m_blocked_fingerprints.size(), jid));
  m_records.emplace(std::string(jid), TrustRecord{fp, TrustLevel::Verified});
  return {};
}

Result<void> TrustStore::untrust(std::string_view jid) {
  MPOTR_CHECK(check_jid(jid));
  const auto it = m_records.find(jid);
  if (it == m_records.end()) {
    return make_error(ErrorCode::InvalidArgument, "no trust record for JID " + quoted(jid));
  }
  m_records.erase(it);
  return {};
}

Result<void> TrustStore::block(std::string_view jid) {
  MPOTR_CHECK(check_jid(jid));
  const auto it = m_records.find(jid);
  if (it != m_records.end()) {
    it->second.level = TrustLevel::Blocked;
    return {};
  }
  MPOTR_CHECK(check_room(m_records, m_blocked_fingerprints.size(), jid));
  // No key seen yet: the zero fingerprint stands for "none".
  m_records.emplace(std::string(jid), TrustRecord{Fingerprint{}, TrustLevel::Blocked});
  return {};
}

Result<void> TrustStore::block_fingerprint(const Fingerprint& fp) {
  MPOTR_CHECK(check_fingerprint_arg(fp));
  if (fingerprint_blocked(fp)) {
    return {};
  }
  MPOTR_CHECK(check_room(m_records, m_blocked_fingerprints.size(), std::nullopt));
  m_blocked_fingerprints.insert(fp.bytes);
  return {};
}

Result<void> TrustStore::unblock_fingerprint(const Fingerprint& fp) {
  if (m_blocked_fingerprints.erase(fp.bytes) == 0) {
    return make_error(ErrorCode::InvalidArgument, "fingerprint " + fp.grouped() + " is not blocked");
  }
  return {};
}

bool TrustStore::fingerprint_blocked(const Fingerprint& fp) const {
  return m_blocked_fingerprints.count(fp.bytes) != 0;
}

std::vector<Fingerprint> TrustStore::blocked_fingerprints() const {
  std::vector<Fingerprint> out;
  out.reserve(m_blocked_fingerprints.size());
  for (const Hash32& bytes : m_blocked_fingerprints) {
    out.push_back(Fingerprint{bytes});
  }
  return out;
}

std::vector<std::string> TrustStore::jids_with(const Fingerprint& fp) const {
  std::vector<std::string> out;
  if (is_zero(fp)) {
    return out;
  }
  for (const auto& [jid, rec] : m_records) {
    if (rec.fingerprint == fp) {
      out.push_back(jid);
    }
  }
  return out;
}

std::string TrustStore::to_json() const {
  nlohmann::json peers = nlohmann::json::object();
  for (const auto& [jid, rec] : m_records) {
    peers[jid] = nlohmann::json{{"fingerprint", to_hex(view(rec.fingerprint.bytes))},
                                {"level", std::string(to_string(rec.level))}};
  }
  nlohmann::json doc{{"version", kDocumentVersion}, {"peers", std::move(peers)}};
  // Only when there is one: a store without blocked fingerprints writes the document it wrote
  // before the field existed, which older versions still read.
  if (!m_blocked_fingerprints.empty()) {
    nlohmann::json blocked = nlohmann::json::array();
    for (const Hash32& bytes : m_blocked_fingerprints) {
      blocked.push_back(to_hex(view(bytes)));
    }
    doc["blocked_fingerprints"] = std::move(blocked);
  }
  // JIDs are validated UTF-8, so "replace" never triggers; it only rules out a throw.
  return doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

namespace {

struct Document {
  RecordMap records;
  std::set<Hash32> blocked_fingerprints;
};

Result<Document> parse_document(std::string_view json) {
  StructureCheck structure;
  if (!nlohmann::json::sax_parse(json, &structure)) {
    return storage_error(structure.problem.empty() ? "not valid JSON" : structure.problem);
  }
  const auto doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return storage_error("not valid JSON");
  }
  if (!doc.is_object()) {
    return storage_error("top level must be a JSON object");
  }
  for (const auto& [name, value] : doc.items()) {
    if (name != "version" && name != "peers" && name != "blocked_fingerprints") {
      return storage_error("unknown top-level field " + printable(name));
    }
  }
  const auto version_it = doc.find("version");
  if (version_it == doc.end()) {
    return storage_error("missing \"version\"");
  }
  if (!version_it->is_number_integer()) {
    return storage_error("\"version\" must be an integer");
  }
  if (!version_it->is_number_unsigned() || version_it->get<std::uint64_t>() != kDocumentVersion) {
    return storage_error("unsupported version " + version_it->dump() + " (expected " +
                         std::to_string(kDocumentVersion) + ")");
  }
  const auto peers_it = doc.find("peers");
  if (peers_it == doc.end()) {
    return storage_error("missing \"peers\"");
  }
  if (!peers_it->is_object()) {
    return storage_error("\"peers\" must be a JSON object");
  }
  if (peers_it->size() > kMaxPeers) {
    return storage_error(std::to_string(peers_it->size()) + " peers (limit " + std::to_string(kMaxPeers) + ")");
  }
  Document out;
  std::size_t index = 0;
  for (const auto& [jid, rec] : peers_it->items()) {
    if (auto problem = jid_problem(jid)) {
      // The JID itself may be unprintable; name the peer by position instead.
      return storage_error("peer #" + std::to_string(index) + ": " + *problem);
    }
    MPOTR_TRY(TrustRecord record, parse_record(jid, rec));
    out.records.emplace(jid, record);
    ++index;
  }
  // Optional: documents written before blocked fingerprints existed have no such field.
  const auto blocked_it = doc.find("blocked_fingerprints");
  if (blocked_it != doc.end()) {
    MPOTR_TRY(out.blocked_fingerprints, parse_blocked_fingerprints(*blocked_it));
  }
  return out;
}

}  // namespace

Result<TrustStore> TrustStore::from_json(std::string_view json) {
  // Checked first so an oversize document is never parsed at all.
  if (json.size() > kMaxDocumentLen) {
    return storage_error("document is " + std::to_string(json.size()) + " bytes (limit " +
                         std::to_string(kMaxDocumentLen) + ")");
  }
  // Every nlohmann call above is non-throwing by construction (no-exception parsing, types
  // checked before access); this is the backstop that keeps a library surprise from escaping.
  try {
    MPOTR_TRY(Document document, parse_document(json));
    TrustStore store;
    store.m_records = std::move(document.records);
    store.m_blocked_fingerprints = std::move(document.blocked_fingerprints);
    return store;
  } catch (const nlohmann::json::exception&) {
    return storage_error("unexpected JSON library error");
  }
}

}  // namespace mpotr
