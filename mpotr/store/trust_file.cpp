// SPDX-License-Identifier: MIT
#include "mpotr/store/trust_file.h"

#include <optional>
#include <string>
#include <utility>

#include "mpotr/store/atomic_file.h"

namespace mpotr::store {

Result<TrustStore> load_trust(const std::string& path) {
  MPOTR_TRY(std::optional<std::string> text, read_private_file_if_exists(path, kMaxTrustFileLen, "trust file"));
  if (!text) {
    return TrustStore{};  // first run: nothing trusted yet
  }
  auto store = TrustStore::from_json(*text);
  if (!store) {
    return make_error(ErrorCode::Storage, "trust file " + path + ": " + store.error().detail);
  }
  return std::move(store).value();
}

Result<void> save_trust(const std::string& path, const TrustStore& store) {
  MPOTR_CHECK(ensure_private_dir(parent_dir(path)));
  const std::string text = store.to_json();
  return write_file_atomic(path, as_bytes(text));
}

}  // namespace mpotr::store
