/* SPDX-License-Identifier: MIT
 *
 * mpOTR chat, shutdown and key publication with a hostile relay (spec/mpotr.md §2, §6.3, §7.8).
 * Shared body; a configuration file defines the rules and includes it:
 *
 *   V1        v1 rules: at the shutdown deadline a missing member that presence shows out of the
 *             room is excused, and the key is published once the End of every member not excused
 *             is held (R-SD-10, R-SD-14); an offer with a higher attempt number closes the session
 *             (R-OFF-9)
 *   V2        v2 rules: the key is published only when every other member's End or Quit is held;
 *             presence is never consulted (at the deadline missing members are excused from the
 *             consistency rounds only; the key is withheld and KeyWithheld reported); offers never
 *             close an active session; after our End only Ends, Quits and KeyReveals are accepted
 *   MAC       (v2) entries, Shutdown, Digest, End and Quit carry a MAC under the group key
 *   QUIT      (v2) a member may quit (a signed Quit) before it has sent its End; QUITTERS (a bit
 *             mask, default all) limits which members may
 *   RELIABLE  the relay delivers every message once, in order per sender, and nothing else
 *   LIE_ABOUT the members whose presence the (hostile) relay may fake: a bit mask, default all
 *   MAXE      entries a member may write: 1 (default), or 2 for alice and 1 for the others
 *
 * Members 0, 1, 2 are alice, bob and carol, all honest. The session is established (setup is
 * abstracted away: every member holds every member's signing key S and the group key). README.md
 * describes the abstractions and the properties.
 */

#ifndef MAXE
#define MAXE 1
#endif
#define WRITES(i) (MAXE == 2 && (i) != 0 -> 1 : MAXE)   /* with MAXE 2, alice only writes 2 */
#ifndef LIE_ABOUT
#define LIE_ABOUT 7         /* the members whose presence the relay may fake (bit i: member i) */
#endif
#ifndef QUITTERS
#define QUITTERS 7
#endif
#define N 3

#if defined(V1) == defined(V2)
#error "define exactly one of V1, V2"
#endif
#if defined(V1) && (defined(MAC) || defined(QUIT))
#error "MAC and QUIT are v2 features"
#endif
#if MAXE < 1 || MAXE > 2
#error "MAXE is 1 or 2"
#endif

mtype = { carol, bob, alice };          /* for printf only (mtype numbers run backwards) */
#define WHO(i) ((i) == 0 -> alice : ((i) == 1 -> bob : carol))

/* Session phases (§6.3). QUITTED: the member quit (v2 Quit) and stopped. */
#define ACTIVE   0
#define CLOSING  1
#define DIGESTED 2
#define ENDED    3
#define REVEALED 4
#define CLOSED   5
#define QUITTED  6

/* Message kinds. K_E … K_EN and K_QT are signed with the sender's ephemeral key S; K_RV is the
 * published scalar itself; K_OF and K_PR are unauthenticated (an Offer, MUC presence). */
#define K_E  0   /* chat entry, val = seq */
#define K_SH 1   /* Shutdown, val = final_count */
#define K_DG 2   /* Digest */
#define K_EN 3   /* End */
#define K_RV 4   /* KeyReveal */
#define K_QT 5   /* Quit (v2) */
#define K_OF 6   /* Offer with a higher attempt number for the current roster, in a member's name */
#define K_PR 7   /* presence: member `from` shown to the recipient as unavailable */

/* What a member has broadcast: sent[x], one bit per message, in the order x sends them. */
#define B_E(s) (1 << ((s) - 1))            /* entry s, s = 1..MAXE */
#define B_SH   (1 << MAXE)
#define B_DG   (1 << (MAXE + 1))
#define B_EN   (1 << (MAXE + 2))
#define B_RV   (1 << (MAXE + 3))
#define B_QT   (1 << (MAXE + 4))
/* The message that bit b of sent[x] stands for. */
#define KIND_OF(b) ((b) < MAXE -> K_E : ((b) == MAXE -> K_SH : ((b) == MAXE + 1 -> K_DG : \
                   ((b) == MAXE + 2 -> K_EN : ((b) == MAXE + 3 -> K_RV : K_QT)))))
#define VAL_OF(x, b) ((b) < MAXE -> (b) + 1 : ((b) == MAXE -> nent[x] : 0))

#define BIT(j)      (1 << (j))
#define OTH(i)      (7 & ~BIT(i))                    /* the other members */
#define EBIT(j, s)  (1 << ((j) * MAXE + (s) - 1))    /* entry s of member j in a transcript */
#define EMASK(i, j) ((tr[i] >> ((j) * MAXE)) & ((1 << MAXE) - 1))
#define FIN(i, j)   fin[(i) * N + (j)]
#define FMASK(i, j) ((1 << FIN(i, j)) - 1)
#define COMPLETE(i, j) ((EMASK(i, j) & FMASK(i, j)) == FMASK(i, j))   /* entries 1..final held */
#define HIGHEST(i, j)  (EMASK(i, j) >= 2 -> 2 : EMASK(i, j))          /* for R-SD-4 */
#define PRES(i)     (OTH(i) & ~gone[i])              /* the others presence shows in the room */

/* ---- state; each array is indexed by the member whose view it is ---- */
byte ph[N];        /* session phase */
byte nent[N];      /* entries written */
byte tr[N];        /* entries shown (EBIT), own ones included: the transcript */
byte hasSh[N];     /* members whose Shutdown is held */
byte fin[N * N];   /* their final_count */
byte lost[N];      /* members whose missing entries up to their final count were declared lost */
byte hasDg[N];     /* members whose Digest is held */
byte hasEn[N];     /* members whose End is held */
byte hasQt[N];     /* members whose Quit is held (v2) */
byte rev[N];       /* members whose KeyReveal was accepted: key revoked (R-SD-9, R-SD-13) */
byte exc[N];       /* excused members: v1 from every round, v2 from the consistency rounds only */
byte gone[N];      /* members presence shows out of the room (v1; v2 never consults presence) */
bool rep[N];       /* waiting with a reason reported: the key is withheld (v1 ShutdownIncomplete
                      "until they leave", v2 KeyWithheld); no shutdown deadline runs */
bool keypub[N];    /* KeyReveal sent: from now on the relay knows the signing key */
byte sent[N];      /* messages broadcast */
#ifdef RELIABLE
byte pend[N * N];  /* pend[x*N+y]: messages of x not yet delivered to y */
#endif

/* Property flags, for readable assertions: set just before their assertion and reset just after,
 * so they are 0 in every stored state. */
byte forged_entry_shown;
byte waiting_without_reason;
byte key_not_published;

/* Scratch, used within one indivisible step; CLEAN resets it at the end of every step, so it is 0
 * in every stored state. */
byte mk, mf, mv, mg, mm;   /* the message being handled: kind, from, val, genuine, mac */
byte to;                   /* its recipient */
byte j, q, miss, w, sk;
#define CLEAN mk = 0; mf = 0; mv = 0; mg = 0; mm = 0; to = 0; j = 0; q = 0; miss = 0; w = 0; sk = 0
#define MSG(k, x, v, g, m, y) mk = k; mf = x; mv = v; mg = g; mm = m; to = y

/* For the trail (spin -t -T): the names of the members in mask m; a message. */
inline names(m) {
  for (q : 0 .. N - 1) {
    if
    :: (m) & BIT(q) -> printf(" %e", WHO(q))
    :: else -> skip
    fi
  };
  if
  :: (m) == 0 -> printf(" nobody")
  :: else -> skip
  fi
}
inline message_name() {
  if
  :: mk == K_E -> printf("entry %d", mv)
  :: mk == K_SH -> printf("Shutdown (final %d)", mv)
  :: mk == K_DG -> printf("Digest")
  :: mk == K_EN -> printf("End")
  :: mk == K_RV -> printf("KeyReveal")
  :: mk == K_QT -> printf("Quit")
  :: else -> skip
  fi
}

/* The shutdown deadline is armed in Closing … Revealed unless the key is withheld (§6.4). Timers
 * fire at any time: a message may take longer than any timeout. */
#define ARMED(i) (ph[i] >= CLOSING && ph[i] <= REVEALED && !rep[i])

/* ---- rules ---- */

/* Members not waited for in the current round. */
#ifdef V1
#define WAIVED(i) exc[i]
#define ENDQ(i)   hasEn[i]
#else
#define WAIVED(i) (ph[i] == ENDED -> 0 : (ph[i] == REVEALED -> hasQt[i] : (exc[i] | hasQt[i])))
#define ENDQ(i)   (hasEn[i] | hasQt[i])
#endif

/* miss := the members whose message of the current round we lack (§6.3, R-SD-10). */
inline missing(me) {
  miss = 0;
  w = WAIVED(me);
  for (j : 0 .. N - 1) {
    if
    :: j != me && !(w & BIT(j)) ->
       if
       :: ph[me] == CLOSING &&
          (!(hasSh[me] & BIT(j)) || (!COMPLETE(me, j) && !(lost[me] & BIT(j)))) -> miss = miss | BIT(j)
       :: ph[me] == DIGESTED && !(hasDg[me] & BIT(j)) -> miss = miss | BIT(j)
       :: ph[me] == ENDED && !(ENDQ(me) & BIT(j)) -> miss = miss | BIT(j)
       :: ph[me] == REVEALED && !(rev[me] & BIT(j)) -> miss = miss | BIT(j)
       :: else -> skip
       fi
    :: else -> skip
    fi
  }
}

inline broadcast(me, b) {
  sent[me] = sent[me] | (b);
#ifdef RELIABLE
  for (j : 0 .. N - 1) {
    if
    :: j != me -> pend[me * N + j] = pend[me * N + j] | (b)
    :: else -> skip
    fi
  }
#endif
}

/* A variable that no later step reads is reset, so that states differing only in it are one:
 * Shutdowns, final counts, losses and the transcript after our Digest; Digests after our End;
 * Ends after our KeyReveal; everything once closed (the engine forgets a closed session). */
#define CLEAR_FIN(me) fin[(me) * N] = 0; fin[(me) * N + 1] = 0; fin[(me) * N + 2] = 0
#define FORGET(me) tr[me] = 0; hasSh[me] = 0; CLEAR_FIN(me); lost[me] = 0; hasDg[me] = 0; \
  hasEn[me] = 0; hasQt[me] = 0; rev[me] = 0; exc[me] = 0; gone[me] = 0; rep[me] = false

/* R-SD-7: move on through every round that is complete; each move re-arms the deadline. Called at
 * the end of every step of a member (idempotent). */
inline progress(me) {
  do
  :: ph[me] >= CLOSING && ph[me] <= REVEALED ->
     missing(me);
     if
     :: miss != 0 -> break
     :: else
     fi;
     rep[me] = false;
     if
     :: ph[me] == CLOSING ->
        printf("%e: Digest sent\n", WHO(me));
        broadcast(me, B_DG); ph[me] = DIGESTED;
        hasSh[me] = 0; CLEAR_FIN(me); lost[me] = 0; tr[me] = 0
     :: ph[me] == DIGESTED ->
        /* R-SD-8: the digests held are compared; the members without one were excused */
        printf("%e: transcript compared with the digests of", WHO(me)); names(hasDg[me]);
        printf(" (excused:"); names(OTH(me) & ~hasDg[me]); printf("); End sent\n");
        broadcast(me, B_EN); ph[me] = ENDED;
        hasDg[me] = 0;
#ifdef V2
        exc[me] = 0                                     /* not read from Ended on */
#endif
     :: ph[me] == ENDED ->
        printf("%e: KeyPublished (KeyReveal sent)\n", WHO(me));
        broadcast(me, B_RV); keypub[me] = true; ph[me] = REVEALED;
        hasEn[me] = 0; gone[me] = 0
     :: ph[me] == REVEALED ->
        printf("%e: SessionClosed\n", WHO(me));
        ph[me] = CLOSED; FORGET(me)
     fi
  :: else -> break
  od
}

/* §6.3 → Closing (R-SD-1, R-OFF-9, R-MEM-2, restart(), leave()): our Shutdown, final_count =
 * entries written. */
inline begin_shutdown(me) {
  printf("%e: SessionClosing (Shutdown sent, final %d)\n", WHO(me), nent[me]);
  ph[me] = CLOSING; broadcast(me, B_SH)
}

/* The shutdown deadline fires (v1: R-SD-10). */
inline deadline(me) {
  missing(me);
  if
  :: ph[me] == REVEALED ->
     printf("%e: shutdown deadline, ShutdownIncomplete (no KeyReveal from", WHO(me)); names(miss);
     printf("); SessionClosed\n");
     ph[me] = CLOSED; FORGET(me)
#ifdef V1
  :: else ->
     printf("%e: shutdown deadline, ShutdownIncomplete", WHO(me)); names(miss);
     printf("; excused, not in the room:"); names(miss & ~PRES(me)); printf("\n");
     exc[me] = exc[me] | (miss & ~PRES(me));
     if
     :: miss & PRES(me) ->
        printf("%e: key withheld until they leave:", WHO(me)); names(miss & PRES(me)); printf("\n");
        rep[me] = true
     :: else -> skip
     fi
#else
  :: ph[me] == ENDED ->
     printf("%e: shutdown deadline, KeyWithheld (no End or Quit from", WHO(me)); names(miss);
     printf(")\n");
     rep[me] = true
  :: else ->
     printf("%e: shutdown deadline, ShutdownIncomplete", WHO(me)); names(miss);
     printf(", excused from the consistency check\n");
     exc[me] = exc[me] | miss
#endif
  fi
}

/* A gap timer fires in Closing (R-DATA-8): the entries still missing up to final counts are lost. */
#define GAP_AT(me, j) ((hasSh[me] & BIT(j)) && !(lost[me] & BIT(j)) && !COMPLETE(me, j))
#define GAP_PENDING(me) (ph[me] == CLOSING && (GAP_AT(me, 0) || GAP_AT(me, 1) || GAP_AT(me, 2)))
inline gap(me) {
  for (j : 0 .. N - 1) {
    if
    :: GAP_AT(me, j) -> lost[me] = lost[me] | BIT(j)
    :: else -> skip
    fi
  };
  printf("%e: MessageLost (entries of", WHO(me)); names(lost[me]); printf(")\n")
}

/* A signed message that passed KeyRevoked and (v2) the MAC check. */
inline receive_signed(me) {
  if
  :: mk == K_E ->                                       /* R-DATA-4 … R-DATA-7 */
     if
     :: ph[me] > CLOSING -> skip                        /* R-DATA-6: not after our Digest */
     :: tr[me] & EBIT(mf, mv) -> skip                   /* Duplicate / Equivocation */
     :: (hasSh[me] & BIT(mf)) && mv > FIN(me, mf) -> skip   /* R-DATA-5 */
     :: else ->
        printf("%e: shows entry %d of %e\n", WHO(me), mv, WHO(mf));
        if
        :: !mg -> printf("%e: ^^^ FORGED: %e never wrote it\n", WHO(me), WHO(mf))
        :: else
        fi;
        forged_entry_shown = !mg;
        assert(!forged_entry_shown);                    /* property (a) */
        forged_entry_shown = 0;
        tr[me] = tr[me] | EBIT(mf, mv)
     fi
  :: mk == K_SH ->                                      /* R-SD-1 … R-SD-5 */
     if
     :: ph[me] > CLOSING -> skip                        /* no effect (v2: rejected after our End) */
     :: hasSh[me] & BIT(mf) -> skip                     /* Duplicate / Equivocation */
     :: HIGHEST(me, mf) > mv -> skip                    /* R-SD-4 Equivocation */
     :: else ->
        hasSh[me] = hasSh[me] | BIT(mf); FIN(me, mf) = mv;
        if
        :: ph[me] == ACTIVE -> begin_shutdown(me)       /* R-SD-1 */
        :: else
        fi
     fi
  :: mk == K_DG ->                                      /* R-SD-6 */
     if
     :: ph[me] == ACTIVE -> skip                        /* "digest before any shutdown" */
     :: ph[me] > DIGESTED -> skip                       /* no effect (v2: rejected after our End) */
     :: else -> hasDg[me] = hasDg[me] | BIT(mf)         /* or Duplicate / Equivocation: no change */
     fi
  :: mk == K_EN ->                                      /* R-SD-14 */
     if
     :: ph[me] == ACTIVE -> skip                        /* "end before any shutdown" */
     :: ph[me] > ENDED -> skip                          /* no effect after our KeyReveal */
     :: else -> hasEn[me] = hasEn[me] | BIT(mf)
     fi
#ifdef V2
  :: mk == K_QT -> hasQt[me] = hasQt[me] | BIT(mf)      /* v2: excused, accepts nothing more */
#endif
  :: else -> skip
  fi
}

/* One delivered message (§7). A rejected message changes nothing (R-GEN-1). */
inline receive(me) {
  if
  :: ph[me] >= CLOSED -> skip                           /* forgotten (only its tag is kept), or quit */
  :: else ->
     if
     :: mk == K_RV -> rev[me] = rev[me] | BIT(mf)       /* R-SD-9, R-SD-13: in any phase */
     :: mk == K_PR ->                                   /* a roster change (§13.2) */
#ifdef V1
        gone[me] = gone[me] | BIT(mf);
#endif
        if
        :: ph[me] == ACTIVE -> begin_shutdown(me)       /* R-MEM-2: a new roster, a new session */
#ifdef V1
        :: ph[me] != ACTIVE && rep[me] ->               /* R-SD-10: set_roster() while withheld */
           missing(me);
           if
           :: miss & ~PRES(me) ->
              printf("%e: set_roster excuses", WHO(me)); names(miss & ~PRES(me)); printf("\n");
              exc[me] = exc[me] | (miss & ~PRES(me))
           :: else
           fi
#endif
        :: else -> skip                                 /* v2: presence is never consulted */
        fi
     :: mk == K_OF ->
#ifdef V1
        if
        :: ph[me] == ACTIVE -> begin_shutdown(me)       /* R-OFF-9: a higher attempt closes it */
        :: else -> skip
        fi
#else
        skip                                            /* v2: held and reported, no close */
#endif
     :: else ->                                         /* signed */
        if
        :: rev[me] & BIT(mf) -> skip                    /* R-DATA-2 KeyRevoked */
#ifdef MAC
        :: !(rev[me] & BIT(mf)) && !mm -> skip          /* BadMac */
        :: !(rev[me] & BIT(mf)) && mm -> receive_signed(me)
#else
        :: else -> receive_signed(me)
#endif
        fi
     fi
  fi
}

/* ---- members: what they do on their own; each step ends with R-SD-7 ---- */
active [N] proctype Member() {
end_member:
  do
  :: d_step { ph[_pid] == ACTIVE && nent[_pid] < WRITES(_pid) ->      /* send_text() */
       nent[_pid]++; tr[_pid] = tr[_pid] | EBIT(_pid, nent[_pid]); broadcast(_pid, B_E(nent[_pid]));
       printf("%e: writes entry %d\n", WHO(_pid), nent[_pid]); CLEAN }
  :: d_step { ph[_pid] == ACTIVE -> begin_shutdown(_pid); progress(_pid); CLEAN } /* restart(), leave() */
  :: d_step { ARMED(_pid) -> deadline(_pid); progress(_pid); CLEAN }          /* the shutdown timer */
  :: d_step { GAP_PENDING(_pid) -> gap(_pid); progress(_pid); CLEAN }         /* a gap timer */
#ifdef QUIT
  :: d_step { ph[_pid] < ENDED && (QUITTERS & BIT(_pid)) ->                   /* Engine::quit() */
       printf("%e: quits (Quit sent)\n", WHO(_pid));
       broadcast(_pid, B_QT); ph[_pid] = QUITTED; FORGET(_pid); CLEAN }
#endif
  od
}

/* ---- the relay ---- */

#ifdef RELIABLE
/* Every message once, in order per sender: the lowest pending bit of pend[x*N+y]. */
#define RELAY(x, y) \
  :: pend[(x) * N + (y)] -> \
     sk = 0; do :: pend[(x) * N + (y)] & BIT(sk) -> break :: else -> sk++ od; \
     pend[(x) * N + (y)] = pend[(x) * N + (y)] & ~BIT(sk); \
     MSG(KIND_OF(sk), x, VAL_OF(x, sk), 1, 1, y)
#else
/* Any message x has broadcast, to y, at any time and any number of times: delay, reorder, replay,
 * duplication. A message never delivered is dropped. */
#define RELAY1(x, y, b) :: sent[x] & BIT(b) -> MSG(KIND_OF(b), x, VAL_OF(x, b), 1, 1, y)
#define RELAY(x, y) RELAY1(x, y, 0) RELAY1(x, y, 1) RELAY1(x, y, 2) RELAY1(x, y, 3) \
                    RELAY1(x, y, 4) RELAY1(x, y, 5) RELAY1(x, y, 6)
#endif

/* Forgery with x's published key: any signed message in x's name, to y. The relay cannot make the
 * MAC under the group key (mac = 0). (x's KeyReveal itself is in sent[x]: RELAY replays it.) */
#define FORGE1(x, y, k, v) :: keypub[x] -> MSG(k, x, v, 0, 0, y)
#if MAXE >= 2
#define FORGE_E(x, y) FORGE1(x, y, K_E, 1) FORGE1(x, y, K_E, 2) \
                      FORGE1(x, y, K_SH, 0) FORGE1(x, y, K_SH, 1) FORGE1(x, y, K_SH, 2)
#else
#define FORGE_E(x, y) FORGE1(x, y, K_E, 1) FORGE1(x, y, K_SH, 0) FORGE1(x, y, K_SH, 1)
#endif
#ifdef V2
#define FORGE(x, y) FORGE_E(x, y) FORGE1(x, y, K_DG, 0) FORGE1(x, y, K_EN, 0) FORGE1(x, y, K_QT, 0)
#else
#define FORGE(x, y) FORGE_E(x, y) FORGE1(x, y, K_DG, 0) FORGE1(x, y, K_EN, 0)
#endif

/* Unauthenticated: an Offer in x's name to y; x shown to y as unavailable (if x is in LIE_ABOUT).
 * One lie per pair: v2 keeps nothing of presence, and in v1 showing x available again only keeps
 * y withholding its key. */
#define OFFER(x, y) :: MSG(K_OF, x, 0, 0, 0, y)
#define LIE(x, y) :: (LIE_ABOUT & BIT(x)) && !(gone[y] & BIT(x)) -> MSG(K_PR, x, 0, 0, 0, y)

#define PAIRS(F) F(0, 1) F(0, 2) F(1, 0) F(1, 2) F(2, 0) F(2, 1)

active proctype Relay() {
end_relay:
  do
  :: atomic {
       if                   /* choose a message and a recipient ... */
       PAIRS(RELAY)
#ifndef RELIABLE
       PAIRS(FORGE)
       PAIRS(OFFER)
       PAIRS(LIE)
#endif
       fi;
       d_step {             /* ... which receives and processes it, in one step */
         if
         :: mk == K_OF -> printf("relay: injects an offer in %e's name to %e\n", WHO(mf), WHO(to))
         :: mk == K_PR -> printf("relay: shows %e to %e as unavailable\n", WHO(mf), WHO(to))
         :: else ->
            if
            :: mg -> printf("relay: delivers %e's ", WHO(mf))
            :: else -> printf("relay: FORGES %e's ", WHO(mf))
            fi;
            message_name(); printf(" to %e\n", WHO(to))
         fi;
         receive(to); progress(to); CLEAN
       }
     }
#ifndef RELIABLE
  :: break              /* the relay stops: what it still holds is dropped; no more lies */
#endif
  od
}

/* Property (b): in every end state (nothing can move any more) every member has closed, quit, or
 * waits with a reason reported. With RELIABLE, every member has also published its key or quit. */
active proctype Monitor() {
  timeout ->
  d_step {
    for (j : 0 .. N - 1) {
      waiting_without_reason = (ph[j] != CLOSED && ph[j] != QUITTED && !rep[j]);
      assert(!waiting_without_reason);
      waiting_without_reason = 0;
#ifdef RELIABLE
      key_not_published = (ph[j] != QUITTED && !keypub[j]);
      assert(!key_not_published);
      key_not_published = 0
#endif
    };
    CLEAN
  }
}
