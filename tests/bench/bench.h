// SPDX-License-Identifier: MIT
// Shared pieces of mpotr-bench: benchmark names (the report looks results up by name), the
// CPU clock the manual timings use, and the registration entry points of each source file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "op_counts.h"

namespace mpotr::bench {

// Every timing in this bench is CPU time of the calling thread (Google Benchmark's default
// "CPU" column for ordinary benchmarks; the manual timings use the same clock), so work other
// processes do on a shared machine does not inflate the numbers.
double thread_cpu_seconds() noexcept;

// Text sizes of the chat benchmarks and of the primitive floors that go with them.
inline constexpr std::size_t kSmallText = 100;
inline constexpr std::size_t kLargeText = 4096;
// Room sizes of the setup benchmark.
inline const std::vector<std::size_t> kSetupSizes = {2, 5, 10, 25, 50, 100};
// Members in the session the chat benchmarks run in.
inline constexpr std::size_t kChatMembers = 3;

// Encoded size of a Data message (what Engine::send_text broadcasts) for `members` members, a
// `text_len`-byte text and acknowledgement counts below 128 (one varint byte each).
std::size_t data_wire_size(std::size_t members, std::size_t text_len);

namespace names {
// Primitives through the engine's crypto layer (mpotr::crypto): these are the floors.
inline const std::string kSign = "crypto/ecdsa_sign";
// The deterministic signer of the test/vector mode (DeterministicRng): what setup replays use.
inline const std::string kSignReproducible = "crypto/ecdsa_sign_reproducible";
inline const std::string kVerify = "crypto/ecdsa_verify";
inline const std::string kEcdh = "crypto/ecdh";
inline const std::string kKeygen = "crypto/keygen";
inline const std::string kDecode = "crypto/point_decode";
// The same operations straight on OpenSSL: the reference the wrappers are compared with.
inline const std::string kRawSign = "openssl/ecdsa_sign";
inline const std::string kRawVerify = "openssl/ecdsa_verify";
inline const std::string kRawEcdh = "openssl/ecdh";
inline const std::string kRawKeygen = "openssl/keygen";
inline const std::string kRawDecode = "openssl/point_decode";
std::string aes(std::size_t len);
std::string sha(std::size_t len);
std::string raw_aes(std::size_t len);
std::string raw_sha(std::size_t len);
// Engine.
std::string setup(std::size_t n);
std::string send(std::size_t len);
std::string receive(std::size_t len);
}  // namespace names

void register_primitives();
void register_engine();

// Where member 0's setup time goes, by kind of engine call. The expected primitive operations
// of each part (spec §5, mpotr/engine/attempt.cpp) give its floor.
struct SetupPart {
  std::string name;
  std::size_t calls = 0;
  double seconds = 0;  // thread CPU, summed over the calls (best of a few untimed replays)
  double keygen = 0, sign = 0, verify = 0, ecdh = 0, decode = 0;  // expected operations
  OpCounts ops;        // counted operations
};

// What the setup benchmark learned about one room size besides its timing: the operations
// member 0 performed (counted once, in an untimed replay) and the traffic it processed.
struct SetupInfo {
  std::size_t n = 0;
  std::vector<SetupPart> parts;
  OpCounts ops;          // member 0, set_roster + every receive
  std::size_t messages = 0;    // payloads member 0 received (its own reflections included)
  std::size_t bytes = 0;       // their total size
  double room_cpu_seconds = 0;  // untimed precomputation: the whole room, every member
};
const std::map<std::size_t, SetupInfo>& setup_infos();

// Actual wire sizes of the chat messages the send/receive benchmarks used (by text length).
const std::map<std::size_t, std::size_t>& chat_wire_sizes();
// Operations of one send_text / receive call, by benchmark name (counted in an untimed probe).
const std::map<std::string, OpCounts>& chat_ops();

}  // namespace mpotr::bench
