// SPDX-License-Identifier: MIT
// Pads on disk (spec/otp.md §5): one directory per pad, <dir>/<pad_id hex>/ (mode 0700) with
//   pad.bin          the raw pad bytes (offsets are absolute), used regions overwritten by zeros
//   descriptor.json  immutable: format, pad id, peer ids, size, fence, our role, created
//   state.bin        the persisted PadState (atomic replace: temp + fsync + rename + dir fsync)
//   lock             flock()ed while a PadStore is open (one process per pad)
// All files mode 0600. Not thread-safe: one PadStore per pad, used by one thread.
//
// Crash safety. Send: (1) a new state reserving a block is made durable, (2) the block is read
// into memory, then overwritten with zeros and fdatasync'ed, (3) messages are encrypted from the
// in-memory block. A crash after (1) burns the unused rest of the block; nothing before (1)
// releases a byte. On open, send_ptr restarts at the durable reservation pointer, so a region
// is never handed out twice. Zeroed bytes double as tombstones: if a reserved block holds an
// all-zero 16-byte chunk, the state was rolled back and the store halts (fail closed).
// Receive: the MAC is verified first (a failure writes nothing and burns nothing), then the
// consumed region is recorded durably, then zeroed and fdatasync'ed, then the message is
// returned. A crash after recording loses that message, never replays it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mpotr/bytes.h"
#include "mpotr/otp/packet.h"
#include "mpotr/otp/pad_state.h"
#include "mpotr/result.h"
#include "mpotr/rng.h"

namespace mpotr::otp {

constexpr std::size_t kMaxDescriptorSize = 16 * 1024;
constexpr std::size_t kMaxPeerIdLen = 255;
constexpr std::size_t kMaxPadsListed = 10000;

struct PadDescriptor {
  PadId pad_id{};
  std::string me;    // our id (bare JID)
  std::string peer;  // the peer's id
  Role role = Role::A;  // A iff me < peer (bytewise); written explicitly, checked on load
  std::uint64_t size = 0;
  std::uint64_t fence = 0;
  std::string created;  // ISO 8601 UTC, informational
  std::string source;   // where the bytes came from ("getrandom", "/dev/hwrng", "one-time-chat import", …)
};

struct PadStatus {
  PadDescriptor descriptor;
  SendPhase phase = SendPhase::Healthy;
  std::uint64_t generation = 0;
  std::uint64_t send_remaining = 0;  // bytes we can still send from (reserved in memory + unreserved)
  std::uint64_t send_used = 0;       // bytes of our half used or burnt (our half − send_remaining)
  std::uint64_t peer_consumed = 0;   // bytes of the peer's half we have consumed
  std::uint64_t peer_remaining = 0;  // peer's half minus the furthest region consumed so far
  std::vector<Range> gaps;           // holes in the peer's half (lost / reordered messages)
  std::uint64_t next_seq = 0;
};

// Fields of a message to send; the store fills in seq.
struct OutgoingMessage {
  MessageType type = MessageType::Chat;
  std::optional<GroupContext> group;  // required iff type == Group
  Bytes body;
};

struct SentPacket {
  Bytes packet;  // the wire bytes (base64 them for XMPP)
  Range region;
  std::uint64_t seq = 0;
};

struct ReceivedMessage {
  Plaintext plaintext;
  Range region;
  bool gap_detected = false;   // the region skipped past unconsumed peer bytes
  bool out_of_order = false;   // the region fills an earlier gap
};

// Test hook: called at each named step; returning false makes the operation stop right there
// with an Internal error, as if the process had died (what is on disk stays as it is); the
// PadStore then refuses to send (discard it and open the pad again).
enum class CrashPoint : std::uint8_t {
  SendAfterStateDurable,   // reservation persisted, block not yet zeroed
  SendAfterBlockZeroed,    // block zeroed on disk, nothing encrypted yet
  SendBeforeRelease,       // packet built, not yet returned
  ReceiveAfterVerify,      // MAC verified, nothing written
  ReceiveAfterRecord,      // consumed region persisted, region not yet zeroed
  ReceiveAfterZero,        // region zeroed, message not yet returned
};
using CrashHook = std::function<bool(CrashPoint)>;

class PadStore {
 public:
  // Opens <dir>/<pad_id hex>: checks modes/ownership, the descriptor, the state (fail closed:
  // Storage when missing/corrupt/inconsistent), takes the lock (Storage "pad in use" if held).
  static Result<std::unique_ptr<PadStore>> open(const std::string& dir, const PadId& pad_id);
  ~PadStore();
  PadStore(const PadStore&) = delete;
  PadStore& operator=(const PadStore&) = delete;

  // Reserve (durable, at most one write per reservation block) → destroy → encrypt → release.
  // Errors: LimitExceeded "pad exhausted", InvalidState (halted), InvalidArgument (bad message),
  // Storage (I/O; the store halts if the on-disk state may be ahead of memory).
  Result<SentPacket> send_package(const OutgoingMessage& msg);

  // Would send_package(msg) succeed, barring I/O errors? Returns the pad cost. Touches nothing:
  // a group send pre-checks every recipient's pad first, so it is all-or-nothing (notes §3.9).
  // Errors: as send_package (LimitExceeded "pad exhausted", InvalidState, InvalidArgument).
  Result<std::uint64_t> check_can_send(const OutgoingMessage& msg) const;

  // Verify → record → destroy → release. Errors: the parse_packet errors, UnknownSession (other
  // pad id), NickMismatch (sender role is ours: a reflected packet), BadMac, Duplicate, Replay,
  // DecodeBadValue (region outside the peer's half), Decode* (inner, after the MAC), Storage.
  // Any error leaves the files and the state unchanged, except Storage after recording.
  Result<ReceivedMessage> receive_unpackage(ByteView packet);

  PadStatus status() const;
  const PadDescriptor& descriptor() const noexcept { return m_desc; }
  const PadState& state() const noexcept { return m_state; }

  // Bytes reserved per durable write (default kDefaultReserveBlock; 1..kMaxReserveBlock).
  Result<void> set_reserve_block(std::uint64_t bytes);
  void set_crash_hook(CrashHook hook) { m_hook = std::move(hook); }

 private:
  PadStore() = default;
  Result<void> persist(const PadState& next);
  Result<void> extend_reservation(std::uint64_t need);
  bool hook(CrashPoint p) const { return !m_hook || m_hook(p); }
  // After a hook stop the object is "dead": sending is disabled in memory (not on disk).
  Error crashed() {
    m_state = halted(m_state);
    return make_error(ErrorCode::Internal, "stopped by the crash hook");
  }

  std::string m_path;
  PadDescriptor m_desc;
  PadState m_state;
  int m_pad_fd = -1;
  int m_lock_fd = -1;
  std::uint64_t m_block = kDefaultReserveBlock;
  // The reserved, already-zeroed-on-disk bytes [m_window.begin, m_window.end) held in memory.
  SecretBytes m_window_bytes;
  Range m_window;
  CrashHook m_hook;
};

// Ids of the pads under dir (subdirectories holding a descriptor.json), sorted. Storage on I/O.
Result<std::vector<PadId>> list_pads(const std::string& dir);
// The descriptor of one pad, without opening (locking) it.
Result<PadDescriptor> read_descriptor(const std::string& dir, const PadId& pad_id);

// Where pad bytes come from.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual Result<void> read(std::uint8_t* out, std::size_t len) = 0;
  virtual std::string name() const = 0;
};
// getrandom() via an Rng (SystemRng by default; DeterministicRng in tests only).
class RngByteSource final : public ByteSource {
 public:
  explicit RngByteSource(Rng& rng, std::string name = "getrandom") : m_rng(rng), m_name(std::move(name)) {}
  Result<void> read(std::uint8_t* out, std::size_t len) override {
    m_rng.fill(out, len);
    return {};
  }
  std::string name() const override { return m_name; }

 private:
  Rng& m_rng;
  std::string m_name;
};
// A file or character device (/dev/random, /dev/hwrng, a file of bytes). Short reads are
// retried; end of file is a Storage error.
class FileByteSource final : public ByteSource {
 public:
  static Result<std::unique_ptr<FileByteSource>> open(const std::string& path);
  ~FileByteSource() override;
  FileByteSource(const FileByteSource&) = delete;
  FileByteSource& operator=(const FileByteSource&) = delete;
  Result<void> read(std::uint8_t* out, std::size_t len) override;
  std::string name() const override { return m_path; }

 private:
  FileByteSource(int fd, std::string path) : m_fd(fd), m_path(std::move(path)) {}
  int m_fd;
  std::string m_path;
};

// (bytes written so far, total); called after every chunk (≤ 1 MiB) and at the end.
using ProgressFn = std::function<void(std::uint64_t done, std::uint64_t total)>;

struct GeneratedPad {
  PadId pad_id{};
  std::string path_a;  // <dir_a>/<hex>, the pad of party id_a
  std::string path_b;
};
// Generates one pad of `size` bytes and writes both parties' copies (identical bytes, each
// with its own descriptor and fresh state): dir_a for id_a, dir_b for id_b. Roles by bytewise
// order of the ids (which must differ). The pad id is taken from `source` too.
// Errors: InvalidArgument (size, ids), Storage, and the source's errors. Partial output is removed.
Result<GeneratedPad> generate_pad(const std::string& dir_a, const std::string& id_a, const std::string& dir_b,
                                  const std::string& id_b, std::uint64_t size, ByteSource& source,
                                  const ProgressFn& progress = {});

}  // namespace mpotr::otp
