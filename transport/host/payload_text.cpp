// SPDX-License-Identifier: MIT
#include "mpotr/codec/messages.h"
#include "mpotr/transport/stanza.h"

namespace mpotr::transport {

std::string encode_payload_text(ByteView payload) { return to_base64(payload); }

Result<Bytes> decode_payload_text(std::string_view text) {
  if (text.size() > kMaxPayloadTextLen) {
    return Error{ErrorCode::DecodeOversize, "payload text of " + std::to_string(text.size()) + " characters exceeds " +
                                                std::to_string(kMaxPayloadTextLen)};
  }
  Bytes out;
  if (!from_base64(text, out)) {
    return Error{ErrorCode::DecodeBadValue, "payload text is not canonical base64"};
  }
  return out;
}

bool wants_fallback_body(ByteView payload) {
  const auto type = codec::peek_type(payload);
  return type.ok() && type.value() == codec::MessageType::Data;
}

}  // namespace mpotr::transport
