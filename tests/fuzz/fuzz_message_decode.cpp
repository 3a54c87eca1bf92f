// SPDX-License-Identifier: MIT
// Wire decoder: never crashes on any input, and is canonical — whatever it accepts re-encodes to
// exactly the same bytes (no two encodings of one message, so signed bytes are not malleable),
// and the signed prefix it reports is exactly what encode_signed_part() yields.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <variant>

#include "fuzz_check.h"
#include "mpotr/codec/messages.h"

using namespace mpotr;

namespace {

template <class M>
constexpr bool kUnsigned = std::is_same_v<M, codec::Offer> || std::is_same_v<M, codec::KeyReveal>;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView input(data, size);
  auto decoded = codec::decode(input);
  auto type = codec::peek_type(input);
  if (!decoded.ok()) {
    return 0;
  }
  FUZZ_CHECK(type.ok());
  std::visit(
      [&](const auto& m) {
        using M = std::decay_t<decltype(m)>;
        const Bytes again = codec::encode(m);
        FUZZ_CHECK_MSG(again.size() == size && std::equal(again.begin(), again.end(), input.begin()),
                       "re-encoding a decoded %s differs from the input (%zu vs %zu bytes)",
                       std::string(codec::to_string(type.value())).c_str(), again.size(), size);
        if constexpr (kUnsigned<M>) {
          FUZZ_CHECK(decoded->signed_len == size);
        } else {
          FUZZ_CHECK(decoded->signed_len == codec::encode_signed_part(m).size());
          FUZZ_CHECK(decoded->signed_len + crypto::kSignatureLen == size);
        }
        if constexpr (std::is_same_v<M, codec::Data>) {
          FUZZ_CHECK(m.type == type.value());
        }
      },
      decoded->message);
  return 0;
}
