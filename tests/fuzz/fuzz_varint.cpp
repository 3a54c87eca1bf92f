// SPDX-License-Identifier: MIT
// Varint reader: reads varints until an error or the end; every accepted value re-encodes
// (Writer::varint) to exactly the bytes it was read from (minimal encoding, one form per value),
// and reading that encoding back yields the value.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "fuzz_check.h"
#include "mpotr/codec/reader.h"

using namespace mpotr;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView input(data, size);
  codec::Reader reader(input);
  while (reader.remaining() > 0) {
    const std::size_t start = reader.position();
    auto value = reader.varint();
    if (!value.ok()) {
      const auto code = value.error().code;
      FUZZ_CHECK(code == ErrorCode::DecodeTruncated || code == ErrorCode::DecodeBadValue);
      break;
    }
    const std::size_t used = reader.position() - start;
    FUZZ_CHECK(used >= 1 && used <= 5);
    codec::Writer writer;
    writer.varint(*value);
    const Bytes& encoded = writer.data();
    FUZZ_CHECK_MSG(encoded.size() == used && std::equal(encoded.begin(), encoded.end(), input.begin() + static_cast<std::ptrdiff_t>(start)),
                   "varint %u read from %zu bytes re-encodes to %zu bytes", *value, used, encoded.size());
    codec::Reader again(view(encoded));
    auto back = again.varint();
    FUZZ_CHECK(back.ok() && *back == *value && again.remaining() == 0);
  }
  return 0;
}
