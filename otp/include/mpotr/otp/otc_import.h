// SPDX-License-Identifier: MIT
// Import of a One Time Chat pad (mlsteele/one-time-chat: <uid>.<rid>.random.store and
// <uid>.<rid>.random.metadata) into our pad format (spec/otp.md §7).
//
// Trusted: the pad bytes, uid/rid, n_bytes, split_index, direction, encrypt_index and
// decrypt_log/decrypt_max. Checked: exactly OTC's 13 keys (n_eles == 13), file names match
// uid/rid, uid != rid, store file size == n_bytes, 0 < split < n, direction ±1, encrypt_index
// inside our own half, decrypt_log entries inside the peer's half. NOT checked: OTC's "checksum"
// (Python hash() of the items: not reproducible outside one Python 2 process).
// Everything OTC may have used is burnt (zeroed in the new pad.bin and marked used): our half up
// to encrypt_index, and the peer's half up to the furthest index OTC decrypted (gaps included:
// messages OTC never received are lost rather than risking a reused region).
// Both parties import independently and get the same pad id (BLAKE2b-128 of a label, n and the
// pad bytes) and the same layout: when OTC's direction +1 party is not the smaller id (our role
// A), the pad is mirrored (byte i becomes byte n-1-i) so that roles follow spec/otp.md O-2.
#pragma once

#include <cstdint>
#include <string>

#include "mpotr/otp/pad_store.h"

namespace mpotr::otp {

struct OtcImport {
  PadId pad_id{};
  std::string path;            // <out_dir>/<pad id hex>
  bool mirrored = false;       // the pad was byte-reversed to put role A in the low half
  std::uint64_t burnt_own = 0;   // bytes of our half OTC had used
  std::uint64_t burnt_peer = 0;  // bytes of the peer's half treated as consumed
};

// The metadata is read with read_private_file rules (mode 0600, ours); so is the store file.
// Errors: Storage (unreadable, unsafe permissions, inconsistent metadata: the detail says
// which check failed), InvalidArgument (sizes outside our limits).
Result<OtcImport> import_one_time_chat(const std::string& store_path, const std::string& metadata_path,
                                       const std::string& out_dir, const ProgressFn& progress = {});

}  // namespace mpotr::otp
