// SPDX-License-Identifier: MIT
// The Profanity plugin without Profanity: every hook the glue (plugin/profanity/) receives is a
// method here, and everything the plugin does to the client goes through the Ui interface.
// Unit tests drive several cores through a fake MUC; the e2e tests run the real client.
//
// How a secured room works (spec/mpotr.md §13, §14):
//  * Presence of every MUC room is tracked from the presence hook, so /mpotr start knows the
//    occupants and their real JIDs. Starting announces the participation marker by
//    re-sending our latest room presence with <mpotr/>, and from then on every presence we send
//    to the room carries it.
//  * Incoming payloads are fed to the room's RoomHost. A chat line from nick N whose stanza
//    carries the fallback <body> is shown by letting Profanity display the stanza and
//    replacing the body in the display hook (a normal "N: text" line with notifications);
//    anything else the stanza produced is shown as a themed line, and the stanza is dropped.
//  * Sending: the room send hook encrypts and sends the payload with send_stanza, then lets
//    Profanity show the line locally; Profanity's own plaintext stanza is then replaced by
//    whitespace in the message-stanza hook. That hook drops every message with a <body> to a
//    secured room, whatever the send hook returned: if the session is not ready the send hook
//    refuses, and even a client where "refuse" means "send the original" (Profanity ≥ 0.15)
//    puts nothing readable on the wire.
//  * Payloads with <delay/> (history) are dropped in every room: history never shows ciphertext.
//  * One-time-pad mode (spec/otp.md §10, /mpotr otp): every secured room has an OtpRoomMode.
//    Every batch of RoomHost notices goes through it first, so OTP bundles are opened (or
//    refused) whether or not OTP mode is on; a received OTP line then takes the same display
//    path as an mpOTR line, marked "[OTP]". With OTP mode on, the room send hook seals each
//    line with the pad device and hands RoomHost the bundle text; if sealing fails nothing is
//    sent (never plaintext, never plain mpOTR). One pad device (mpotr-padd over its Unix
//    socket) serves every room: the pads belong to the user, not to a room.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "mpotr/otp/room_mode.h"
#include "mpotr/rng.h"
#include "mpotr/transport/room_host.h"
#include "mpotr/transport/xmpp_stanza.h"
#include "mpotr/trust.h"
#include "plugin/core/commands.h"
#include "plugin/core/room_policy.h"
#include "plugin/core/ui.h"
#include "plugin/core/xml.h"

namespace mpotr::otp::device {
class RpcPadDevice;
}

namespace mpotr::plugin {

class OtrVerifier;
struct OtrOutput;

// Rooms whose presence the plugin tracks; presence from more rooms is ignored (logged).
inline constexpr std::size_t kMaxRooms = 64;
// Verifications (SMP runs) in progress or waiting for a secret.
inline constexpr std::size_t kMaxPendingVerifications = 16;
// /mpotr end waits this long for the shutdown protocol before leaving the session anyway.
inline constexpr TimeMs kEndTimeoutMs = 30'000;

struct PluginPaths {
  std::string data_dir;  // per-account files go to <data_dir>/<account>/ (identity, trust, otr/)
};

// Where mpotr-padd listens unless told otherwise (/mpotr otp device): $MPOTR_PAD_SOCKET if
// set, else $XDG_RUNTIME_DIR/mpotr/padd.sock, else /tmp/mpotr-<uid>/padd.sock. Read when the
// core is made; the plugin keeps no settings of its own, so /mpotr otp device lasts one run.
std::string default_pad_socket();

// Result of the room send hook.
enum class SendVerdict : std::uint8_t {
  Unchanged,  // not a secured room, or encrypted and sent: let the client show (and log) the line
  Cancel,     // refused (session not ready): nothing is sent; the user was told why
};

class PluginCore {
 public:
  PluginCore(Ui& ui, PluginPaths paths, std::unique_ptr<Rng> rng);
  ~PluginCore();
  PluginCore(const PluginCore&) = delete;
  PluginCore& operator=(const PluginCore&) = delete;

  // Login (or plugin loaded while logged in): loads or creates this account's identity key
  // and trust store. Everything else is inert until then.
  void on_connect(std::string_view full_jid, TimeMs now);
  void on_disconnect(TimeMs now);
  // /quit or unload: leave every session (the marker is withdrawn while still online), forget
  // all state. The core may be destroyed afterwards.
  void shutdown(TimeMs now);

  // Hooks. Stanza texts are what the client serialized.
  bool on_message_stanza_receive(std::string_view xml, TimeMs now);  // false: the client drops it
  void on_presence_stanza_receive(std::string_view xml, TimeMs now);
  std::optional<std::string> on_presence_stanza_send(std::string_view xml);  // replacement text
  std::optional<std::string> on_message_stanza_send(std::string_view xml);   // replacement text
  SendVerdict on_room_message_send(std::string_view room, std::string_view text, TimeMs now);
  std::optional<std::string> on_room_message_display(std::string_view room, std::string_view nick,
                                                     std::string_view body);
  // Any window: command output goes to `current_room` if given, else to the console.
  // `room_nick`: our nick in that room as the client knows it (to re-join a room whose
  // member list we missed because the plugin was loaded after joining).
  void on_command(const std::vector<std::string>& args, std::optional<std::string> current_room, TimeMs now,
                  std::string_view room_nick = {});
  // About once a second.
  void on_timer(TimeMs now);

  // For tests and /mpotr status.
  bool connected() const noexcept { return m_identity_path.has_value(); }
  bool secured(std::string_view room) const;
  const transport::RoomHost* host(std::string_view room) const;
  std::string account() const { return m_account; }
  bool otp_enabled(std::string_view room) const;
  const std::string& pad_socket() const noexcept { return m_pad_socket; }
  // Tests: every room uses this pad device instead of mpotr-padd's socket (nullptr: the
  // socket again). Not owned; must outlive its use.
  void use_pad_device_for_tests(otp::PadDevice* device);

 private:
  struct Room {
    std::string jid;
    std::string self_nick;
    bool joined = false;
    bool shows_jids = false;
    std::map<std::string, transport::PresenceIn, std::less<>> occupants;  // others, by nick
    std::string last_presence;  // our latest available presence to the room, as the client sent it
    std::unique_ptr<transport::RoomHost> host;
    std::optional<TimeMs> end_deadline;  // /mpotr end in progress
    bool key_published = false;          // the shutdown published our key (every other member ended or quit)
    std::map<std::uint32_t, std::string> sent_text;  // our lines by sequence number (for confirmations)
    std::string title;
    bool hinted = false;  // told the user that others use mpOTR here
    std::optional<otp::OtpRoomMode> otp;  // exactly while `host` exists
  };
  struct PendingDisplay {
    std::string room;
    std::string nick;
    std::string text;
  };
  struct Verification {
    std::string room;
    std::string nick;
    std::string peer_jid;       // bare
    std::string peer_full_jid;  // the private channel
    Fingerprint peer_fp;        // as seen in the room when it began
    std::string question;
    bool we_started = false;
    bool asked = false;         // the peer started; waiting for our secret
    bool running = false;       // secret given, SMP under way
  };

  Room* room(std::string_view jid);
  Room* secured_room(std::string_view jid);
  void start(Room& r, TimeMs now);
  void finish_end(Room& r, const std::string& why);
  // The room is no longer secured: host gone, title and message char back to normal.
  void drop_session(Room& r);
  // Once per room: tell the user that `nick` uses mpOTR here and how to join in.
  void hint_mpotr_used(Room& r, const std::string& nick);
  void apply(Room& r, transport::HostOutput out, std::vector<transport::Notice>* messages = nullptr);
  void show(const std::string& room, Tone tone, const std::string& text);
  void refresh_title(Room& r);
  void refresh_completions(const Room& r);
  void send_marker_presence(Room& r, bool with);
  void quit_session(Room& r, TimeMs now);
  void save_trust();
  std::string next_id();
  std::optional<std::string> resolve_jid(const Room* r, const std::string& who) const;

  void handle_presence(Room& r, const transport::PresenceIn& p, TimeMs now);
  bool handle_groupchat(Room& r, const transport::MessageIn& m, bool has_body, TimeMs now);

  void command_status(const std::string& out, Room* r);
  void command_fingerprint(const std::string& out, Room* r, const std::string& who);
  void command_trust(const std::string& out, Room* r, const Command& c, TimeMs now);
  void command_verify(const std::string& out, Room* r, const cmd::Verify& v, TimeMs now);
  void command_secret(const std::string& out, cmd::Secret& s, TimeMs now);
  void command_policy(Room& r, const cmd::Policy& p, TimeMs now);
  // After a key became verified: every room where we stay out tries again (our refusal may be gone).
  void readmit_after_trust(TimeMs now);
  void command_otp(Room& r, const cmd::Otp& c, TimeMs now);
  void command_otp_device(const std::string& out, const cmd::Otp& c);

  // One-time-pad mode. The device every room's mode uses; nullptr if none is configured yet.
  // `create`: an OTP command asked for it, so make the RPC client even if nothing listens on
  // the socket yet (the call then says why it cannot reach it).
  otp::PadDevice* pad_device(bool create);
  void set_room_devices(otp::PadDevice* device);
  // OTP mode on: seal `text` for everyone (or the alias) and send it. False: nothing was sent
  // (the user was told why).
  bool send_otp(Room& r, std::string_view text, std::string_view alias, TimeMs now, std::vector<transport::Notice>* mine);
  void show_otp_check(Room& r);

  // SMP (plugin/smp): the private OTR channel.
  bool handle_otr(std::string_view from, std::string_view text, TimeMs now);
  void apply_otr(OtrOutput out, TimeMs now);
  Verification* verification_by_jid(std::string_view full_jid);

  Ui& m_ui;
  PluginPaths m_paths;
  std::unique_ptr<Rng> m_rng;
  XmlContext m_xml;
  std::string m_account;      // bare JID
  std::string m_full_jid;
  std::optional<std::string> m_identity_path;
  std::string m_trust_path;
  TrustStore m_trust;
  RoomSet m_verified_only;    // rooms that admit verified members only (/mpotr policy), kept in m_policy_path
  std::string m_policy_path;
  std::map<std::string, Room, std::less<>> m_rooms;
  std::set<std::string, std::less<>> m_wanted;  // rooms to secure again when we rejoin
  std::optional<PendingDisplay> m_pending;
  std::unique_ptr<OtrVerifier> m_otr;
  std::vector<Verification> m_verifications;
  std::uint64_t m_id_counter = 0;
  TimeMs m_last_otr_poll = 0;
  std::string m_pad_socket;
  std::unique_ptr<otp::device::RpcPadDevice> m_rpc_pad;  // made when first needed
  otp::PadDevice* m_test_pad = nullptr;
  // Rooms where the user turned OTP mode on: it is on again when the session restarts after
  // a reconnect or rejoin, so lines never silently fall back to plain mpOTR.
  std::set<std::string, std::less<>> m_otp_wanted;
};

}  // namespace mpotr::plugin
