/* SPDX-License-Identifier: MIT
 * The C interface between the Profanity glue (mpotr.c, the only file that sees profapi.h) and
 * the C++ plugin core. Every function catches everything: no exception reaches Profanity.
 * Strings returned as char* come from malloc (Profanity frees them). Times are monotonic ms. */
#ifndef MPOTR_PLUGIN_BRIDGE_H
#define MPOTR_PLUGIN_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum mpotr_tone { MPOTR_TONE_INFO = 0, MPOTR_TONE_GOOD = 1, MPOTR_TONE_WARNING = 2, MPOTR_TONE_ALERT = 3 };

/* What the core may ask of Profanity (filled with profapi calls by mpotr.c). */
typedef struct mpotr_ui_ops {
  int (*send_stanza)(const char* xml);                       /* 0: offline */
  int (*room_line)(const char* room, int tone, const char* text);  /* 0: no such window */
  void (*console_line)(int tone, const char* text);
  void (*room_title)(const char* room, const char* text);    /* "" removes it */
  void (*room_char)(const char* room, int encrypted);
  void (*completions)(const char* key, char** items);         /* NULL-terminated, replaces */
  void (*log)(int tone, const char* text);
} mpotr_ui_ops;

/* 0 on failure (reported through ops->console_line). data_dir: where per-account files go. */
int mpotr_bridge_init(const mpotr_ui_ops* ops, const char* data_dir);
void mpotr_bridge_connect(const char* fulljid, int64_t now);
void mpotr_bridge_disconnect(int64_t now);
/* Leaves every session and frees the core (quit, unload). Safe to call twice. */
void mpotr_bridge_shutdown(int64_t now);

int mpotr_bridge_message_receive(const char* xml, int64_t now); /* 0: Profanity drops it */
void mpotr_bridge_presence_receive(const char* xml, int64_t now);
char* mpotr_bridge_presence_send(const char* xml);              /* NULL: unchanged */
char* mpotr_bridge_message_send(const char* xml);               /* NULL: unchanged */
int mpotr_bridge_room_send(const char* room, const char* text, int64_t now); /* 1 send, 0 cancel */
char* mpotr_bridge_room_display(const char* room, const char* nick, const char* body); /* NULL: unchanged */
void mpotr_bridge_command(char** args, const char* current_room, const char* room_nick, int64_t now);
void mpotr_bridge_timer(int64_t now);

/* NULL-terminated subcommand names for completion (static storage). */
char** mpotr_bridge_subcommands(void);
/* NULL-terminated actions of /mpotr otp for completion (static storage). */
char** mpotr_bridge_otp_actions(void);
/* NULL-terminated values of /mpotr policy for completion (static storage). */
char** mpotr_bridge_policy_values(void);

#ifdef __cplusplus
}
#endif

#endif
