"""The engine: one member's protocol state for one room (spec §6.1, §7, §8), sans I/O.

Every call takes `now` (ms, monotonic) and returns an Output: payloads to broadcast, events,
and wake_at. A call that raises MpotrError leaves the engine exactly as it was (R-GEN-1): the
state is snapshotted before the call and restored on error.
"""
from __future__ import annotations

import collections
import copy

from . import codec
from . import keysched as ks
from .codec import Message, MAX_NICK, MAX_TEXT
from .crypto import H, PrivateKey, point_valid, verify_digest
from .errors import ErrorCode as E, MpotrError
from .events import Output
from .session import Session
from .setup import Attempt

DEFAULT_TIMEOUTS = {"setup": 30000, "heartbeat": 5000, "gap": 10000, "confirm": 20000,
                    "shutdown": 15000}
MAX_ATTEMPT_JUMP = 64
MAX_PENDING_OFFERS = 4
MAX_PENDING_SENDERS = 256
MAX_NONCES = 512
MAX_OWN = 256
MAX_CLOSING = 4
MAX_RETIRED = 16
MAX_ROOM = 255
MAX_MEMBERS = 128


def err(code, detail=""):
    return MpotrError(code, detail)


def b(x) -> bytes:
    return x.encode() if isinstance(x, str) else bytes(x)


class Engine:
    def __init__(self, room: str, nick: str, identity: PrivateKey, rng, timeouts=None):
        self.room = b(room)
        self.nick = b(nick)
        self.identity = identity
        self.rng = rng
        self.timeouts = dict(DEFAULT_TIMEOUTS, **(timeouts or {}))
        self.room_members: dict[bytes, str] | None = None   # nick -> jid, as set_roster gave it
        self.left_out: dict[bytes, list] = {}                # nick -> whom it refuses ([] excluded)
        self.attempt_no = 0
        self.attempt: Attempt | None = None
        self.session: Session | None = None                  # the latest established session
        self.closing: list[Session] = []                     # the one that began closing first first
        self.retired = collections.deque(maxlen=MAX_RETIRED)
        self.pending_offers: dict[bytes, list[Message]] = {}
        self.nonces = collections.deque(maxlen=MAX_NONCES)
        self.own_nonces: list[bytes] = []
        self.own_hashes = collections.deque(maxlen=MAX_OWN)
        self.leaving = False
        self.left = False
        self.ready_emitted = False
        self.out = Output()

    # --- plumbing ------------------------------------------------------------------------------

    def _call(self, fn, now):
        snap = copy.deepcopy({k: v for k, v in self.__dict__.items() if k != "out"},
                             {id(self): self})
        self.out = Output()
        try:
            fn()
            self.check_ready_to_leave()                                      # R-SD-7, §6.4
        except MpotrError:
            self.__dict__.update(snap)
            self.out = Output()
            raise
        out = self.out
        self.out = Output()
        out.wake_at = self.wake_at()
        return out

    def broadcast(self, payload: bytes, own_chat=False):
        self.out.broadcasts.append(payload)
        if not own_chat:
            self.own_hashes.append(H(payload))

    def remember_nonce(self, nonce: bytes, own=False):
        if nonce not in self.nonces:
            self.nonces.append(nonce)
        if own:
            self.own_nonces.append(nonce)

    def sessions(self) -> list[Session]:
        return ([self.session] if self.session else []) + self.closing

    def find_session(self, tag: bytes):
        for s in self.sessions():
            if s.tag == tag:
                return s
        return None

    def wake_at(self):
        d = []
        a = self.attempt
        if a and a.phase in ("offers", "key_shares", "attests"):
            d.append(a.deadline)
        for s in self.sessions():
            d += s.deadlines()
        return min(d) if d else None

    # --- queries -------------------------------------------------------------------------------

    @property
    def phase(self) -> str:
        if self.left or (self.leaving and self.ready_emitted):
            return "left"
        if self.leaving:
            return "leaving"
        if self.session and self.session.phase == "active":
            return "established"
        if self.nick in self.left_out:
            return "out"
        if self.attempt and self.attempt.phase in ("offers", "key_shares", "attests"):
            return "setting_up"
        return "idle"

    def roster(self) -> list[bytes] | None:
        if self.room_members is None:
            return None
        return sorted(n for n in self.room_members if n not in self.left_out or n == self.nick)

    def roster_digest(self):
        r = self.roster()
        return ks.roster_digest(self.room, r) if r is not None else None

    # --- API -----------------------------------------------------------------------------------

    def set_roster(self, members, now: int) -> Output:
        """members: iterable of (nick, jid), ourselves included (R-MEM-1)."""
        return self._call(lambda: self._set_roster(members, now), now)

    def receive(self, from_nick, payload: bytes, now: int) -> Output:
        return self._call(lambda: self._receive(b(from_nick), bytes(payload), now), now)

    def send_text(self, text, now: int) -> Output:
        return self._call(lambda: self._send_text(b(text), now), now)

    def tick(self, now: int) -> Output:
        return self._call(lambda: self._tick(now), now)

    def leave(self, now: int) -> Output:
        return self._call(lambda: self._leave(now), now)

    def quit(self, now: int) -> Output:
        return self._call(lambda: self._quit(now), now)

    def restart(self, now: int) -> Output:
        return self._call(lambda: self._restart(now), now)

    # --- roster (R-MEM-1 … R-MEM-5, R-ADM-3) -------------------------------------------------------

    def _set_roster(self, members, now):
        if self.leaving or self.left:
            raise err(E.InvalidState, "leaving")
        if not 1 <= len(self.room) <= MAX_ROOM:
            raise err(E.InvalidArgument, "room address empty or longer than 255 bytes")
        new = {}
        for nick, jid in members:
            nick = b(nick)
            if not 1 <= len(nick) <= MAX_NICK or nick in new:
                raise err(E.InvalidArgument, "empty, long or repeated nick")
            new[nick] = jid
        if self.nick not in new or len(new) > MAX_MEMBERS:
            raise err(E.InvalidArgument, "our nick is missing, or more than 128 members")
        if new == self.room_members:
            return
        old = self.room_members or {}
        old_roster = self.roster()
        was_out = self.nick in self.left_out
        added = any(n not in old or old[n] != j for n, j in new.items())
        self.room_members = new
        # R-ADM-3: who is out is re-decided on any addition; a refuser stays out only while a
        # member it refuses is in the room; an excluded member while it stays in the room
        if added:
            self.left_out = {}
        else:
            self.left_out = {n: r for n, r in self.left_out.items()
                             if n in new and old.get(n) == new[n]
                             and (not r or any(x in new for x in r))}
        # leaving Out changes the roster the attempts use (the room's members minus those left
        # out, us among them while Out), and "the attempt that starts when that ends uses or
        # drops" the offers buffered while Out (R-OFF-6, R-ADM-3): an attempt starts even when
        # the others' part of the roster is unchanged (every member we refused was out too)
        if self.roster() == old_roster and not added and not (was_out and
                                                               self.nick not in self.left_out):
            return
        self.new_attempt_for_roster(now, "the room's members changed")

    def new_attempt_for_roster(self, now, reason):
        self.close_active(now, reason)
        self.abandon_attempt()
        roster = self.roster()
        if self.nick in self.left_out or len(roster) < 2:
            return
        rd = ks.roster_digest(self.room, roster)
        nums = [m["attempt"] for lst in self.pending_offers.values() for m in lst
                if m["roster_digest"] == rd and m["attempt"] <= MAX_ATTEMPT_JUMP]
        self.start_seeded(max(nums) if nums else 0, now)

    def take_pending(self, rd, number, drop_others=False):
        """The buffered (or held) offers for roster digest rd with that number, removed from the
        buffer, in seeding order (R-OFF-6): senders in byte order of their nicks, each sender's
        offers in arrival order. drop_others: every other offer for rd is dropped too."""
        seeds = []
        for nick in sorted(self.pending_offers):
            keep = []
            for m in self.pending_offers[nick]:
                if m["roster_digest"] == rd and m["attempt"] == number:
                    seeds.append(m)
                elif m["roster_digest"] == rd and drop_others:
                    pass
                else:
                    keep.append(m)
            if keep:
                self.pending_offers[nick] = keep
            else:
                del self.pending_offers[nick]
        return seeds

    def start_seeded(self, number, now, trigger=None):
        """R-OFF-6: "Every start of an attempt is seeded so, whatever starts it" — set_roster(),
        the next attempt after a verdict (§6.2), restart() (R-MEM-2), the offers held while the
        Active session ran once it is no longer Active, R-OFF-9's own trigger and R-OFF-11's
        conflict: with the offers buffered for its roster carrying its number (R-OFF-9's trigger
        seeded last, after them), and every other offer buffered for that roster is dropped."""
        seeds = self.take_pending(self.roster_digest(), number, drop_others=True)
        if trigger is not None:
            seeds.append(trigger)
        self.start_attempt(number, now, seeds=seeds)

    def start_attempt(self, number, now, seeds=()):
        roster = self.roster()
        self.attempt_no = number
        self.attempt = Attempt(self, number, roster, [self.room_members[n] for n in roster], now)
        self.attempt.start(list(seeds), now)

    def close_active(self, now, reason):
        s = self.session
        if s is not None:
            s.begin_shutdown(now, reason)
            if s.phase != "closed":
                self.closing.append(s)
                while len(self.closing) > MAX_CLOSING:                       # R-MEM-5
                    old = self.closing.pop(0)
                    self.retired.append(old.tag)
            self.session = None

    def abandon_attempt(self):
        a = self.attempt
        if a is not None and a.phase in ("offers", "key_shares", "attests"):
            a.quit_if_attesting()                                            # R-AT-10
            a.phase = "failed"
            a.erase()

    # --- offers (R-OFF-1 … R-OFF-14) -------------------------------------------------------------

    def check_offer_points(self, m: Message):
        for f in ("identity_key", "dh_key", "signing_key"):
            if not point_valid(m[f]):
                raise err(E.DecodeBadValue, f"{f} not on P-256")

    def on_offer(self, m: Message, frm: bytes, now: int):
        if m["nick"] != frm:                                                 # R-OFF-1
            raise err(E.NickMismatch, "offer nick differs from the transport sender")
        a = self.attempt
        if frm == self.nick:                                                 # R-OFF-2
            if a is not None and m["nonce"] == a.nonce:
                return self.same_nonce(a, a.my_offer, m, own=True)
            if m["nonce"] in self.own_nonces:
                return
            raise err(E.NickMismatch, "an offer in our name that we did not send")
        if a is not None and a.phase != "done":                              # R-OFF-3
            # an established attempt is discarded (§6.2): a late copy of one of its offers
            # falls through to the nonce memory (Replay), as the reference answers it too
            i = a.index_of(frm)
            if i is not None and i in a.offers and a.offers[i]["nonce"] == m["nonce"]:
                return self.same_nonce(a, a.offers[i], m)
        if m["nonce"] in self.nonces:                                        # R-OFF-4
            raise err(E.Replay, "offer nonce seen before")
        if self.leaving or self.left:                                        # R-OFF-5
            raise err(E.UnexpectedMessage, "leaving")
        rd = self.roster_digest()
        if rd is None or m["roster_digest"] != rd or self.nick in self.left_out:  # R-OFF-6
            return self.buffer_offer(m)
        if frm not in self.roster():                                         # R-OFF-7
            raise err(E.NotAMember, "sender not in our roster")
        if m["attempt"] < self.attempt_no:                                   # R-OFF-8
            raise err(E.UnexpectedMessage, "stale attempt number")
        if m["attempt"] > self.attempt_no + MAX_ATTEMPT_JUMP:                # R-OFF-9
            raise err(E.UnexpectedMessage, "attempt number too far ahead")
        if m["attempt"] > self.attempt_no:
            s = self.session
            if s is not None and s.phase == "active" and frm in s.nicks:
                held = [x for x in self.pending_offers.get(frm, [])
                        if x["roster_digest"] == rd and x["nonce"] != m["nonce"]]
                if held and not getattr(s, "unauth_reported", set()).__contains__(frm):
                    s.unauth_reported = getattr(s, "unauth_reported", set()) | {frm}   # R-OFF-14
                    s.emit("unauthenticated_offers", nick=frm.decode("utf-8", "replace"),
                           detail="a second offer in its name while the session runs")
                return self.buffer_offer(m)
            # R-OFF-9, no Active session of the sender: close the session if any, give up the
            # running attempt (its Quit if in Attests), start one with that number, seeded as
            # R-OFF-6 seeds one with the buffered or held offers carrying it, then with this
            # offer, checked only as that last seed: its errors (an invalid point) are Rejected
            # events after those of the other seeds (R-GEN-2), and a rejected offer is neither
            # stored nor its nonce remembered; every other offer buffered for our roster is
            # dropped
            self.close_active(now, f"'{frm.decode('utf-8', 'replace')}' started over")
            self.abandon_attempt()
            self.start_seeded(m["attempt"], now, trigger=m)
            return
        if a is None or a.phase not in ("offers", "key_shares", "attests"):  # R-OFF-10
            raise err(E.UnexpectedMessage, "our attempt with this number has ended")
        i = a.index_of(frm)                                                  # R-OFF-11
        if i in a.offers:
            return self.conflicting_offer(a, now)
        self.check_offer_points(m)
        if a.phase != "offers":
            raise err(E.UnexpectedMessage, "offers round is over")
        a.store_offer(m, now)

    def conflicting_offer(self, a: Attempt, now):
        """R-OFF-11: an offer from a member whose offer with another nonce is held: a new
        attempt with our number + 1, seeded with neither (its Quit first if in Attests), but,
        like every start (R-OFF-6), with the offers buffered for our roster carrying its number
        (there are none in practice: an offer for our roster is buffered only while we are Out
        or an Active session runs, and no attempt runs then)."""
        if a.number >= 0xFFFFFFFF:
            raise err(E.LimitExceeded, "attempt numbers exhausted")
        self.abandon_attempt()
        self.start_seeded(a.number + 1, now)

    def same_nonce(self, a, held: Message, m: Message, own=False):
        if m["attempt"] != a.number or m["roster_digest"] != a.roster_digest:
            raise err(E.RosterMismatch, "same nonce, other attempt or roster")
        if held.encoding == m.encoding:
            if own:
                return
            raise err(E.Duplicate, "offer already held")
        raise err(E.NickMismatch if own else E.UnexpectedMessage, "same nonce, other offer")

    def buffer_offer(self, m: Message):
        nick = m["nick"]
        lst = self.pending_offers.setdefault(nick, [])
        if any(x["nonce"] == m["nonce"] for x in lst):
            return
        lst.append(m)
        if len(lst) > MAX_PENDING_OFFERS:
            lst.pop(0)
        while len(self.pending_offers) > MAX_PENDING_SENDERS:                # R-OFF-13
            del self.pending_offers[min(self.pending_offers)]

    # --- attempts and sessions -------------------------------------------------------------------

    def attempt_failed(self, a: Attempt, now):
        a.phase = "failed"
        a.erase()

    def attempt_verdict(self, a: Attempt, out_nicks, now, refusals=None):
        """§6.2: a verdict leaves members out; the next attempt starts at once without them,
        "seeded with the offers buffered for that roster with that number" (R-OFF-6: a faster
        member's offer for it may have arrived while our roster was still the larger one)."""
        a.phase = "failed"
        a.erase()
        for nk in out_nicks:
            self.left_out[nk] = list((refusals or {}).get(nk, []))
        if self.nick in self.left_out:
            return                                                           # we are Out
        roster = self.roster()
        if len(roster) >= 2:
            self.start_seeded(a.number + 1, now)

    def establish(self, a: Attempt, now):
        s = Session(self, a, now)
        if self.session is not None:
            self.close_active(now, "a new session was established")
        self.session = s
        a.phase = "done"
        a.erase()
        s.emit("session_established", nicks=[n.decode("utf-8", "replace") for n in s.nicks])

    def session_stopped_by_member(self, s: Session, now):
        """R-OFF-9: an authenticated Shutdown or Quit ended the Active session; held offers for
        our roster with a higher number take effect."""
        if s is not self.session:
            return
        rd = self.roster_digest()
        nums = [m["attempt"] for lst in self.pending_offers.values() for m in lst
                if m["roster_digest"] == rd and self.attempt_no < m["attempt"] <= self.attempt_no + MAX_ATTEMPT_JUMP]
        if not nums or self.leaving:
            return
        self.close_active(now, "restart")
        self.abandon_attempt()
        # the attempt that starts when the Active session ends uses or drops the offers held
        # for our roster (R-OFF-6): those with its number seed it, the others are dropped
        self.start_seeded(max(nums), now)

    def retire(self, s: Session):
        if s is self.session:
            self.session = None
        if s in self.closing:
            self.closing.remove(s)
        self.retired.append(s.tag)

    def check_ready_to_leave(self):
        """ReadyToLeave once our key is published or withheld in every session, once, as the
        last event of the call — tick(), receive() or leave() — in which that happens (§6.4,
        R-SD-7)."""
        if not self.leaving or self.ready_emitted or self.left:
            return                         # quit() never reports it, even after leave() (R-SD-17)
        if all(s.key_state in ("published", "withheld") or s.phase == "closed"
               for s in self.sessions()):
            self.ready_emitted = True
            self.out.emit("ready_to_leave")

    # --- receive ---------------------------------------------------------------------------------

    def _receive(self, frm: bytes, payload: bytes, now: int):
        if frm == self.nick and H(payload) in self.own_hashes:               # R-ECHO-1
            return
        m = codec.decode(payload)                                            # §4.9
        if m.type == "offer":
            return self.on_offer(m, frm, now)
        if m.type in ("key_share", "attest", "accuse"):
            return self.route_setup(m, frm, now)
        s = self.find_session(m["session_tag"])                              # R-SES-1
        if s is None:
            if m["session_tag"] in self.retired:
                raise err(E.Replay, "a retired session")
            raise err(E.UnknownSession, "no session with this tag")
        s.receive(m, frm, now)

    def route_setup(self, m: Message, frm: bytes, now: int):
        a = self.attempt                                                     # R-KS-1
        if a is not None and a.phase != "done" and (a.phase == "offers" or a.sid == m["session_id"]):
            return {"key_share": a.key_share, "attest": a.attest, "accuse": a.accuse}[m.type](
                m, frm, now)
        s = self.find_session(m["session_id"][:8])
        if s is None:
            if m["session_id"][:8] in self.retired:
                raise err(E.Replay, "a retired session")
            raise err(E.UnknownSession, "no attempt or session with this id")
        if s.sid != m["session_id"]:
            raise err(E.UnknownSession, "session id shares only the tag")
        i = m["sender"]
        if i >= s.n:
            raise err(E.NotAMember, "sender index outside the session")
        if s.nicks[i] != frm:
            raise err(E.NickMismatch, "sender index names another member")
        part = s.setup_parts.get((m.type, i))
        if i == s.me:
            if part is not None and part == m.signed_part:
                return
            raise err(E.NickMismatch, "a setup message in our name that we did not send")
        if not verify_digest(s.S[i], ks.signed_digest(s.sid, m.signed_part), m["signature"]):
            raise err(E.BadSignature, "late setup message signature")
        if m.type == "accuse":
            raise err(E.UnexpectedMessage, "accusation for an established session")
        if part == m.signed_part:
            raise err(E.Duplicate, "late copy of a setup message")
        raise err(E.Equivocation, "a second, validly signed setup message")

    # --- other calls ------------------------------------------------------------------------------

    def _send_text(self, text: bytes, now):
        if self.phase != "established":
            raise err(E.NotReady, "no established session")
        if not 1 <= len(text) <= MAX_TEXT:
            raise err(E.InvalidArgument, "text must be 1..16384 bytes")
        self.session.send_entry("data", text, now)

    def _tick(self, now):
        a = self.attempt
        if a and a.phase in ("offers", "key_shares", "attests") and a.deadline <= now:
            self.out.emit("setup_timeout", nicks=a.missing(), code="limit_exceeded",
                          detail="setup timed out")
            a.quit_if_attesting()                                            # R-AT-10
            a.phase = "failed"
            a.erase()
        for s in list(self.sessions()):
            s.tick(now)

    def _leave(self, now):
        if self.leaving or self.left:
            raise err(E.InvalidState, "already leaving")
        self.leaving = True
        self.close_active(now, "leaving the room")
        self.abandon_attempt()

    def _restart(self, now):
        if self.leaving or self.left:
            raise err(E.InvalidState, "leaving")
        r = self.roster()
        if r is None or len(r) < 2:
            raise err(E.InvalidState, "no roster of 2 or more")
        if self.attempt_no >= 0xFFFFFFFF:
            raise err(E.LimitExceeded, "attempt numbers exhausted")
        self.left_out.pop(self.nick, None)
        number = self.attempt_no + 1
        self.close_active(now, "restart")
        self.abandon_attempt()
        # R-OFF-6: restart() "with number + 1" is seeded as every start is: the offers buffered
        # for our roster carrying that number seed it, the others are dropped (GUESSES.md O-N2)
        self.start_seeded(number, now)

    def _quit(self, now):
        if self.left:
            raise err(E.InvalidState, "already left")
        self.abandon_attempt()
        for s in list(self.sessions()):
            s.quit(now)
        self.left = True
