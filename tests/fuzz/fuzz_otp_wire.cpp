// SPDX-License-Identifier: MIT
// The one-time-pad wire formats: the input is tried as an OTP-v1 packet (spec/otp.md §3) and as
// the bytes of an OTP bundle (§10, O-26). Both parsers are strict, so whatever they accept must
// re-encode to exactly the input (one encoding per value); a refusal is one of the decode errors.
#include <cstddef>
#include <cstdint>

#include "fuzz_check.h"
#include "mpotr/otp/bundle.h"
#include "mpotr/otp/packet.h"

using namespace mpotr;

namespace {

bool decode_error(ErrorCode c) {
  return c == ErrorCode::DecodeTruncated || c == ErrorCode::DecodeTrailingBytes || c == ErrorCode::DecodeBadVersion ||
         c == ErrorCode::DecodeBadValue || c == ErrorCode::DecodeOversize;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView input(data, size);

  auto packet = otp::parse_packet(input);
  if (packet.ok()) {
    Bytes again = packet->header_bytes;
    again.insert(again.end(), packet->ciphertext.begin(), packet->ciphertext.end());
    again.insert(again.end(), packet->tag.begin(), packet->tag.end());
    FUZZ_CHECK(again == Bytes(input.begin(), input.end()));
    FUZZ_CHECK(packet->header.clen == packet->ciphertext.size());
  } else {
    FUZZ_CHECK_MSG(decode_error(packet.error().code), "packet: %s", packet.error().detail.c_str());
  }

  const std::string text = std::string(otp::kBundlePrefix) + to_base64(input);
  auto bundle = otp::decode_bundle_text(text);
  if (bundle.ok()) {
    FUZZ_CHECK(bundle->has_value());  // the prefix is there: never "not a bundle"
    auto encoded = otp::encode_bundle_text(**bundle);
    FUZZ_CHECK_MSG(encoded.ok() && *encoded == text, "bundle does not re-encode to its input");
  } else {
    FUZZ_CHECK_MSG(decode_error(bundle.error().code), "bundle: %s", bundle.error().detail.c_str());
  }
  return 0;
}
