// SPDX-License-Identifier: MIT
#include "mpotr/result.h"

namespace mpotr {

std::string_view to_string(ErrorCode code) noexcept {
  // No default: -Wswitch flags a new enumerator that has no name here.
  switch (code) {
    case ErrorCode::Crypto: return "crypto";
    case ErrorCode::Storage: return "storage";
    case ErrorCode::InvalidArgument: return "invalid_argument";
    case ErrorCode::InvalidState: return "invalid_state";
    case ErrorCode::NotReady: return "not_ready";
    case ErrorCode::DecodeTruncated: return "decode_truncated";
    case ErrorCode::DecodeTrailingBytes: return "decode_trailing_bytes";
    case ErrorCode::DecodeBadVersion: return "decode_bad_version";
    case ErrorCode::DecodeUnknownType: return "decode_unknown_type";
    case ErrorCode::DecodeOversize: return "decode_oversize";
    case ErrorCode::DecodeBadValue: return "decode_bad_value";
    case ErrorCode::UnknownSession: return "unknown_session";
    case ErrorCode::UnexpectedMessage: return "unexpected_message";
    case ErrorCode::NickMismatch: return "nick_mismatch";
    case ErrorCode::NotAMember: return "not_a_member";
    case ErrorCode::RosterMismatch: return "roster_mismatch";
    case ErrorCode::BadSignature: return "bad_signature";
    case ErrorCode::BadMac: return "bad_mac";
    case ErrorCode::SessionIdMismatch: return "session_id_mismatch";
    case ErrorCode::TranscriptMismatch: return "transcript_mismatch";
    case ErrorCode::GroupKeyMismatch: return "group_key_mismatch";
    case ErrorCode::Duplicate: return "duplicate";
    case ErrorCode::Equivocation: return "equivocation";
    case ErrorCode::KeyRevoked: return "key_revoked";
    case ErrorCode::BadKeyReveal: return "bad_key_reveal";
    case ErrorCode::SplitView: return "split_view";
    case ErrorCode::LimitExceeded: return "limit_exceeded";
    case ErrorCode::IdentityBlocked: return "identity_blocked";
    case ErrorCode::IdentityChanged: return "identity_changed";
    case ErrorCode::Replay: return "replay";
    case ErrorCode::IdentityUnverified: return "identity_unverified";
    case ErrorCode::FalseAccusation: return "false_accusation";
    case ErrorCode::Internal: return "internal";
  }
  // Reached only for a value outside the enumeration (e.g. a cast from a log or the wire).
  return "unknown";
}

}  // namespace mpotr
