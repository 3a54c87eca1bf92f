// SPDX-License-Identifier: MIT
// OtrVerifier over libotr 4.1. Facts about libotr this file relies on (checked in its 4.1.0
// source, message.c/privkey.c, and by the tests):
//  - Callbacks run re-entrantly inside otrl_message_* calls. gone_secure runs *before* the AKE's
//    last message is injected, so calling libotr from a callback would put SMP step 1 on the
//    wire ahead of the Signature message and the peer would drop it. Callbacks therefore only
//    record; settle() does the follow-up calls once libotr has returned.
//  - SMP messages carry IGNORE_UNREADABLE: a peer without our session drops them silently. So
//    every start() runs a fresh AKE instead of trusting an old session.
//  - SMP success/failure is reported on both sides (responder at step 4, initiator at step 5),
//    in question mode too; only libotr's own OTR-fingerprint trust is one-sided there, and we
//    never use that trust.
//  - otrl_privkey_read_FILEp needs a real file (fstat); the fingerprint and instance tag
//    readers only fgets, the writers only fprintf.
#include "plugin/smp/otr_verifier.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <system_error>
#include <utility>

#include <gcrypt.h>

extern "C" {
#include <libotr/proto.h>  // before message.h, which is not self-contained
#include <libotr/context.h>
#include <libotr/instag.h>
#include <libotr/message.h>
#include <libotr/privkey.h>
#include <libotr/userstate.h>
#include <libotr/version.h>
}

#include "mpotr/store/atomic_file.h"

namespace mpotr::plugin {

std::string_view to_string(SmpEventKind kind) noexcept {
  switch (kind) {
    case SmpEventKind::ChannelSecure: return "channel-secure";
    case SmpEventKind::SecretRequested: return "secret-requested";
    case SmpEventKind::Succeeded: return "succeeded";
    case SmpEventKind::Failed: return "failed";
    case SmpEventKind::Aborted: return "aborted";
    case SmpEventKind::Error: return "error";
  }
  return "unknown";
}

namespace {

// Version 3 only, and only when asked by an explicit query: no whitespace tags, no AKE on
// error messages. REQUIRE_ENCRYPTION makes libotr treat any plaintext as an error; we never
// hand it plaintext to send (nothing goes through otrl_message_sending).
constexpr OtrlPolicy kPolicy = OTRL_POLICY_ALLOW_V3 | OTRL_POLICY_REQUIRE_ENCRYPTION;
// The bare v3 query: the default query text would add HTML and our account name.
constexpr const char* kQuery = "?OTRv3?";
constexpr const char* kProtocol = "xmpp-mpotr";
static_assert(std::string_view(kProtocol) == kOtrProtocol);

Error storage(std::string detail) { return make_error(ErrorCode::Storage, std::move(detail)); }
Error storage_errno(const std::string& what, const std::string& path, int err) {
  return storage("cannot " + what + " " + path + ": " + std::generic_category().message(err));
}
Error otr_error(std::string what, gcry_error_t err) {
  return make_error(ErrorCode::Crypto, std::move(what) + ": " + gcry_strerror(err));
}

Result<void> init_libotr() {
  // Once per process; repeated otrl_init calls (Profanity's own OTR) are tolerated by libotr.
  // Not OTRL_INIT: that macro calls exit(1) on failure.
  static const gcry_error_t s_err = otrl_init(OTRL_VERSION_MAJOR, OTRL_VERSION_MINOR, OTRL_VERSION_SUB);
  if (s_err) {
    return otr_error("libotr initialization failed", s_err);
  }
  return {};
}

// libotr keeps JIDs in tab-separated text files and C strings: no control bytes at all.
Result<void> check_jid_text(std::string_view jid, std::string_view what) {
  if (jid.empty() || jid.size() > kMaxJidLen) {
    return make_error(ErrorCode::InvalidArgument, std::string(what) + " JID is empty or longer than kMaxJidLen");
  }
  for (const char c : jid) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return make_error(ErrorCode::InvalidArgument, std::string(what) + " JID contains a control character");
    }
  }
  return {};
}

std::string_view bare_of(std::string_view full) noexcept { return full.substr(0, full.find('/')); }

// When both users start a verification at once, the one with the smaller bare JID leads: its
// query drives the AKE and it initiates SMP; the other answers with its start()'s secret.
// (string_view compares as unsigned char.) Bare JIDs differ: a peer on our own account is refused.
bool we_lead(std::string_view account, std::string_view peer_full) noexcept { return account < bare_of(peer_full); }

struct FileCloser {
  void operator()(FILE* f) const noexcept { std::fclose(f); }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

// Opens a libotr file for reading only if it is ours and private: a regular file (symlinks not
// followed), owned by the effective user, no group/other bits, at most kMaxOtrFileLen bytes.
// A missing file is a null FilePtr.
Result<FilePtr> open_private_for_read(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return FilePtr{};
    }
    return storage_errno("open", path, errno);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return storage_errno("stat", path, err);
  }
  const char* problem = nullptr;
  if (!S_ISREG(st.st_mode)) {
    problem = "is not a regular file";
  } else if (st.st_uid != ::geteuid()) {
    problem = "is owned by another user";
  } else if ((st.st_mode & 077) != 0) {
    problem = "is readable or writable by other users (chmod 600 it)";
  } else if (static_cast<std::uint64_t>(st.st_size) > kMaxOtrFileLen) {
    problem = "is larger than kMaxOtrFileLen";
  }
  if (problem != nullptr) {
    ::close(fd);
    return storage(path + " " + problem);
  }
  FILE* f = ::fdopen(fd, "rb");
  if (f == nullptr) {
    const int err = errno;
    ::close(fd);
    return storage_errno("open", path, err);
  }
  return FilePtr(f);
}

// Runs a libotr *_FILEp writer into memory, so that the result can replace the file atomically
// (libotr's own writers truncate in place with the default umask).
Result<std::string> capture(const std::function<gcry_error_t(FILE*)>& write, const char* what) {
  char* buf = nullptr;
  std::size_t len = 0;
  FILE* f = ::open_memstream(&buf, &len);
  if (f == nullptr) {
    return storage(std::string("cannot buffer ") + what);
  }
  const gcry_error_t err = write(f);
  const bool closed = std::fclose(f) == 0;
  std::string text = buf != nullptr ? std::string(buf, len) : std::string();
  std::free(buf);
  if (err) {
    return otr_error(std::string("cannot write ") + what, err);
  }
  if (!closed) {
    return storage(std::string("cannot buffer ") + what);
  }
  return text;
}

Result<void> fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return storage_errno("open directory", dir, errno);
  }
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) {
    return storage_errno("sync directory", dir, err);
  }
  return {};
}

struct Peer {
  SmpPhase phase = SmpPhase::Idle;
  otrl_instag_t instance = OTRL_INSTAG_MASTER;  // the peer's instance of the secure channel
  // What start() was given, kept until the result: a peer that restarts mid-run gets it as the
  // answer to its new run.
  SecretBytes secret;
  std::optional<std::string> question;
  // The peer's verification is under way (we answered its query, its SMP step 1 has not come
  // yet): our start() then waits for that step 1 instead of running a second AKE.
  bool peer_starting = false;
  bool yield = false;  // AwaitingChannel: answer the peer's SMP step 1, never initiate
  // Set by callbacks, acted on by settle():
  bool channel_ready = false;
  bool answer_now = false;
  bool abort_smp = false;
  std::uint64_t last_used = 0;  // operation counter (no clock), for LRU eviction

  bool in_smp() const noexcept {
    return phase == SmpPhase::Initiated || phase == SmpPhase::SecretRequested || phase == SmpPhase::Responded;
  }
  void reset() noexcept {
    phase = SmpPhase::Idle;
    secret.clear();
    question.reset();
    peer_starting = false;
    yield = false;
    channel_ready = false;
    answer_now = false;
  }
};

}  // namespace

struct OtrVerifier::Impl {
  std::string dir;
  std::string account;
  std::string key_path;
  std::string fp_path;
  std::string instag_path;
  OtrlUserState us = nullptr;
  OtrlMessageAppOps ops{};
  std::map<std::string, Peer, std::less<>> peers;
  OtrOutput* out = nullptr;  // where callbacks put messages and events during a call
  unsigned timer_interval = 0;
  std::uint64_t op_counter = 0;

  Impl() {
    ops.policy = &cb_policy;
    ops.create_privkey = &cb_create_privkey;
    ops.is_logged_in = &cb_is_logged_in;
    ops.inject_message = &cb_inject_message;
    ops.write_fingerprints = &cb_write_fingerprints;
    ops.gone_secure = &cb_gone_secure;
    ops.still_secure = &cb_still_secure;
    ops.max_message_size = &cb_max_message_size;
    ops.otr_error_message = &cb_otr_error_message;  // static strings: no _free
    ops.handle_smp_event = &cb_handle_smp_event;
    ops.handle_msg_event = &cb_handle_msg_event;
    ops.create_instag = &cb_create_instag;
    ops.timer_control = &cb_timer_control;
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    if (us != nullptr) {
      otrl_userstate_free(us);  // no real timer exists, so nothing can fire afterwards
    }
  }

  // Collects the output of one public call.
  class Collect {
   public:
    Collect(Impl& impl, OtrOutput& o) : m_impl(impl) { m_impl.out = &o; }
    ~Collect() { m_impl.out = nullptr; }
    Collect(const Collect&) = delete;
    Collect& operator=(const Collect&) = delete;

   private:
    Impl& m_impl;
  };

  void emit(SmpEventKind kind, std::string_view peer, std::string detail = {}, std::string question = {}) {
    if (out != nullptr) {
      out->events.push_back(SmpEvent{kind, std::string(peer), std::move(question), std::move(detail)});
    }
  }

  Peer* find_peer(std::string_view jid) {
    const auto it = peers.find(jid);
    return it == peers.end() ? nullptr : &it->second;
  }

  ConnContext* find_context(const std::string& jid, otrl_instag_t instance) {
    return otrl_context_find(us, jid.c_str(), account.c_str(), kProtocol, instance, 0, nullptr, nullptr, nullptr);
  }

  static bool encrypted(const ConnContext* ctx) noexcept {
    return ctx != nullptr && ctx->msgstate == OTRL_MSGSTATE_ENCRYPTED;
  }

  // --- files ---

  Result<void> load_file(const std::string& path, const char* what,
                         const std::function<gcry_error_t(FILE*)>& read) {
    MPOTR_TRY(FilePtr f, open_private_for_read(path));
    if (f) {
      const gcry_error_t err = read(f.get());
      if (err) {
        return otr_error(std::string("cannot read ") + what + " " + path, err);
      }
    }
    return {};
  }

  Result<void> save_fingerprints() {
    MPOTR_TRY(std::string text,
              capture([this](FILE* f) { return otrl_privkey_write_fingerprints_FILEp(us, f); }, "OTR fingerprints"));
    return store::write_file_atomic(fp_path, as_bytes(text));
  }

  Result<void> generate_instag() {
    MPOTR_TRY(std::string text, capture([this](FILE* f) {
                return otrl_instag_generate_FILEp(us, f, account.c_str(), kProtocol);
              }, "OTR instance tags"));
    return store::write_file_atomic(instag_path, as_bytes(text));
  }

  // DSA keygen writes the key file itself and reads it back (fstat), so it gets a real private
  // temp file in dir, which then replaces the key file atomically.
  Result<void> generate_key() {
    std::string tmp = key_path + ".XXXXXX";
    const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);  // mode 0600
    if (fd < 0) {
      return storage_errno("create a temporary file in", dir, errno);
    }
    FILE* f = ::fdopen(fd, "w+b");
    if (f == nullptr) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return storage_errno("open", tmp, err);
    }
    const gcry_error_t gerr = otrl_privkey_generate_FILEp(us, f, account.c_str(), kProtocol);
    const bool synced = std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
    const int err = errno;
    const bool closed = std::fclose(f) == 0;
    if (gerr || !synced || !closed) {
      ::unlink(tmp.c_str());
      return gerr ? otr_error("OTR key generation failed", gerr) : storage_errno("write", tmp, err);
    }
    if (::rename(tmp.c_str(), key_path.c_str()) != 0) {
      const int rerr = errno;
      ::unlink(tmp.c_str());
      return storage_errno("rename a temporary file to", key_path, rerr);
    }
    return fsync_dir(dir);
  }

  bool has_key() const { return otrl_privkey_find(us, account.c_str(), kProtocol) != nullptr; }

  Result<void> ensure_key() {
    if (has_key()) {
      return {};
    }
    return generate_key();
  }

  // --- peers ---

  Result<void> check_peer_jid(std::string_view jid) const {
    MPOTR_CHECK(check_jid_text(jid, "peer"));
    const auto slash = jid.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == jid.size()) {
      return make_error(ErrorCode::InvalidArgument, "peer JID is not a full JID (user@domain/resource)");
    }
    if (bare_of(jid) == account) {
      return make_error(ErrorCode::InvalidArgument, "cannot verify our own account");
    }
    return {};
  }

  // Forgets libotr's contexts for jid and our entry. With notify, an encrypted session is ended
  // with a DISCONNECTED message first.
  void forget_peer(const std::string& jid, bool notify) {
    if (ConnContext* master = find_context(jid, OTRL_INSTAG_MASTER)) {
      if (notify) {
        otrl_message_disconnect_all_instances(us, &ops, this, account.c_str(), kProtocol, jid.c_str());
      }
      for (ConnContext* c = master; c != nullptr && c->m_context == master; c = c->next) {
        otrl_context_force_plaintext(c);
      }
      otrl_context_forget(master);
    }
    peers.erase(jid);
  }

  // The entry for jid, making room by quietly evicting the least recently used idle peer. A
  // peer evicted with a session still open loses nothing that matters: every start() runs a
  // fresh AKE.
  Result<Peer*> slot(std::string_view jid) {
    if (Peer* p = find_peer(jid)) {
      return p;
    }
    if (peers.size() >= kMaxSmpPeers) {
      const std::string* victim = nullptr;
      std::uint64_t oldest = 0;
      for (const auto& [name, p] : peers) {
        if (p.phase == SmpPhase::Idle && (victim == nullptr || p.last_used < oldest)) {
          victim = &name;
          oldest = p.last_used;
        }
      }
      if (victim == nullptr) {
        return make_error(ErrorCode::LimitExceeded, "kMaxSmpPeers verifications are already running");
      }
      forget_peer(std::string(*victim), false);
    }
    return &peers.emplace(std::string(jid), Peer{}).first->second;
  }

  // A query means the peer called start() (nothing else sends one). Returns false if the query
  // must not reach libotr. Only one AKE may run at a time: libotr 4.1 deadlocks when two v3
  // AKEs cross (both sides end up waiting for a Signature), and an AKE over an encrypted
  // session makes it PLAINTEXT until done, silently dropping SMP messages in flight.
  bool on_query(Peer& p, const std::string& jid) {
    switch (p.phase) {
      case SmpPhase::Idle:
        p.peer_starting = true;
        return true;
      case SmpPhase::AwaitingChannel:
        // Both users started at once (had the peer seen our query first, it would not have sent
        // one). The leader's query wins: the leader ignores the other's query, the other
        // answers the leader's and later its SMP step 1.
        if (we_lead(account, jid)) {
          return false;
        }
        p.yield = true;
        return true;
      case SmpPhase::Initiated:
        // The peer lost its session (its plugin restarted) and our step 1 with it. Keep our
        // secret and answer the peer's new run instead.
        abort_smp_now(p, jid);
        p.phase = SmpPhase::AwaitingChannel;
        p.yield = true;
        return true;
      case SmpPhase::SecretRequested:
      case SmpPhase::Responded:
        abort_smp_now(p, jid);
        p.reset();
        p.peer_starting = true;
        emit(SmpEventKind::Aborted, jid, "the peer restarted the verification");
        return true;
    }
    return true;
  }

  // Resets libotr's SMP state (and tells the peer) before a new run can begin.
  void abort_smp_now(const Peer& p, const std::string& jid) {
    ConnContext* ctx = find_context(jid, p.instance);
    if (encrypted(ctx)) {
      otrl_message_abort_smp(us, &ops, this, ctx);
    }
  }

  // Stops the verification with p after an error; the SMP abort is sent by settle().
  void fail(Peer& p, std::string_view jid, std::string detail) {
    if (p.in_smp()) {
      p.abort_smp = true;
    }
    p.reset();
    emit(SmpEventKind::Error, jid, std::move(detail));
  }

  void initiate(Peer& p, ConnContext* ctx) {
    if (p.question) {
      otrl_message_initiate_smp_q(us, &ops, this, ctx, p.question->c_str(), p.secret.data(), p.secret.size());
    } else {
      otrl_message_initiate_smp(us, &ops, this, ctx, p.secret.data(), p.secret.size());
    }
    p.phase = SmpPhase::Initiated;
  }

  // Follow-up libotr calls the callbacks asked for, once libotr has returned.
  void settle() {
    for (auto& [jid, p] : peers) {
      ConnContext* ctx = find_context(jid, p.instance);
      if (p.abort_smp) {
        p.abort_smp = false;
        if (encrypted(ctx)) {
          otrl_message_abort_smp(us, &ops, this, ctx);
        }
      }
      if (p.answer_now) {
        p.answer_now = false;
        if (p.phase == SmpPhase::AwaitingChannel && encrypted(ctx)) {
          otrl_message_respond_smp(us, &ops, this, ctx, p.secret.data(), p.secret.size());
          p.secret.clear();
          p.question.reset();
          p.phase = SmpPhase::Responded;
        }
      }
      if (p.channel_ready) {
        p.channel_ready = false;
        if (p.phase == SmpPhase::AwaitingChannel && !p.yield && encrypted(ctx)) {
          initiate(p, ctx);
        }
      }
      const bool finished = ctx != nullptr && ctx->msgstate == OTRL_MSGSTATE_FINISHED;
      if (finished) {
        p.peer_starting = false;  // the peer ended its session: its run will not come
      }
      if (p.in_smp() && !encrypted(ctx)) {
        p.reset();
        emit(SmpEventKind::Aborted, jid, "the OTR session ended");
      } else if (p.phase == SmpPhase::AwaitingChannel && p.yield && finished) {
        p.reset();
        emit(SmpEventKind::Aborted, jid, "the peer ended the OTR session");
      }
    }
  }

  // --- callbacks (re-entrant: record only, never call libotr back) ---

  static Impl& self(void* opdata) { return *static_cast<Impl*>(opdata); }

  static OtrlPolicy cb_policy(void*, ConnContext*) { return kPolicy; }

  static void cb_create_privkey(void* opdata, const char*, const char*) {
    // Not reached: start() and receive() ensure the key before calling libotr.
    Impl& m = self(opdata);
    if (auto r = m.generate_key(); !r.ok()) {
      m.emit(SmpEventKind::Error, "", r.error().detail);
    }
  }

  // 1 so that ending a session tells the peer (DISCONNECTED); we only talk to present peers.
  static int cb_is_logged_in(void*, const char*, const char*, const char*) { return 1; }

  static void cb_inject_message(void* opdata, const char*, const char*, const char* recipient, const char* message) {
    Impl& m = self(opdata);
    if (m.out != nullptr && recipient != nullptr && message != nullptr) {
      m.out->send.push_back(OtrOutgoing{recipient, message});
    }
  }

  static void cb_write_fingerprints(void* opdata) {
    Impl& m = self(opdata);
    if (auto r = m.save_fingerprints(); !r.ok()) {
      m.emit(SmpEventKind::Error, "", r.error().detail);
    }
  }

  void on_secure(ConnContext* ctx) {
    if (ctx == nullptr || ctx->username == nullptr) {
      return;
    }
    if (Peer* p = find_peer(ctx->username)) {
      p->instance = ctx->their_instance;
      p->channel_ready = true;
      emit(SmpEventKind::ChannelSecure, ctx->username);
    }
  }
  static void cb_gone_secure(void* opdata, ConnContext* ctx) { self(opdata).on_secure(ctx); }
  static void cb_still_secure(void* opdata, ConnContext* ctx, int) { self(opdata).on_secure(ctx); }

  // XMPP carries any size we accept; fragments are refused on receive.
  static int cb_max_message_size(void*, ConnContext*) { return 0; }

  static const char* cb_otr_error_message(void*, ConnContext*, OtrlErrorCode code) {
    switch (code) {
      case OTRL_ERRCODE_ENCRYPTION_ERROR: return "encryption error";
      case OTRL_ERRCODE_MSG_NOT_IN_PRIVATE: return "no private session";
      case OTRL_ERRCODE_MSG_UNREADABLE: return "unreadable message";
      case OTRL_ERRCODE_MSG_MALFORMED: return "malformed message";
      case OTRL_ERRCODE_NONE: break;
    }
    return "error";
  }

  void on_smp(OtrlSMPEvent event, ConnContext* ctx, const char* question) {
    if (ctx == nullptr || ctx->username == nullptr) {
      return;
    }
    const std::string jid = ctx->username;
    Peer* p = find_peer(jid);
    if (p == nullptr) {
      return;
    }
    p->instance = ctx->their_instance;
    switch (event) {
      case OTRL_SMPEVENT_ASK_FOR_SECRET:
      case OTRL_SMPEVENT_ASK_FOR_ANSWER: {
        // libotr NUL-terminates TLV data, so question is a bounded C string.
        std::string q = (event == OTRL_SMPEVENT_ASK_FOR_ANSWER && question != nullptr) ? question : "";
        if (q.size() > kMaxSmpQuestionLen) {
          p->phase = SmpPhase::SecretRequested;  // so that fail() aborts libotr's SMP state
          fail(*p, jid, "the peer's SMP question is longer than kMaxSmpQuestionLen");
        } else if (p->phase == SmpPhase::AwaitingChannel) {
          p->answer_now = true;  // we wanted this verification too: answer with start()'s secret
        } else if (p->phase == SmpPhase::Idle || p->phase == SmpPhase::SecretRequested) {
          p->phase = SmpPhase::SecretRequested;
          p->peer_starting = false;
          emit(SmpEventKind::SecretRequested, jid, {}, std::move(q));
        }
        break;
      }
      case OTRL_SMPEVENT_SUCCESS:
      case OTRL_SMPEVENT_FAILURE:
        if (p->phase == SmpPhase::Initiated || p->phase == SmpPhase::Responded) {
          p->reset();
          if (event == OTRL_SMPEVENT_SUCCESS) {
            emit(SmpEventKind::Succeeded, jid);
          } else {
            emit(SmpEventKind::Failed, jid, "the secrets differ: wrong secret, or one side sees a different key");
          }
        }
        break;
      case OTRL_SMPEVENT_CHEATED:
        p->abort_smp = true;
        fail(*p, jid, "the peer sent an invalid SMP message");
        break;
      case OTRL_SMPEVENT_ERROR:
        p->abort_smp = true;
        fail(*p, jid, "unexpected SMP message");
        break;
      case OTRL_SMPEVENT_ABORT:
        if (p->in_smp()) {
          p->reset();
          emit(SmpEventKind::Aborted, jid, "the peer aborted the verification");
        }
        break;
      case OTRL_SMPEVENT_IN_PROGRESS:
      case OTRL_SMPEVENT_NONE:
        break;
    }
  }
  static void cb_handle_smp_event(void* opdata, OtrlSMPEvent event, ConnContext* ctx, unsigned short, char* question) {
    self(opdata).on_smp(event, ctx, question);
  }

  void on_msg_event(OtrlMessageEvent event, ConnContext* ctx) {
    const char* what = nullptr;
    switch (event) {
      case OTRL_MSGEVENT_ENCRYPTION_REQUIRED: what = "encryption required"; break;
      case OTRL_MSGEVENT_ENCRYPTION_ERROR: what = "encryption error"; break;
      case OTRL_MSGEVENT_CONNECTION_ENDED: what = "the peer ended the OTR session"; break;
      case OTRL_MSGEVENT_SETUP_ERROR: what = "OTR session setup failed"; break;
      case OTRL_MSGEVENT_MSG_REFLECTED: what = "received our own OTR message"; break;
      case OTRL_MSGEVENT_RCVDMSG_NOT_IN_PRIVATE: what = "encrypted message without an OTR session"; break;
      case OTRL_MSGEVENT_RCVDMSG_UNREADABLE: what = "unreadable OTR message"; break;
      case OTRL_MSGEVENT_RCVDMSG_MALFORMED: what = "malformed OTR message"; break;
      // The peer's error text is not passed on: it is unauthenticated.
      case OTRL_MSGEVENT_RCVDMSG_GENERAL_ERR: what = "the peer reported an OTR error"; break;
      case OTRL_MSGEVENT_RCVDMSG_UNENCRYPTED: what = "unencrypted message on the OTR channel"; break;
      case OTRL_MSGEVENT_RCVDMSG_UNRECOGNIZED: what = "unrecognized OTR message"; break;
      case OTRL_MSGEVENT_NONE:
      case OTRL_MSGEVENT_MSG_RESENT:
      case OTRL_MSGEVENT_LOG_HEARTBEAT_RCVD:
      case OTRL_MSGEVENT_LOG_HEARTBEAT_SENT:
      case OTRL_MSGEVENT_RCVDMSG_FOR_OTHER_INSTANCE:  // another client on the same full JID
        return;
    }
    const std::string jid = (ctx != nullptr && ctx->username != nullptr) ? ctx->username : "";
    if (Peer* p = find_peer(jid)) {
      fail(*p, jid, what);
    } else {
      emit(SmpEventKind::Error, jid, what);
    }
  }
  static void cb_handle_msg_event(void* opdata, OtrlMessageEvent event, ConnContext* ctx, const char*, gcry_error_t) {
    self(opdata).on_msg_event(event, ctx);
  }

  static void cb_create_instag(void* opdata, const char*, const char*) {
    // Not reached: open() creates the instance tag.
    Impl& m = self(opdata);
    if (auto r = m.generate_instag(); !r.ok()) {
      m.emit(SmpEventKind::Error, "", r.error().detail);
    }
  }

  static void cb_timer_control(void* opdata, unsigned int interval) { self(opdata).timer_interval = interval; }
};

OtrVerifier::OtrVerifier(std::unique_ptr<Impl> impl) : m(std::move(impl)) {}
OtrVerifier::~OtrVerifier() = default;

Result<std::unique_ptr<OtrVerifier>> OtrVerifier::open(std::string dir, std::string account_bare_jid) {
  if (dir.empty() || dir.find('\0') != std::string::npos) {
    return make_error(ErrorCode::InvalidArgument, "OTR directory is empty or contains a NUL byte");
  }
  MPOTR_CHECK(check_jid_text(account_bare_jid, "account"));
  if (account_bare_jid.find('/') != std::string::npos) {
    return make_error(ErrorCode::InvalidArgument, "account JID must be a bare JID");
  }
  MPOTR_CHECK(init_libotr());
  MPOTR_CHECK(store::ensure_private_dir(dir));
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    return storage_errno("stat", dir, errno);
  }
  if ((st.st_mode & 077) != 0 && ::chmod(dir.c_str(), 0700) != 0) {
    return storage_errno("chmod 700", dir, errno);
  }

  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  impl->account = std::move(account_bare_jid);
  impl->key_path = dir + "/otr.private_key";
  impl->fp_path = dir + "/otr.fingerprints";
  impl->instag_path = dir + "/otr.instance_tags";
  impl->us = otrl_userstate_create();
  if (impl->us == nullptr) {
    return make_error(ErrorCode::Crypto, "cannot create an OTR user state");
  }
  OtrlUserState us = impl->us;
  MPOTR_CHECK(impl->load_file(impl->key_path, "OTR private key",
                              [us](FILE* f) { return otrl_privkey_read_FILEp(us, f); }));
  MPOTR_CHECK(impl->load_file(impl->instag_path, "OTR instance tags",
                              [us](FILE* f) { return otrl_instag_read_FILEp(us, f); }));
  if (otrl_instag_find(us, impl->account.c_str(), kProtocol) == nullptr) {
    MPOTR_CHECK(impl->generate_instag());
  }
  // otr.fingerprints is written (peers' OTR keys, for inspection) but deliberately not read
  // back: OTR fingerprint trust plays no part in the verification (libotr binds each SMP run to
  // the live session's keys), and every loaded entry would become a context outside the
  // kMaxSmpPeers bound, so the file would grow across restarts without limit.
  return std::unique_ptr<OtrVerifier>(new OtrVerifier(std::move(impl)));
}

Result<void> OtrVerifier::ensure_key() { return m->ensure_key(); }

bool OtrVerifier::has_key() const { return m->has_key(); }

Result<std::string> OtrVerifier::otr_fingerprint() const {
  char buf[OTRL_PRIVKEY_FPRINT_HUMAN_LEN];
  if (otrl_privkey_fingerprint(m->us, buf, m->account.c_str(), kProtocol) == nullptr) {
    return make_error(ErrorCode::InvalidState, "no OTR key yet");
  }
  return std::string(buf);
}

Result<OtrOutput> OtrVerifier::start(std::string_view peer_full_jid, std::optional<std::string> question,
                                     const SecretBytes& bound_secret) {
  MPOTR_CHECK(m->check_peer_jid(peer_full_jid));
  if (bound_secret.size() != kBoundSmpSecretLen) {
    return make_error(ErrorCode::InvalidArgument, "the bound SMP secret must be kBoundSmpSecretLen bytes");
  }
  if (question && (question->empty() || question->size() > kMaxSmpQuestionLen ||
                   question->find('\0') != std::string::npos)) {
    return make_error(ErrorCode::InvalidArgument, "the question is empty, longer than kMaxSmpQuestionLen or has a NUL");
  }
  if (const Peer* p = m->find_peer(peer_full_jid); p != nullptr && p->phase != SmpPhase::Idle) {
    if (p->phase == SmpPhase::SecretRequested) {
      return answer(peer_full_jid, bound_secret);  // the peer asked first: same verification
    }
    return make_error(ErrorCode::InvalidState, "a verification with this peer is already running");
  }
  MPOTR_CHECK(m->ensure_key());  // blocks once; the AKE needs the key
  MPOTR_TRY(Peer * p, m->slot(peer_full_jid));
  const bool peer_starting = p->peer_starting;
  p->reset();
  p->phase = SmpPhase::AwaitingChannel;
  p->secret = bound_secret;
  p->question = std::move(question);
  p->last_used = ++m->op_counter;
  OtrOutput out;
  if (peer_starting) {
    // The peer started first and its AKE (or SMP step 1) is on the way: a query of ours would
    // start a second AKE, and libotr drops SMP messages while a re-AKE is under way (the
    // context is PLAINTEXT until it completes). Answer the peer's step 1 instead.
    p->yield = true;
  } else {
    out.send.push_back(OtrOutgoing{std::string(peer_full_jid), kQuery});
  }
  return out;
}

Result<OtrOutput> OtrVerifier::answer(std::string_view peer_full_jid, const SecretBytes& bound_secret) {
  MPOTR_CHECK(m->check_peer_jid(peer_full_jid));
  if (bound_secret.size() != kBoundSmpSecretLen) {
    return make_error(ErrorCode::InvalidArgument, "the bound SMP secret must be kBoundSmpSecretLen bytes");
  }
  Peer* p = m->find_peer(peer_full_jid);
  if (p == nullptr || p->phase != SmpPhase::SecretRequested) {
    return make_error(ErrorCode::InvalidState, "no SMP request from this peer is waiting for an answer");
  }
  const std::string jid(peer_full_jid);
  ConnContext* ctx = m->find_context(jid, p->instance);
  if (!Impl::encrypted(ctx)) {
    p->reset();
    return make_error(ErrorCode::InvalidState, "the OTR session with this peer has ended");
  }
  OtrOutput out;
  Impl::Collect collect(*m, out);
  otrl_message_respond_smp(m->us, &m->ops, m.get(), ctx, bound_secret.data(), bound_secret.size());
  p->phase = SmpPhase::Responded;
  p->last_used = ++m->op_counter;
  m->settle();
  return out;
}

Result<OtrOutput> OtrVerifier::receive(std::string_view from_full_jid, std::string_view otr_text) {
  MPOTR_CHECK(m->check_peer_jid(from_full_jid));
  if (otr_text.size() > kMaxOtrMessageLen) {
    return make_error(ErrorCode::DecodeOversize, "OTR message longer than kMaxOtrMessageLen");
  }
  if (otr_text.find('\0') != std::string_view::npos) {
    return make_error(ErrorCode::DecodeBadValue, "OTR message contains a NUL byte");
  }
  if (otr_text.substr(0, 4) != "?OTR") {
    return make_error(ErrorCode::DecodeBadValue, "not an OTR protocol message");
  }
  // Our peers never fragment (max_message_size is 0); refusing fragments keeps libotr from
  // accumulating partial messages for anyone who sends them.
  if (otr_text.substr(0, 5) == "?OTR|" || otr_text.substr(0, 5) == "?OTR,") {
    return make_error(ErrorCode::DecodeBadValue, "fragmented OTR messages are not accepted");
  }
  const std::string text(otr_text);
  const OtrlMessageType type = otrl_proto_message_type(text.c_str());
  if (type == OTRL_MSGTYPE_NOTOTR || type == OTRL_MSGTYPE_TAGGEDPLAINTEXT || type == OTRL_MSGTYPE_UNKNOWN) {
    return make_error(ErrorCode::DecodeBadValue, "not an OTR protocol message");
  }
  MPOTR_CHECK(m->ensure_key());  // blocks once; the AKE needs the key
  MPOTR_TRY(Peer * p, m->slot(from_full_jid));
  p->last_used = ++m->op_counter;
  OtrOutput out;
  Impl::Collect collect(*m, out);
  if (type == OTRL_MSGTYPE_QUERY && !m->on_query(*p, std::string(from_full_jid))) {
    return out;
  }
  char* plain = nullptr;
  const std::string from(from_full_jid);
  otrl_message_receiving(m->us, &m->ops, m.get(), m->account.c_str(), kProtocol, from.c_str(), text.c_str(), &plain,
                         nullptr, nullptr, nullptr, nullptr);
  if (plain != nullptr) {
    // Chat text inside the verification channel: never shown (nothing legitimate sends it).
    otrl_message_free(plain);
  }
  m->settle();
  return out;
}

OtrOutput OtrVerifier::abort(std::string_view peer_full_jid) {
  OtrOutput out;
  Impl::Collect collect(*m, out);
  const std::string jid(peer_full_jid);
  if (Peer* p = m->find_peer(jid)) {
    ConnContext* ctx = m->find_context(jid, p->instance);
    if (p->in_smp() && Impl::encrypted(ctx)) {
      otrl_message_abort_smp(m->us, &m->ops, m.get(), ctx);
    }
    m->forget_peer(jid, true);
  }
  return out;
}

OtrOutput OtrVerifier::poll() {
  OtrOutput out;
  Impl::Collect collect(*m, out);
  otrl_message_poll(m->us, &m->ops, m.get());
  m->settle();
  return out;
}

unsigned OtrVerifier::poll_interval_seconds() const noexcept { return m->timer_interval; }

void OtrVerifier::forget_all() {
  otrl_context_forget_all(m->us);
  m->peers.clear();
}

SmpPhase OtrVerifier::phase(std::string_view peer_full_jid) const {
  const Peer* p = m->find_peer(peer_full_jid);
  return p == nullptr ? SmpPhase::Idle : p->phase;
}

std::size_t OtrVerifier::peer_count() const noexcept { return m->peers.size(); }

}  // namespace mpotr::plugin
