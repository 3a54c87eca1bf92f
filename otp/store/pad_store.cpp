// SPDX-License-Identifier: MIT
// Pad files. Write order (the reason a crash can burn pad but never reuse it) is in pad_store.h.
#include "mpotr/otp/pad_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

#include "mpotr/crypto/crypto.h"
#include "mpotr/otp/otc_import.h"
#include "mpotr/store/atomic_file.h"
#include "mpotr/store/unique_fd.h"

namespace mpotr::otp {
namespace {

using store::UniqueFd;
constexpr std::size_t kChunk = 1u << 20;  // generation and zeroing write size
constexpr std::size_t kMaxStateFile = 128 + kMaxReceivedRanges * 16;
constexpr const char* kDescriptorFormat = "mpotr-otp-pad/1";

Error sys_error(const std::string& what, const std::string& path) {
  return make_error(ErrorCode::Storage, what + " " + path + ": " + std::strerror(errno));
}

Result<void> pread_all(int fd, std::uint8_t* out, std::size_t len, std::uint64_t off, const std::string& path) {
  while (len > 0) {
    const ssize_t n = ::pread(fd, out, len, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("cannot read", path);
    if (n == 0) return make_error(ErrorCode::Storage, "pad file shorter than its descriptor: " + path);
    out += n;
    len -= static_cast<std::size_t>(n);
    off += static_cast<std::uint64_t>(n);
  }
  return {};
}

Result<void> pwrite_all(int fd, const std::uint8_t* in, std::size_t len, std::uint64_t off, const std::string& path) {
  while (len > 0) {
    const ssize_t n = ::pwrite(fd, in, len, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return sys_error("cannot write", path);
    in += n;
    len -= static_cast<std::size_t>(n);
    off += static_cast<std::uint64_t>(n);
  }
  return {};
}

// Overwrites [r.begin, r.end) of the pad with zeros and makes it durable (destroy after use).
Result<void> zero_region(int fd, Range r, const std::string& path) {
  const Bytes zeros(std::min<std::uint64_t>(r.size(), kChunk), 0);
  for (std::uint64_t off = r.begin; off < r.end;) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(zeros.size(), r.end - off));
    MPOTR_CHECK(pwrite_all(fd, zeros.data(), n, off, path));
    off += n;
  }
  if (::fdatasync(fd) != 0) return sys_error("cannot fdatasync", path);
  return {};
}

// A zeroed 16-byte chunk marks destroyed pad (random pad has one with probability 2^-128).
bool has_tombstone(const SecretBytes& b) {
  static const std::uint8_t zero[16] = {};
  for (std::size_t i = 0; i + 16 <= b.size(); i += 16)
    if (ct_equal({b.data() + i, 16}, {zero, 16})) return true;
  return false;
}

Result<void> check_id(const std::string& id, const char* what) {
  if (id.empty() || id.size() > kMaxPeerIdLen || id.find('\0') != std::string::npos)
    return make_error(ErrorCode::InvalidArgument, std::string(what) + " must be 1..255 bytes without NUL");
  return {};
}

std::string now_utc() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string pad_path(const std::string& dir, const PadId& id) { return (dir.empty() ? "." : dir) + "/" + pad_id_hex(id); }

Bytes descriptor_json(const PadDescriptor& d) {
  const nlohmann::json j = {{"format", kDescriptorFormat}, {"pad_id", pad_id_hex(d.pad_id)}, {"me", d.me},
                            {"peer", d.peer}, {"role", d.role == Role::A ? "A" : "B"}, {"size", d.size},
                            {"fence", d.fence}, {"created", d.created}, {"source", d.source}};
  const std::string s = j.dump(2) + "\n";
  return Bytes(s.begin(), s.end());
}

Result<PadDescriptor> parse_descriptor(const std::string& text) {
  PadDescriptor d;
  try {
    const auto j = nlohmann::json::parse(text);
    if (j.at("format").get<std::string>() != kDescriptorFormat)
      return make_error(ErrorCode::Storage, "pad descriptor: unknown format");
    MPOTR_TRY(d.pad_id, pad_id_from_hex(j.at("pad_id").get<std::string>()));
    d.me = j.at("me").get<std::string>();
    d.peer = j.at("peer").get<std::string>();
    const auto role = j.at("role").get<std::string>();
    if (role != "A" && role != "B") return make_error(ErrorCode::Storage, "pad descriptor: role must be A or B");
    d.role = role == "A" ? Role::A : Role::B;
    d.size = j.at("size").get<std::uint64_t>();
    d.fence = j.at("fence").get<std::uint64_t>();
    d.created = j.at("created").get<std::string>();
    d.source = j.at("source").get<std::string>();
  } catch (const std::exception& e) {
    return make_error(ErrorCode::Storage, std::string("pad descriptor: ") + e.what());
  }
  if (!check_id(d.me, "me").ok() || !check_id(d.peer, "peer").ok() || d.me == d.peer)
    return make_error(ErrorCode::Storage, "pad descriptor: bad party ids");
  // Roles are explicit, but must agree with the ordering rule (spec/otp.md O-2): no silent role swap.
  if ((d.me < d.peer) != (d.role == Role::A)) return make_error(ErrorCode::Storage, "pad descriptor: role contradicts id order");
  if (d.size < kMinPadSize || d.size > kMaxPadSize || d.fence == 0 || d.fence >= d.size)
    return make_error(ErrorCode::Storage, "pad descriptor: size or fence out of range");
  return d;
}

}  // namespace

Result<PadDescriptor> read_descriptor(const std::string& dir, const PadId& pad_id) {
  const std::string path = pad_path(dir, pad_id);
  MPOTR_TRY(auto text, store::read_private_file(path + "/descriptor.json", kMaxDescriptorSize, "pad descriptor"));
  MPOTR_TRY(auto d, parse_descriptor(text));
  if (d.pad_id != pad_id) return make_error(ErrorCode::Storage, "pad descriptor names another pad id: " + path);
  return d;
}

Result<std::vector<PadId>> list_pads(const std::string& dir) {
  std::vector<PadId> out;
  DIR* d = ::opendir(dir.empty() ? "." : dir.c_str());
  if (d == nullptr) return sys_error("cannot list", dir);
  while (dirent* e = ::readdir(d)) {
    auto id = pad_id_from_hex(e->d_name);
    if (!id.ok()) continue;
    struct stat st {};
    const std::string desc = pad_path(dir, *id) + "/descriptor.json";
    if (::lstat(desc.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (out.size() >= kMaxPadsListed) {
      ::closedir(d);
      return make_error(ErrorCode::LimitExceeded, "more than kMaxPadsListed pads in " + dir);
    }
    out.push_back(*id);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::unique_ptr<PadStore>> PadStore::open(const std::string& dir, const PadId& pad_id) {
  std::unique_ptr<PadStore> s(new PadStore());
  s->m_path = pad_path(dir, pad_id);
  struct stat st {};
  if (::lstat(s->m_path.c_str(), &st) != 0) return sys_error("cannot open pad directory", s->m_path);
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 077) != 0)
    return make_error(ErrorCode::Storage, "pad directory must be a directory of ours with mode 0700: " + s->m_path);
  // One process per pad: a second one could hand out the same reservation.
  // The descriptors belong to *s from here on: its destructor closes them on every error path.
  s->m_lock_fd = ::open((s->m_path + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (s->m_lock_fd < 0) return sys_error("cannot open lock file in", s->m_path);
  if (::flock(s->m_lock_fd, LOCK_EX | LOCK_NB) != 0)
    return make_error(ErrorCode::Storage, "pad in use by another process: " + s->m_path);
  MPOTR_TRY(s->m_desc, read_descriptor(dir, pad_id));
  MPOTR_TRY(auto state_text, store::read_private_file(s->m_path + "/state.bin", kMaxStateFile, "pad state"));
  MPOTR_TRY(s->m_state, decode_state(as_bytes(state_text)));
  const PadState& ps = s->m_state;
  if (ps.pad_id != pad_id || ps.me != s->m_desc.role || ps.size != s->m_desc.size || ps.fence != s->m_desc.fence)
    return make_error(ErrorCode::Storage, "pad state inconsistent: does not match the descriptor");
  s->m_pad_fd = ::open((s->m_path + "/pad.bin").c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
  if (s->m_pad_fd < 0) return sys_error("cannot open", s->m_path + "/pad.bin");
  if (::fstat(s->m_pad_fd, &st) != 0) return sys_error("cannot stat", s->m_path + "/pad.bin");
  if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 077) != 0)
    return make_error(ErrorCode::Storage, "pad.bin must be a regular file of ours with mode 0600: " + s->m_path);
  if (static_cast<std::uint64_t>(st.st_size) != s->m_desc.size)
    return make_error(ErrorCode::Storage, "pad.bin size differs from the descriptor: " + s->m_path);
  s->m_window = {ps.send_ptr, ps.send_ptr};
  return s;
}

PadStore::~PadStore() {
  if (m_pad_fd >= 0) ::close(m_pad_fd);
  if (m_lock_fd >= 0) ::close(m_lock_fd);  // releases the flock
}

Result<void> PadStore::set_reserve_block(std::uint64_t bytes) {
  if (bytes == 0 || bytes > kMaxReserveBlock) return make_error(ErrorCode::InvalidArgument, "reserve block must be 1..kMaxReserveBlock");
  m_block = bytes;
  return {};
}

Result<void> PadStore::persist(const PadState& next) {
  return store::write_file_atomic(m_path + "/state.bin", view(encode_state(next)));
}

Result<void> PadStore::extend_reservation(std::uint64_t need) {
  const std::uint64_t have = reserved_bytes(m_state);
  const std::uint64_t want = std::min<std::uint64_t>(std::max<std::uint64_t>(m_block, need - have), kMaxReserveBlock);
  MPOTR_TRY(auto r, reserve_block(m_state, want));
  // Pre-check before anything is persisted: a message that cannot fit burns nothing.
  if (reserved_bytes(r.state) < need)
    return make_error(ErrorCode::LimitExceeded, "pad exhausted: the message needs " + std::to_string(need) +
                                                    " pad bytes, " + std::to_string(have + unreserved_bytes(m_state)) + " left");
  // (1) Durable first: after this, no later run hands out any byte of r.block again.
  if (auto w = persist(r.state); !w.ok()) {
    m_state = halted(m_state);  // the disk may now be ahead of memory: stop, fail closed
    return std::move(w).error();
  }
  if (!hook(CrashPoint::SendAfterStateDurable)) return crashed();
  // (2) Read the block, check it was never destroyed, destroy it on disk before any use.
  SecretBytes blk(static_cast<std::size_t>(r.block.size()));
  if (auto rd = pread_all(m_pad_fd, blk.data(), blk.size(), r.block.begin, m_path + "/pad.bin"); !rd.ok()) {
    m_state = halted(r.state);
    return std::move(rd).error();
  }
  if (has_tombstone(blk)) {
    // Our state was rolled back (restored backup, copied device): these bytes were used before.
    m_state = halted(r.state);
    (void)persist(m_state);  // best effort: the tombstones stop a later run anyway
    return make_error(ErrorCode::Storage, "pad state inconsistent: reserved pad bytes were already destroyed (state rolled back?); sending halted");
  }
  if (auto z = zero_region(m_pad_fd, r.block, m_path + "/pad.bin"); !z.ok()) {
    m_state = halted(r.state);
    return std::move(z).error();
  }
  if (!hook(CrashPoint::SendAfterBlockZeroed)) return crashed();
  // (3) Keep the unused rest of the old window, contiguous with the new block.
  SecretBytes win;
  if (m_state.me == Role::A) {
    const auto keep_from = static_cast<std::size_t>(m_state.send_ptr - m_window.begin);
    win = SecretBytes(ByteView(m_window_bytes.view()).subspan(keep_from));
    const std::size_t old = win.size();
    win.resize(old + blk.size());
    std::copy(blk.data(), blk.data() + blk.size(), win.data() + old);
    m_window = {m_state.send_ptr, r.state.reserve_ptr};
  } else {
    const auto keep_to = static_cast<std::size_t>(m_state.send_ptr - m_window.begin);
    win = SecretBytes(blk.size() + keep_to);
    std::copy(blk.data(), blk.data() + blk.size(), win.data());
    std::copy(m_window_bytes.data(), m_window_bytes.data() + keep_to, win.data() + blk.size());
    m_window = {r.state.reserve_ptr, m_state.send_ptr};
  }
  m_window_bytes = std::move(win);
  m_state = r.state;
  return {};
}

Result<std::uint64_t> PadStore::check_can_send(const OutgoingMessage& msg) const {
  if (m_state.phase == SendPhase::Halted) return make_error(ErrorCode::InvalidState, "pad halted after an inconsistency: sending disabled");
  const Plaintext p{msg.type, 0, msg.group, msg.body};
  MPOTR_TRY(const std::size_t cost, pad_cost(p));
  const std::uint64_t left = reserved_bytes(m_state) + unreserved_bytes(m_state);
  if (left < cost)
    return make_error(ErrorCode::LimitExceeded, "pad exhausted: the message needs " + std::to_string(cost) +
                                                    " pad bytes, " + std::to_string(left) + " left");
  return std::uint64_t{cost};
}

Result<SentPacket> PadStore::send_package(const OutgoingMessage& msg) {
  if (m_state.phase == SendPhase::Halted) return make_error(ErrorCode::InvalidState, "pad halted after an inconsistency: sending disabled");
  Plaintext p{msg.type, 0, msg.group, msg.body};
  MPOTR_TRY(const std::size_t cost, pad_cost(p));
  if (reserved_bytes(m_state) < cost) MPOTR_CHECK(extend_reservation(cost));
  MPOTR_TRY(auto t, take(m_state, cost));
  p.seq = t.seq;
  MPOTR_TRY(auto inner, encode_inner(p));
  const auto at = static_cast<std::size_t>(t.region.begin - m_window.begin);
  SecretBytes region(ByteView(m_window_bytes.view()).subspan(at, cost));
  PacketHeader h{m_state.me, m_state.pad_id, t.region.begin, static_cast<std::uint32_t>(inner.size())};
  MPOTR_TRY(auto packet, seal_packet(h, region, view(inner)));
  // The in-memory copy is destroyed too; the disk copy was zeroed at reservation.
  secure_zero(m_window_bytes.data() + at, cost);
  m_state = t.state;
  if (!hook(CrashPoint::SendBeforeRelease)) return crashed();
  return SentPacket{std::move(packet), t.region, t.seq};
}

Result<ReceivedMessage> PadStore::receive_unpackage(ByteView packet) {
  MPOTR_TRY(auto parsed, parse_packet(packet));
  const PacketHeader& h = parsed.header;
  if (h.pad_id != m_state.pad_id) return make_error(ErrorCode::UnknownSession, "packet for another pad");
  if (h.sender == m_state.me) return make_error(ErrorCode::NickMismatch, "packet claims our own role (reflected?)");
  const Range region{h.offset, h.offset + h.region_len()};
  MPOTR_CHECK(check_acceptable(m_state, region));
  SecretBytes pad(static_cast<std::size_t>(region.size()));
  MPOTR_CHECK(pread_all(m_pad_fd, pad.data(), pad.size(), region.begin, m_path + "/pad.bin"));
  // Zeroed bytes: consumed before although our record says not (replay after a rolled-back state).
  if (has_tombstone(pad)) return make_error(ErrorCode::Duplicate, "pad region already destroyed (replayed packet)");
  MPOTR_TRY(auto inner, open_packet(parsed, pad));
  MPOTR_TRY(auto plain, decode_inner(view(inner)));
  if (!hook(CrashPoint::ReceiveAfterVerify)) return crashed();
  ReceivedMessage out;
  out.region = region;
  // Gap / reorder flags against the frontier of the peer's consumed bytes.
  if (!m_state.received.empty()) {
    if (h.sender == Role::A) {
      const std::uint64_t frontier = m_state.received.back().end;
      out.gap_detected = region.begin > frontier;
      out.out_of_order = region.end <= frontier;
    } else {
      const std::uint64_t frontier = m_state.received.front().begin;
      out.gap_detected = region.end < frontier;
      out.out_of_order = region.begin >= frontier;
    }
  } else {
    out.gap_detected = h.sender == Role::A ? region.begin > 0 : region.end < m_state.size;
  }
  MPOTR_TRY(auto next, accept(m_state, region, plain.seq));
  // Record before release: once durable, this region is refused forever. If the write fails
  // the disk may hold either state: memory takes the new one (refuse, never decrypt twice) and
  // nothing is released.
  auto written = persist(next);
  m_state = std::move(next);
  if (!written.ok()) return std::move(written).error();
  if (!hook(CrashPoint::ReceiveAfterRecord)) return crashed();
  MPOTR_CHECK(zero_region(m_pad_fd, region, m_path + "/pad.bin"));
  if (!hook(CrashPoint::ReceiveAfterZero)) return crashed();
  out.plaintext = std::move(plain);
  return out;
}

PadStatus PadStore::status() const {
  PadStatus st;
  st.descriptor = m_desc;
  st.generation = m_state.generation;
  st.send_remaining = unreserved_bytes(m_state) + reserved_bytes(m_state);
  st.send_used = half_of(m_state, m_state.me).size() - st.send_remaining;
  st.phase = m_state.phase == SendPhase::Halted ? SendPhase::Halted
             : st.send_remaining == 0           ? SendPhase::Exhausted
                                                : SendPhase::Healthy;
  const Range peer = half_of(m_state, other(m_state.me));
  for (const auto& r : m_state.received) st.peer_consumed += r.size();
  if (m_state.received.empty()) {
    st.peer_remaining = peer.size();
  } else if (other(m_state.me) == Role::A) {
    st.peer_remaining = peer.end - m_state.received.back().end;
  } else {
    st.peer_remaining = m_state.received.front().begin - peer.begin;
  }
  st.gaps = gaps(m_state);
  st.next_seq = m_state.next_seq;
  return st;
}

// ---- byte sources and generation ----

Result<std::unique_ptr<FileByteSource>> FileByteSource::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return sys_error("cannot open byte source", path);
  return std::unique_ptr<FileByteSource>(new FileByteSource(fd, path));
}

FileByteSource::~FileByteSource() {
  if (m_fd >= 0) ::close(m_fd);
}

Result<void> FileByteSource::read(std::uint8_t* out, std::size_t len) {
  while (len > 0) {
    const ssize_t n = ::read(m_fd, out, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("cannot read byte source", m_path);
    if (n == 0) return make_error(ErrorCode::Storage, "byte source ended early: " + m_path);
    out += n;
    len -= static_cast<std::size_t>(n);
  }
  return {};
}

namespace {

struct PadFiles {
  std::string path;
  UniqueFd fd;
};

void remove_partial(const std::string& path) {
  for (const char* f : {"/pad.bin", "/descriptor.json", "/state.bin", "/lock"}) (void)::unlink((path + f).c_str());
  (void)::rmdir(path.c_str());
}

Result<PadFiles> create_pad_dir(const std::string& dir, const PadId& id) {
  MPOTR_CHECK(store::ensure_private_dir(dir));
  PadFiles f;
  f.path = pad_path(dir, id);
  if (::mkdir(f.path.c_str(), 0700) != 0) return sys_error("cannot create pad directory", f.path);
  f.fd.reset(::open((f.path + "/pad.bin").c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!f.fd.valid()) {
    const Error e = sys_error("cannot create", f.path + "/pad.bin");
    remove_partial(f.path);
    return e;
  }
  return f;
}

// pad.bin durable first, then state, then the descriptor last: list_pads only shows pads whose
// descriptor exists, i.e. complete ones.
Result<void> finish_pad(PadFiles& f, const PadDescriptor& d, const PadState& st) {
  if (::fdatasync(f.fd.get()) != 0) return sys_error("cannot fdatasync", f.path + "/pad.bin");
  if (f.fd.close() != 0) return sys_error("cannot close", f.path + "/pad.bin");
  MPOTR_CHECK(store::write_file_atomic(f.path + "/state.bin", view(encode_state(st))));
  MPOTR_TRY(const bool created, store::create_file_atomic(f.path + "/descriptor.json", view(descriptor_json(d))));
  if (!created) return make_error(ErrorCode::Storage, "descriptor already exists: " + f.path);
  return {};
}

}  // namespace

Result<GeneratedPad> generate_pad(const std::string& dir_a, const std::string& id_a, const std::string& dir_b,
                                  const std::string& id_b, std::uint64_t size, ByteSource& source,
                                  const ProgressFn& progress) {
  MPOTR_CHECK(check_id(id_a, "id_a"));
  MPOTR_CHECK(check_id(id_b, "id_b"));
  if (id_a == id_b) return make_error(ErrorCode::InvalidArgument, "the two parties must differ");
  if (size < kMinPadSize || size > kMaxPadSize) return make_error(ErrorCode::InvalidArgument, "pad size out of range");
  PadId id{};
  MPOTR_CHECK(source.read(id.data(), id.size()));
  MPOTR_TRY(auto fa, create_pad_dir(dir_a, id));
  auto fb_r = create_pad_dir(dir_b, id);
  if (!fb_r.ok()) {
    remove_partial(fa.path);
    return std::move(fb_r).error();
  }
  PadFiles fb = std::move(fb_r).value();
  auto fail = [&](Error e) -> Error {
    fa.fd.reset();
    fb.fd.reset();
    remove_partial(fa.path);
    remove_partial(fb.path);
    return e;
  };
  SecretBytes chunk(kChunk);
  for (std::uint64_t done = 0; done < size;) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, size - done));
    if (auto r = source.read(chunk.data(), n); !r.ok()) return fail(std::move(r).error());
    if (auto r = pwrite_all(fa.fd.get(), chunk.data(), n, done, fa.path); !r.ok()) return fail(std::move(r).error());
    if (auto r = pwrite_all(fb.fd.get(), chunk.data(), n, done, fb.path); !r.ok()) return fail(std::move(r).error());
    done += n;
    if (progress) progress(done, size);
  }
  const std::string created = now_utc();
  const Role role_a = id_a < id_b ? Role::A : Role::B;
  const std::uint64_t fence = default_fence(size);
  const PadDescriptor da{id, id_a, id_b, role_a, size, fence, created, source.name()};
  const PadDescriptor db{id, id_b, id_a, other(role_a), size, fence, created, source.name()};
  MPOTR_TRY(const PadState st_a, initial_state(id, role_a, size, fence));
  MPOTR_TRY(const PadState st_b, initial_state(id, other(role_a), size, fence));
  if (auto r = finish_pad(fa, da, st_a); !r.ok()) return fail(std::move(r).error());
  if (auto r = finish_pad(fb, db, st_b); !r.ok()) return fail(std::move(r).error());
  return GeneratedPad{id, fa.path, fb.path};
}

// ---- One Time Chat import (rules in otc_import.h) ----
namespace {

constexpr std::size_t kMaxOtcMetadata = 1u << 20;  // decrypt_log grows per message
constexpr std::size_t kMaxOtcLogEntries = 1u << 20;

Error otc_bad(const std::string& why) { return make_error(ErrorCode::Storage, "One Time Chat metadata: " + why); }

std::string base_name(const std::string& p) {
  const auto slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

Result<std::uint64_t> parse_u64(std::string_view s) {
  if (s.empty() || s.size() > 19) return otc_bad("bad number in decrypt_log");
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return otc_bad("bad number in decrypt_log");
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

// [lo, hi] inclusive pairs of "start-end," entries.
Result<std::vector<std::pair<std::uint64_t, std::uint64_t>>> parse_decrypt_log(const std::string& log) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  std::size_t pos = 0;
  while (pos < log.size()) {
    const auto comma = log.find(',', pos);
    if (comma == std::string::npos) return otc_bad("decrypt_log entry without ','");
    const std::string_view entry(log.data() + pos, comma - pos);
    const auto dash = entry.find('-');
    if (dash == std::string_view::npos) return otc_bad("decrypt_log entry without '-'");
    MPOTR_TRY(const auto a, parse_u64(entry.substr(0, dash)));
    MPOTR_TRY(const auto b, parse_u64(entry.substr(dash + 1)));
    out.emplace_back(std::min(a, b), std::max(a, b));
    if (out.size() > kMaxOtcLogEntries) return otc_bad("decrypt_log too long");
    pos = comma + 1;
  }
  return out;
}

Range mirror(Range r, std::uint64_t n, bool m) { return m ? Range{n - r.end, n - r.begin} : r; }

}  // namespace

Result<OtcImport> import_one_time_chat(const std::string& store_path, const std::string& metadata_path,
                                       const std::string& out_dir, const ProgressFn& progress) {
  MPOTR_TRY(const auto text, store::read_private_file(metadata_path, kMaxOtcMetadata, "One Time Chat metadata"));
  std::string uid, rid, log, rservice;
  std::uint64_t n = 0, split = 0, e = 0, dmax = 0;
  std::int64_t direction = 0;
  try {
    const auto j = nlohmann::json::parse(text);
    static const char* const keys[] = {"uid", "rid", "store_filename", "metadata_filename", "n_bytes", "rservice", "split_index",
                                       "direction", "encrypt_index", "decrypt_log", "decrypt_max", "n_eles", "checksum"};
    if (!j.is_object() || j.size() != 13) return otc_bad("expected exactly 13 keys");
    for (const char* k : keys)
      if (!j.contains(k)) return otc_bad(std::string("missing key ") + k);
    if (j.at("n_eles").get<int>() != 13) return otc_bad("n_eles is not 13");
    uid = j.at("uid").get<std::string>();
    rid = j.at("rid").get<std::string>();
    if (j.at("store_filename").get<std::string>() != uid + "." + rid + ".random.store" ||
        j.at("metadata_filename").get<std::string>() != uid + "." + rid + ".random.metadata")
      return otc_bad("file names do not match uid/rid");
    if (base_name(store_path) != j.at("store_filename").get<std::string>() ||
        base_name(metadata_path) != j.at("metadata_filename").get<std::string>())
      return otc_bad("the files given are not the ones the metadata names");
    rservice = j.at("rservice").get<std::string>();
    if (rservice != "random" && rservice != "urandom") return otc_bad("rservice must be random or urandom");
    n = j.at("n_bytes").get<std::uint64_t>();
    split = j.at("split_index").get<std::uint64_t>();
    direction = j.at("direction").get<std::int64_t>();
    e = j.at("encrypt_index").get<std::uint64_t>();
    dmax = j.at("decrypt_max").get<std::uint64_t>();
    log = j.at("decrypt_log").get<std::string>();
  } catch (const std::exception& ex) {
    return otc_bad(ex.what());
  }
  if (!check_id(uid, "uid").ok() || !check_id(rid, "rid").ok() || uid == rid) return otc_bad("bad uid/rid");
  if (n < kMinPadSize || n > kMaxPadSize) return make_error(ErrorCode::InvalidArgument, "pad size outside our limits");
  if (split == 0 || split >= n) return otc_bad("split_index outside the pad");
  if (direction != 1 && direction != -1) return otc_bad("direction must be 1 or -1");
  // OTC coordinates: direction +1 uses [0, split) upward, -1 uses [split, n) downward.
  const Range peer_half = direction == 1 ? Range{split, n} : Range{0, split};
  if (direction == 1 ? e >= split : (e < split || e >= n)) return otc_bad("encrypt_index outside our half");
  const Range own_used = direction == 1 ? Range{0, e} : Range{e + 1, n};
  MPOTR_TRY(const auto entries, parse_decrypt_log(log));
  Range peer_used{};
  if (!entries.empty()) {
    // The peer's half is consumed from its start up to the furthest index OTC decrypted.
    std::uint64_t lo = peer_half.end, hi = peer_half.begin;
    for (const auto& [a, b] : entries) {
      if (a < peer_half.begin || b >= peer_half.end) return otc_bad("decrypt_log entry outside the peer's half");
      lo = std::min(lo, a);
      hi = std::max(hi, b);
    }
    if (dmax >= peer_half.begin && dmax < peer_half.end) {
      lo = std::min(lo, dmax);
      hi = std::max(hi, dmax);
    }
    peer_used = direction == 1 ? Range{lo, n} : Range{0, hi + 1};
  }

  const int fd = ::open(store_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
  if (fd < 0) return sys_error("cannot open", store_path);
  UniqueFd in(fd);
  struct stat st {};
  if (::fstat(in.get(), &st) != 0) return sys_error("cannot stat", store_path);
  if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 077) != 0)
    return make_error(ErrorCode::Storage, "One Time Chat store must be a regular file of ours with mode 0600 (chmod 600 " + store_path + ")");
  if (static_cast<std::uint64_t>(st.st_size) != n) return otc_bad("store file size differs from n_bytes");

  // Same id on both sides without talking: a hash of the (identical) pad bytes.
  OtcImport out;
  crypto::Blake2b<kPadIdSize> h;
  h.update(as_bytes("mpotr-otp import one-time-chat v1"));
  std::array<std::uint8_t, 8> nb{};
  for (int i = 0; i < 8; ++i) nb[i] = static_cast<std::uint8_t>(n >> (56 - 8 * i));
  h.update(view(nb));
  SecretBytes chunk(kChunk);
  for (std::uint64_t off = 0; off < n;) {
    const auto len = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, n - off));
    MPOTR_CHECK(pread_all(in.get(), chunk.data(), len, off, store_path));
    h.update(ByteView(chunk.data(), len));
    off += len;
  }
  out.pad_id = h.finish();

  // Roles: A is the smaller id (O-2); OTC's +1 party owns the low half, so mirror if it is not A.
  const Role role = uid < rid ? Role::A : Role::B;
  out.mirrored = (direction == 1) != (role == Role::A);
  const std::uint64_t fence = out.mirrored ? n - split : split;
  const Range own_new = mirror(own_used, n, out.mirrored);
  const Range peer_new = peer_used.size() ? mirror(peer_used, n, out.mirrored) : Range{};
  out.burnt_own = own_used.size();
  out.burnt_peer = peer_used.size();
  MPOTR_TRY(PadState state, initial_state(out.pad_id, role, n, fence));
  state.send_ptr = state.reserve_ptr = role == Role::A ? own_new.end : own_new.begin;
  if (peer_new.size()) state.received = {peer_new};
  MPOTR_CHECK(check_consistent(state));

  MPOTR_TRY(auto files, create_pad_dir(out_dir, out.pad_id));
  out.path = files.path;
  auto fail = [&](Error err) -> Error {
    files.fd.reset();
    remove_partial(files.path);
    return err;
  };
  auto zero_overlap = [&](Range used, std::uint64_t off, std::size_t len) {
    const std::uint64_t b = std::max(used.begin, off), en = std::min(used.end, off + len);
    if (b < en) secure_zero(chunk.data() + (b - off), static_cast<std::size_t>(en - b));
  };
  for (std::uint64_t off = 0; off < n;) {
    const auto len = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, n - off));
    const std::uint64_t src = out.mirrored ? n - off - len : off;
    if (auto r = pread_all(in.get(), chunk.data(), len, src, store_path); !r.ok()) return fail(std::move(r).error());
    if (out.mirrored) std::reverse(chunk.data(), chunk.data() + len);
    zero_overlap(own_new, off, len);  // destroy what OTC used: tombstones for our own checks too
    zero_overlap(peer_new, off, len);
    if (auto r = pwrite_all(files.fd.get(), chunk.data(), len, off, files.path); !r.ok()) return fail(std::move(r).error());
    off += len;
    if (progress) progress(off, n);
  }
  const PadDescriptor d{out.pad_id, uid, rid, role, n, fence, now_utc(), "one-time-chat import (/dev/" + rservice + ")"};
  if (auto r = finish_pad(files, d, state); !r.ok()) return fail(std::move(r).error());
  return out;
}

}  // namespace mpotr::otp
