/* SPDX-License-Identifier: MIT
 * mpOTR for Profanity: the hooks Profanity looks up by name, and the only file that includes
 * profapi.h (it defines the API pointers; Profanity's own definitions interpose them at
 * dlopen time, which is why they keep default visibility here while everything else in the
 * plugin is hidden and only prof_* is exported, see exports.map).
 *
 * Registrations pass "mpotr.c" explicitly instead of using profapi.h's macros: Profanity
 * derives the owner plugin from that name ("mpotr.so"), and __FILE__ would be a full path, so
 * commands and timers would survive an unload of the plugin (notes A.6, P-A6). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#pragma GCC visibility push(default)
#include <profapi.h>
#pragma GCC visibility pop

#include "bridge.h"

#define EXPORT __attribute__((visibility("default")))
#define OWNER "mpotr.c"

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- what the core may do ------------------------------------------------------------- */

static const char* const kThemeItem[] = {"info", "good", "warning", "alert"};
static const char* const kThemeDefault[] = {"cyan", "green", "yellow", "bold_red"};
static const char* const kThemeChar[] = {"~", "+", "!", "!"};

static int clamp_tone(int tone) { return tone < 0 || tone > 3 ? 0 : tone; }

static int ui_send_stanza(const char* xml) { return prof_send_stanza((char*)xml); }

static int ui_room_line(const char* room, int tone, const char* text) {
  tone = clamp_tone(tone);
  return prof_room_show_themed(room, "mpotr", kThemeItem[tone], kThemeDefault[tone], kThemeChar[tone], text);
}

static void ui_console_line(int tone, const char* text) {
  tone = clamp_tone(tone);
  prof_cons_show_themed("mpotr", kThemeItem[tone], kThemeDefault[tone], text);
  if (tone == MPOTR_TONE_ALERT) prof_cons_alert();
}

static void ui_room_title(const char* room, const char* text) {
  if (text[0] == '\0') {
    prof_room_unset_titlebar_enctext(room);
  } else {
    prof_room_set_titlebar_enctext(room, text);
  }
}

static void ui_room_char(const char* room, int encrypted) {
  if (encrypted) {
    prof_room_set_message_char(room, "~");
  } else {
    prof_room_unset_message_char(room);
  }
}

static void ui_completions(const char* key, char** items) {
  _prof_completer_clear(OWNER, key);
  if (items[0] != NULL) _prof_completer_add(OWNER, key, items);
}

static void ui_log(int tone, const char* text) {
  switch (clamp_tone(tone)) {
    case MPOTR_TONE_WARNING: prof_log_warning(text); break;
    case MPOTR_TONE_ALERT: prof_log_error(text); break;
    default: prof_log_info(text); break;
  }
}

static const mpotr_ui_ops kOps = {ui_send_stanza, ui_room_line, ui_console_line, ui_room_title,
                                  ui_room_char,   ui_completions, ui_log};

/* ---- the /mpotr command ---------------------------------------------------------------- */

static void cmd_mpotr(char** args) {
  const char* room = prof_get_current_muc(); /* Profanity's pointers: not ours to free */
  const char* nick = room != NULL ? prof_get_room_nick(room) : NULL;
  mpotr_bridge_command(args, room, nick, now_ms());
}

static void on_timer(void) { mpotr_bridge_timer(now_ms()); }

static void register_command(void) {
  char* synopsis[] = {"/mpotr start|end|status",
                      "/mpotr fingerprint [<nick>]",
                      "/mpotr trust|untrust|block <nick>|<jid>",
                      "/mpotr verify <nick> [<question>]",
                      "/mpotr secret <nick> <secret>",
                      "/mpotr policy [verified|trusted]",
                      "/mpotr otp on|off|status|aliases",
                      "/mpotr otp device <path>",
                      "/mpotr otp alias <name> <nick>|<jid> ...",
                      "/mpotr otp unalias <name>",
                      "/mpotr otp to <name> <message>",
                      NULL};
  char* description =
      "Multi-party Off-the-Record (mpOTR) for group chat rooms. In a room, /mpotr start secures the "
      "conversation among every member who runs mpOTR: messages are end-to-end encrypted and "
      "authenticated, every member checks that all see the same transcript, and nothing is sent "
      "in the clear while the room is secured. Rooms must be non-anonymous. "
      "In one-time-pad (OTP) mode, every line is also encrypted with the pad you share with each "
      "member, through your pad device (mpotr-padd); a line that cannot be is not sent at all.";
  char* arguments[][2] = {{"start", "Secure the current room."},
                          {"end", "End the session: transcripts are compared, then keys published."},
                          {"status", "Members, their fingerprints and trust, session id and phase."},
                          {"fingerprint [<nick>]", "Show your fingerprint, or a member's."},
                          {"trust <nick>|<jid>", "You compared the member's fingerprint: mark it verified."},
                          {"untrust <nick>|<jid>", "Forget the recorded key (trusted on first use again)."},
                          {"block <nick>|<jid>", "Refuse this member's key, under this JID or any other; you stay out of a session they are in."},
                          {"verify <nick> [<question>]", "Verify a member by a secret you share (SMP)."},
                          {"secret <nick> <secret>", "Give the secret for a verification."},
                          {"policy [verified|trusted]", "Admit only members you verified to this room's session, or everyone not blocked (default)."},
                          {"otp on|off", "One-time-pad mode in this room: every line encrypted with the pad shared with each member."},
                          {"otp status", "OTP mode, the pads you share with the members, the pad device's socket."},
                          {"otp device <path>", "Your pad device's socket, for this run (default $MPOTR_PAD_SOCKET, else $XDG_RUNTIME_DIR/mpotr/padd.sock)."},
                          {"otp alias <name> <nick>|<jid> ...", "Name some members of this room for /mpotr otp to."},
                          {"otp unalias <name>", "Forget an alias; /mpotr otp aliases lists them."},
                          {"otp to <name> <message>", "Send one OTP line to that alias only; the others see that one was sent."},
                          {NULL, NULL}};
  char* examples[] = {"/mpotr start", "/mpotr status", "/mpotr verify bob Where did we first meet?",
                      "/mpotr secret bob the blue cafe", "/mpotr policy verified", "/mpotr otp on", "/mpotr otp alias core bob carol",
                      "/mpotr otp to core see you at noon", NULL};
  /* At most 3 arguments, the last one taking the rest of the line ("otp", "to", "core see you"):
   * the core splits what follows an action itself. */
  _prof_register_command(OWNER, "/mpotr", 0, 3, synopsis, description, arguments, examples, cmd_mpotr);
  _prof_completer_add(OWNER, "/mpotr", mpotr_bridge_subcommands());
  _prof_completer_add(OWNER, "/mpotr otp", mpotr_bridge_otp_actions());
  _prof_completer_add(OWNER, "/mpotr policy", mpotr_bridge_policy_values());
  _prof_register_timed(OWNER, on_timer, 1);
}

/* /quit runs Profanity's exit handler, which disconnects (calling our hooks) after the static
 * destructors of everything our code first used later than Profanity registered that handler.
 * Registered after the core exists, this runs before those: the sessions are closed while
 * everything is alive, and later hooks find no core. (Registered from this object, it is also
 * run and removed if the plugin is unloaded first.) */
static void at_exit(void) { mpotr_bridge_shutdown(now_ms()); }

static char* data_dir(void) {
  const char* xdg = getenv("XDG_DATA_HOME");
  const char* home = getenv("HOME");
  const char* tail = "/profanity/mpotr";
  char* out = NULL;
  if (xdg != NULL && xdg[0] == '/') {
    out = malloc(strlen(xdg) + strlen(tail) + 1);
    if (out != NULL) {
      strcpy(out, xdg);
      strcat(out, tail);
    }
  } else if (home != NULL) {
    const char* mid = "/.local/share";
    out = malloc(strlen(home) + strlen(mid) + strlen(tail) + 1);
    if (out != NULL) {
      strcpy(out, home);
      strcat(out, mid);
      strcat(out, tail);
    }
  }
  return out;
}

/* ---- hooks ------------------------------------------------------------------------------ */

EXPORT void prof_init(const char* const version, const char* const status, const char* const account_name,
                      const char* const fulljid) {
  (void)version;
  (void)status;
  (void)account_name;
  char* dir = data_dir();
  if (dir == NULL) {
    prof_cons_show("mpOTR: neither XDG_DATA_HOME nor HOME is set; the plugin stays off.");
    return;
  }
  int ok = mpotr_bridge_init(&kOps, dir);
  free(dir);
  if (!ok) return;
  atexit(at_exit);
  register_command();
  if (fulljid != NULL) mpotr_bridge_connect(fulljid, now_ms());  /* loaded while logged in */
}

EXPORT void prof_on_connect(const char* const account_name, const char* const fulljid) {
  (void)account_name;
  mpotr_bridge_connect(fulljid, now_ms());
}

EXPORT void prof_on_disconnect(const char* const account_name, const char* const fulljid) {
  (void)account_name;
  (void)fulljid;
  mpotr_bridge_disconnect(now_ms());
}

EXPORT void prof_on_shutdown(void) { mpotr_bridge_shutdown(now_ms()); }

EXPORT void prof_on_unload(void) { mpotr_bridge_shutdown(now_ms()); }

EXPORT int prof_on_message_stanza_receive(const char* const text) { return mpotr_bridge_message_receive(text, now_ms()); }

EXPORT int prof_on_presence_stanza_receive(const char* const text) {
  mpotr_bridge_presence_receive(text, now_ms());
  return 1; /* Profanity must see every presence: its room roster depends on it */
}

EXPORT char* prof_on_presence_stanza_send(const char* const text) { return mpotr_bridge_presence_send(text); }

EXPORT char* prof_on_message_stanza_send(const char* const text) { return mpotr_bridge_message_send(text); }

/* NULL cancels the send in 0.13; in newer Profanity it sends the original, which the message
 * stanza hook above then suppresses: either way nothing readable leaves. */
EXPORT char* prof_pre_room_message_send(const char* const barejid, const char* message) {
  if (mpotr_bridge_room_send(barejid, message, now_ms())) return strdup(message);
  return NULL;
}

EXPORT char* prof_pre_room_message_display(const char* const barejid, const char* const nick, const char* message) {
  return mpotr_bridge_room_display(barejid, nick, message);
}
