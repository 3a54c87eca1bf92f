// SPDX-License-Identifier: MIT
#include "mpotr/store/keyfile.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "mpotr/store/atomic_file.h"

namespace mpotr::store {

namespace {

constexpr int kKeyFileVersion = 1;
constexpr std::string_view kKeyFileType = "mpotr-identity";
constexpr std::string_view kCurve = "P-256";

// Overwrites a string holding secret text when the scope ends. Best effort only: copies made
// by std::string growth or inside the JSON parser's lexer are freed without being wiped.
class WipeOnExit {
 public:
  explicit WipeOnExit(std::string& s) noexcept : m_s(s) {}
  WipeOnExit(const WipeOnExit&) = delete;
  WipeOnExit& operator=(const WipeOnExit&) = delete;
  ~WipeOnExit() { secure_zero(m_s.data(), m_s.size()); }

 private:
  std::string& m_s;
};

// Written by hand rather than through nlohmann::json: every value is fixed ASCII or hex (no
// escaping), and one reserved buffer avoids scattering copies of the private key on the heap.
std::string serialize(const IdentityKey& key) {
  const SecretBytes scalar = key.private_key().scalar();
  std::string scalar_hex = to_hex(scalar.view());
  WipeOnExit wipe_hex(scalar_hex);
  std::string text;
  text.reserve(512);
  text += "{\n  \"version\": ";
  text += std::to_string(kKeyFileVersion);
  text += ",\n  \"type\": \"";
  text += kKeyFileType;
  text += "\",\n  \"curve\": \"";
  text += kCurve;
  text += "\",\n  \"private_key\": \"";
  text += scalar_hex;
  text += "\",\n  \"public_key\": \"";
  text += to_hex(view(key.public_key().point()));
  text += "\",\n  \"fingerprint\": \"";
  text += key.fingerprint().grouped();
  text += "\"\n}\n";
  return text;
}

class Parser {
 public:
  explicit Parser(const std::string& path) : m_path(path) {}

  Error fail(const std::string& detail) const {
    return make_error(ErrorCode::Storage, "key file " + m_path + ": " + detail);
  }

  // The string value of a required field (mutable so the private key can be wiped in place).
  Result<std::string*> string_field(nlohmann::json& doc, const char* name) const {
    const auto it = doc.find(name);
    if (it == doc.end()) {
      return fail(std::string("missing \"") + name + "\"");
    }
    if (!it->is_string()) {
      return fail(std::string("\"") + name + "\" must be a string");
    }
    return &it->get_ref<std::string&>();
  }

  Result<IdentityKey> parse(const std::string& text) const {
    // No exceptions: their messages quote the input, which here is secret.
    nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) {
      return fail("not valid JSON");
    }
    if (!doc.is_object()) {
      return fail("top level must be a JSON object");
    }
    for (const auto& [name, value] : doc.items()) {
      if (name != "version" && name != "type" && name != "curve" && name != "private_key" &&
          name != "public_key" && name != "fingerprint") {
        return fail("unknown field \"" + printable(name) + "\"");
      }
    }
    const auto version = doc.find("version");
    if (version == doc.end()) {
      return fail("missing \"version\"");
    }
    if (!version->is_number_unsigned() || version->get<std::uint64_t>() != kKeyFileVersion) {
      return fail("unsupported \"version\" " + printable(version->dump()) + " (expected " +
                  std::to_string(kKeyFileVersion) + ")");
    }
    MPOTR_TRY(const std::string* type, string_field(doc, "type"));
    if (*type != kKeyFileType) {
      return fail("\"type\" is \"" + printable(*type) + "\", expected \"" + std::string(kKeyFileType) + "\"");
    }
    MPOTR_TRY(const std::string* curve, string_field(doc, "curve"));
    if (*curve != kCurve) {
      return fail("unsupported \"curve\" \"" + printable(*curve) + "\" (expected \"" + std::string(kCurve) + "\")");
    }

    MPOTR_TRY(std::string * scalar_hex, string_field(doc, "private_key"));
    WipeOnExit wipe_doc_copy(*scalar_hex);
    Bytes scalar;
    const bool hex_ok = scalar_hex->size() == 2 * crypto::kScalarLen && from_hex(*scalar_hex, scalar) &&
                        scalar.size() == crypto::kScalarLen;
    auto key = hex_ok ? IdentityKey::from_scalar(view(scalar))
                      : Result<IdentityKey>(make_error(ErrorCode::DecodeBadValue));
    secure_zero(scalar.data(), scalar.size());
    if (!hex_ok) {
      return fail("\"private_key\" must be " + std::to_string(2 * crypto::kScalarLen) + " hex digits");
    }
    if (!key) {
      return fail("\"private_key\" is not a valid P-256 private key (the scalar must be between 1 and n-1)");
    }

    MPOTR_TRY(const std::string* public_hex, string_field(doc, "public_key"));
    Bytes point;
    if (public_hex->size() != 2 * crypto::kPointLen || !from_hex(*public_hex, point) ||
        point.size() != crypto::kPointLen) {
      return fail("\"public_key\" must be " + std::to_string(2 * crypto::kPointLen) + " hex digits");
    }
    if (!ct_equal(view(point), view(key->public_key().point()))) {
      return fail("\"public_key\" does not match \"private_key\"");
    }

    MPOTR_TRY(const std::string* fp_text, string_field(doc, "fingerprint"));
    const auto fp = Fingerprint::parse(*fp_text);
    if (!fp) {
      return fail("\"fingerprint\" is malformed: " + fp.error().detail);
    }
    if (!(*fp == key->fingerprint())) {
      return fail("\"fingerprint\" does not match \"private_key\"");
    }
    return std::move(key).value();
  }

 private:
  // Strings from a corrupt file may hold anything; keep messages short and printable.
  static std::string printable(std::string_view s) {
    constexpr std::size_t kMaxShown = 40;
    std::string out;
    for (std::size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      out.push_back(c >= 0x20 && c < 0x7F ? static_cast<char>(c) : '?');
    }
    if (s.size() > kMaxShown) {
      out += "...";
    }
    return out;
  }

  const std::string& m_path;
};

Result<IdentityKey> parse_and_wipe(const std::string& path, std::string& text) {
  WipeOnExit wipe_text(text);
  const Parser parser(path);
  // parse() is non-throwing by construction (no-exception parsing, types checked before
  // access); this backstop keeps a library surprise from escaping. Its message is not used:
  // it may quote the secret input.
  try {
    return parser.parse(text);
  } catch (const nlohmann::json::exception&) {
    return parser.fail("unexpected JSON library error");
  }
}

}  // namespace

Result<void> save_identity(const std::string& path, const IdentityKey& key) {
  MPOTR_CHECK(ensure_private_dir(parent_dir(path)));
  std::string text = serialize(key);
  WipeOnExit wipe_text(text);
  return write_file_atomic(path, as_bytes(text));
}

Result<IdentityKey> load_identity(const std::string& path) {
  MPOTR_TRY(std::string text, read_private_file(path, kMaxIdentityFileLen, "key file"));
  return parse_and_wipe(path, text);
}

Result<IdentityKey> load_or_create_identity(const std::string& path, Rng& rng, bool* created) {
  if (created != nullptr) {
    *created = false;
  }
  MPOTR_TRY(std::optional<std::string> existing, read_private_file_if_exists(path, kMaxIdentityFileLen, "key file"));
  if (existing) {
    return parse_and_wipe(path, *existing);
  }
  MPOTR_CHECK(ensure_private_dir(parent_dir(path)));
  MPOTR_TRY(IdentityKey key, IdentityKey::generate(rng));
  std::string text = serialize(key);
  WipeOnExit wipe_text(text);
  MPOTR_TRY(const bool made, create_file_atomic(path, as_bytes(text)));
  if (!made) {
    // Another process created it between our read and our link: its key wins.
    return load_identity(path);
  }
  if (created != nullptr) {
    *created = true;
  }
  return key;
}

}  // namespace mpotr::store
