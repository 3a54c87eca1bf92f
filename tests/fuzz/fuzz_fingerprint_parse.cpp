// SPDX-License-Identifier: MIT
// Fingerprint::parse: never crashes; whatever it accepts prints (grouped()) in the canonical
// 8×8 upper-case form, which parses back to the same fingerprint, as does the plain hex.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.h"
#include "mpotr/identity.h"

using namespace mpotr;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto fp = Fingerprint::parse(text);
  if (!fp.ok()) {
    return 0;
  }
  const std::string grouped = fp->grouped();
  FUZZ_CHECK(grouped.size() == 64 + 7);
  for (std::size_t i = 0; i < grouped.size(); ++i) {
    const char c = grouped[i];
    if (i % 9 == 8) {
      FUZZ_CHECK(c == ' ');
    } else {
      FUZZ_CHECK(std::isxdigit(static_cast<unsigned char>(c)) && !std::islower(static_cast<unsigned char>(c)));
    }
  }
  auto again = Fingerprint::parse(grouped);
  FUZZ_CHECK(again.ok() && *again == *fp && again->grouped() == grouped);
  auto plain = Fingerprint::parse(to_hex(view(fp->bytes)));
  FUZZ_CHECK(plain.ok() && *plain == *fp);
  return 0;
}
