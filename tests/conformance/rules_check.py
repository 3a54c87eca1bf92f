#!/usr/bin/env python3
"""Scenario checks of the independent engine (mpotr_indep/) against behaviour that spec/mpotr.md
states in words and no vector pins: the decoding points of §4.9/§4.10, the chat-phase rules
R-DATA-7/8/10/11/13, the order of tick() (§6.4), the event fields of Appendix B, R-GEN-2's
Rejected events, R-KS-13 verdict 4, R-OFF-6/R-OFF-11 seeding, and the answers to GUESSES.md
N1-N6: R-SD-10 (a Quit does not excuse missing entries at the Closing deadline), R-OFF-9 (the
triggering offer is the last seed), R-SD-17 (quit() after our End), R-SD-18 (a claim above a
final count already held), §6.4 (ReadyToLeave last in receive()), R-OFF-6 (seeds left after a
conflicting seed; held offers used or dropped when Active ends); and the answers to O-N1-O-N3:
every start of an attempt is seeded alike (R-OFF-6, §6.2: the attempt after a verdict, restart(),
leaving Out), and both orders of R-SD-18's contradiction leave the same state.

Each check drives engines of alice, bob and carol (DeterministicRng, vector-mode signatures)
through a room whose deliveries the check controls, and compares what the engines report with
what the rule says. The expected values come from the spec text (the rule named in each check),
not from the reference implementation. Exits 1 on any failure.

usage: rules_check.py
"""
from __future__ import annotations

import os
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from mpotr_indep import codec, keysched as ks                          # noqa: E402
from mpotr_indep.crypto import DeterministicRng, PrivateKey, u8, u16, u32  # noqa: E402
from mpotr_indep.engine import Engine                                 # noqa: E402
from mpotr_indep.errors import MpotrError                             # noqa: E402

ROOM = "room@conference.localhost"
NICKS = ["alice", "bob", "carol"]
TO = {"setup": 30000, "heartbeat": 5000, "gap": 10000, "confirm": 20000, "shutdown": 15000}


class Room:
    """Engines and one queue of broadcasts; each delivery names its recipients."""

    def __init__(self, nicks=NICKS, timeouts=None):
        self.nicks = list(nicks)
        self.eng = {}
        for k, n in enumerate(self.nicks):
            ident = PrivateKey.generate(DeterministicRng(f"rules-id-{n}".encode()))
            self.eng[n] = Engine(ROOM, n, ident, DeterministicRng(f"rules-rng-{n}".encode()),
                                 timeouts=dict(TO, **(timeouts or {})))
        self.queue = []                    # (from, payload)
        self.events = {n: [] for n in self.nicks}
        self.sent = {n: [] for n in self.nicks}
        self.now = 0

    def record(self, n, out):
        for p in out.broadcasts:
            self.queue.append((n, p))
            self.sent[n].append(p)
        self.events[n].extend(out.events)
        return out

    def call(self, n, name, *args):
        return self.record(n, getattr(self.eng[n], name)(*args, self.now))

    def deliver(self, item, to):
        frm, p = item
        outs = {}
        for n in to:
            outs[n] = self.record(n, self.eng[n].receive(frm, p, self.now))
        return outs

    def run(self, to=None, skip=lambda frm, p, n: False):
        """Deliver the queue first-in first-out to every member (or `to`), reflections included,
        leaving out the deliveries `skip` names."""
        while self.queue:
            frm, p = self.queue.pop(0)
            for n in (to or self.nicks):
                if not skip(frm, p, n):
                    self.record(n, self.eng[n].receive(frm, p, self.now))

    def establish(self):
        for n in self.nicks:
            self.call(n, "set_roster", [(x, f"{x}@localhost") for x in self.nicks])
        self.run()
        for n in self.nicks:
            assert self.eng[n].phase == "established", (n, self.eng[n].phase)
        self.clear()

    def take(self, n):
        """The queued broadcasts of member n, removed from the queue."""
        mine = [q for q in self.queue if q[0] == n]
        self.queue = [q for q in self.queue if q[0] != n]
        return mine

    def clear(self):
        self.events = {n: [] for n in self.nicks}
        self.queue = []


FAILURES: list[str] = []
PASSED = 0


def check(what, cond, detail=""):
    global PASSED
    if cond:
        PASSED += 1
    else:
        FAILURES.append(f"{what} {detail}".rstrip())


def kinds(evs):
    return [e.kind for e in evs]


def ev(evs, kind):
    return [e for e in evs if e.kind == kind]


def decode_error(payload):
    try:
        codec.decode(payload)
    except MpotrError as e:
        return e.code.name
    return "accepted"


# --- §4.9, §4.10: where each decoding check is made ------------------------------------------

def entry_prefix(t, acks=b"\x00\x00"):
    """version, type, session_tag, sender, seq 1, ack_count 2, the acks, view_digest."""
    return bytes([2, codec.TYPE_CODES[t]]) + bytes(8) + u8(0) + u32(1) + u8(len(acks)) + acks \
        + bytes(32)


def check_decoding():
    hb = entry_prefix("heartbeat")
    # R-DEC-9: a Heartbeat announcing a ciphertext that runs past the end is DecodeTruncated
    check("R-DEC-9 heartbeat ciphertext past the end",
          decode_error(hb + u16(5) + b"ab") == "DecodeTruncated")
    check("R-DEC-9 heartbeat length only", decode_error(hb + u16(5)) == "DecodeTruncated")
    # ... and DecodeBadValue once its bytes are read
    check("R-DEC-9 heartbeat with a complete ciphertext",
          decode_error(hb + u16(2) + b"ab" + bytes(96)) == "DecodeBadValue")
    # a Data entry's empty ciphertext is decided right after the length (no bytes to read)
    check("R-DEC-9 data with an empty ciphertext, payload ends there",
          decode_error(entry_prefix("data") + u16(0)) == "DecodeBadValue")
    # R-DEC-6: a ciphertext length above 16384 is DecodeOversize when read
    check("R-DEC-6 ciphertext length 16385, payload ends there",
          decode_error(entry_prefix("data") + u16(16385)) == "DecodeOversize")
    # R-DEC-10: a fifth varint byte with the high bit: DecodeBadValue even at the end
    check("R-DEC-10 fifth varint byte with the high bit, at the end",
          decode_error(bytes([2, 0x10]) + bytes(8) + u8(0) + u32(1) + u8(2) + b"\x80" * 5)
          == "DecodeBadValue")
    check("R-DEC-10 payload ends inside a varint",
          decode_error(bytes([2, 0x10]) + bytes(8) + u8(0) + u32(1) + u8(2) + b"\x80" * 4)
          == "DecodeTruncated")
    # R-DEC-7: a point cut short is DecodeTruncated whatever its first byte
    offer = bytes([2, 1]) + bytes(32) + u32(0) + u8(1) + b"a" + bytes(32)
    check("R-DEC-7 point cut short", decode_error(offer + b"\x05" + bytes(10)) == "DecodeTruncated")
    check("R-DEC-7 whole point with a bad first byte",
          decode_error(offer + b"\x05" + bytes(64)) == "DecodeBadValue")
    # count of 0 and of 128, payload ending right after it
    ks_prefix = bytes([2, 2]) + bytes(32) + u8(0) + b"\x04" + bytes(64) + bytes(32) + bytes(16)
    check("R-DEC-8 count 0 at the end", decode_error(ks_prefix + u8(0)) == "DecodeBadValue")
    check("R-DEC-6 count 128 at the end", decode_error(ks_prefix + u8(128)) == "DecodeOversize")
    # Accuse: an empty key_share is decided right after its length
    acc = bytes([2, 4]) + bytes(32) + u8(0) + u8(1) + bytes(32) + u16(0)
    check("R-DEC-12 empty accuse key_share", decode_error(acc) == "DecodeBadValue")


# --- R-DATA-8: a lost entry that arrives late -------------------------------------------------

def check_late_lost_entry():
    r = Room()
    r.establish()
    r.call("alice", "send_text", "a1")        # acknowledges nothing of bob's
    r.run()
    r.call("bob", "send_text", "b1")
    r.run()
    r.clear()
    r.now = 1000
    r.call("alice", "send_text", "a2")        # the first to acknowledge b1: lost for bob
    r.call("alice", "send_text", "a3")
    a2, a3 = r.take("alice")
    r.deliver(a3, NICKS)
    r.deliver(a2, ["alice", "carol"])
    gaps = ev(r.events["bob"], "gap")
    check("R-DATA-7 a held entry reports a Gap", len(gaps) == 1 and (gaps[0].seq, gaps[0].seq_end)
          == (2, 2), str([g.as_dict() for g in gaps]))
    r.run()
    r.clear()
    r.now = 11000                             # the gap deadline of bob for alice
    out = r.call("bob", "tick")
    lost = ev(out.events, "message_lost")
    check("R-DATA-8 MessageLost for the missing range",
          [(e.nick, e.seq, e.seq_end, e.by) for e in lost] == [("alice", 2, 2, None)],
          str([e.as_dict() for e in lost]))
    shown = ev(out.events, "message_received")
    check("R-DATA-8 the held entry is delivered, late = false",
          [(e.seq, bool(e.late)) for e in shown] == [(3, False)], str([e.as_dict() for e in shown]))
    # bob's own entry cancels the heartbeat timer that a3 started
    r.call("bob", "send_text", "b2")
    r.run(to=["alice", "carol"])
    r.clear()
    r.now = 12000
    out = r.deliver(("alice", a2[1]), ["bob"])["bob"]
    check("R-DATA-8 a lost Data entry arriving late is MessageReceived with late = true",
          [(e.kind, e.seq, e.late) for e in out.events] == [("message_received", 2, True)],
          str([e.as_dict() for e in out.events]))
    check("R-DATA-8 its view is not examined (no Confirmed, no SplitView, no Gap)",
          not ev(out.events, "confirmed") and not ev(out.events, "gap"))
    b2_deadline = 11000 + TO["confirm"]
    check("R-DATA-8 a late lost entry starts no timer (no heartbeat)", out.wake_at is not None
          and out.wake_at != 12000 + TO["heartbeat"], f"wake_at {out.wake_at}, b2 {b2_deadline}")
    try:
        r.eng["bob"].receive("alice", a2[1], r.now)
        check("R-DATA-4 a second copy of the late entry is Duplicate", False, "accepted")
    except MpotrError as e:
        check("R-DATA-4 a second copy of the late entry is Duplicate", e.code.name == "Duplicate",
              e.code.name)


def check_late_lost_heartbeat():
    r = Room()
    r.establish()
    r.call("bob", "send_text", "b1")
    r.run()
    r.clear()
    r.now = 5000                               # alice's heartbeat timer (started by b1 at 0)
    r.call("alice", "tick")
    (hb,) = r.take("alice")
    check("R-DATA-14 a heartbeat is sent", codec.decode(hb[1]).type == "heartbeat")
    r.deliver(hb, ["alice", "carol"])
    r.call("alice", "send_text", "a1")
    r.run()
    r.clear()
    r.now = 15000
    r.call("bob", "tick")                      # the heartbeat (seq 1) is declared lost
    check("R-DATA-8 the heartbeat is lost",
          [(e.seq, e.seq_end) for e in ev(r.events["bob"], "message_lost")] == [(1, 1)])
    r.clear()
    out = r.deliver(hb, ["bob"])["bob"]
    check("R-DATA-8 a lost Heartbeat arriving late gives no event", out.events == [],
          str([e.as_dict() for e in out.events]))


# --- R-DATA-7: a Heartbeat delivered after later entries were held carries late ---------------

def check_heartbeat_late():
    r = Room()
    r.establish()
    r.call("bob", "send_text", "b1")
    r.run()
    r.clear()
    r.now = 5000
    r.call("alice", "tick")
    r.call("alice", "send_text", "a2")
    hb, a2 = r.take("alice")
    out_held = r.deliver(a2, ["bob"])["bob"]
    out = r.deliver(hb, ["bob"])["bob"]
    check("R-DATA-7 held entry: Gap", kinds(out_held.events) == ["gap"])
    got = [(e.kind, e.seq, bool(e.late)) for e in out.events
           if e.kind in ("heartbeat", "message_received")]
    check("Appendix B: Heartbeat late = true when later entries were held",
          got == [("heartbeat", 1, True), ("message_received", 2, False)], str(got))


# --- R-DATA-11 and R-DATA-8: a claim beyond what the author vouched for -----------------------

def check_claimed_range():
    r = Room()
    r.establish()
    for t in ("a1", "a2", "a3", "a4"):
        r.call("alice", "send_text", t)
    a = r.take("alice")
    r.deliver(a[0], NICKS)
    r.deliver(a[2], NICKS)                     # bob holds a3: Gap alice 2..2
    r.deliver(a[1], ["alice", "carol"])
    r.deliver(a[3], ["alice", "carol"])        # a4 never reaches bob
    r.run()
    r.clear()
    r.now = 1000
    r.call("carol", "send_text", "c1")         # acknowledges 4 of alice's entries
    out = r.deliver(r.take("carol")[0], ["bob"])["bob"]
    check("R-DATA-11 a second claim while a gap is pending reports no Gap",
          not ev(out.events, "gap"), str([e.as_dict() for e in out.events]))
    r.now = 10000                              # the gap timer started at 0
    out = r.call("bob", "tick")
    lost, gaps = ev(out.events, "message_lost"), ev(out.events, "gap")
    check("R-DATA-8 MessageLost within what alice vouched for has no by",
          [(e.seq, e.seq_end, e.by) for e in lost] == [(2, 2, None)],
          str([e.as_dict() for e in lost]))
    check("R-DATA-8 the restarted timer's Gap names the claimer (by, detail)",
          [(e.nick, e.seq, e.seq_end, e.by, bool(e.detail)) for e in gaps]
          == [("alice", 4, 4, "carol", True)], str([e.as_dict() for e in gaps]))
    order = [e.kind for e in out.events if e.kind in ("message_lost", "message_received", "gap")]
    check("R-DATA-8 order: MessageLost, the held entry, then the new Gap",
          order == ["message_lost", "message_received", "gap"], str(order))
    r.now = 20000
    out = r.call("bob", "tick")
    lost = ev(out.events, "message_lost")
    check("R-DATA-8 MessageLost beyond what alice vouched for names the claimer",
          [(e.seq, e.seq_end, e.by, bool(e.detail)) for e in lost] == [(4, 4, "carol", True)],
          str([e.as_dict() for e in lost]))


# --- R-DATA-10: SplitView without seq -----------------------------------------------------------

def forged_entry(r, author, counts, text=b"x"):
    """An entry signed and MAC'd by `author`'s session with the given view counts (index
    order), as a member that lies in its acknowledgements would send it."""
    s = r.eng[author].session
    seq = s.my_count + 1
    acks = [counts[m] for m in range(s.n) if m != s.me]
    key, prefix = s.keys[s.me]
    from mpotr_indep.crypto import aes128_ctr
    body, _ = codec.encode_body("data", {"session_tag": s.tag, "sender": s.me, "seq": seq,
                                         "acks": acks, "view_digest": bytes(32),
                                         "ciphertext": aes128_ctr(key, ks.message_iv(prefix, seq),
                                                                  text)})
    return s.mac_sign(body)


def check_split_view_no_seq():
    r = Room()
    r.establish()
    p = forged_entry(r, "bob", [5, 0, 3])      # 5 of alice's entries (she wrote none), carol 3
    out = r.deliver(("bob", p), ["alice"])["alice"]
    sv = ev(out.events, "split_view")
    check("R-DATA-10 SplitView (nick = sender), no seq",
          [(e.nick, e.seq) for e in sv] == [("bob", None)] and "seq" not in sv[0].as_dict(),
          str([e.as_dict() for e in out.events]))
    check("R-DATA-10 checked first: no Gap for carol's claimed entries", not ev(out.events, "gap"))


# --- R-DATA-7: after a delivery the shutdown moves on ----------------------------------------

def check_digest_after_last_entry():
    r = Room()
    r.establish()
    r.call("alice", "send_text", "a1")
    r.call("alice", "leave")
    a1, sd = r.take("alice")
    r.deliver(a1, ["alice", "carol"])
    r.queue.append(sd)
    r.run()                                    # every Shutdown, but bob still lacks alice's 1
    check("R-DATA-7 (setup) bob waits in Closing for alice's entry",
          r.eng["bob"].session.phase == "closing", r.eng["bob"].session.phase)
    out = r.deliver(a1, ["bob"])["bob"]
    types = [codec.decode(p).type for p in out.broadcasts]
    check("R-DATA-7 the entry that completes our transcript in Closing moves the shutdown on "
          "(our Digest in the same call)", "digest" in types, str(types))


# --- R-SD-18: a final count below another member's claim -------------------------------------

def check_final_below_claim():
    r = Room()
    r.establish()
    r.call("alice", "send_text", "a1")
    r.run()
    r.clear()
    p = forged_entry(r, "bob", [3, 0, 0])      # bob claims 3 of alice's entries; she wrote 1
    out = r.deliver(("bob", p), ["carol"])["carol"]
    gaps = ev(out.events, "gap")
    check("R-DATA-11 Gap for the claimed entries, by = the claimer",
          [(e.nick, e.seq, e.seq_end, e.by) for e in gaps] == [("alice", 2, 3, "bob")],
          str([e.as_dict() for e in out.events]))
    r.call("alice", "leave")
    (sd,) = r.take("alice")
    out = r.deliver(sd, ["carol"])["carol"]
    sv = ev(out.events, "split_view")
    check("R-SD-18 SplitView naming the member whose acknowledgement claimed more, no seq",
          [(e.nick, e.seq) for e in sv] == [("bob", None)], str([e.as_dict() for e in out.events]))
    check("R-SD-18 the gap only the claim kept open is closed",
          (r.eng["carol"].session or r.eng["carol"].closing[0]).gap[0] is None)
    check("R-SD-18 no Gap or MessageLost for the claimed entries",
          not ev(out.events, "gap") and not ev(out.events, "message_lost"))


# --- R-DATA-13, §6.4: ConfirmationOverdue's nick, and tick's order ------------------------------

def check_overdue_then_heartbeat():
    r = Room()
    r.establish()
    r.call("alice", "send_text", "a1")
    r.run(skip=lambda frm, p, n: n == "carol")  # carol never sees a1: it is never fully confirmed
    r.clear()
    r.now = 16000
    r.call("bob", "send_text", "b1")
    r.run(to=["alice", "bob"])                 # alice's heartbeat timer: 21000
    r.clear()
    r.now = 21000
    out = r.call("alice", "tick")
    ks_ = kinds(out.events)
    od = ev(out.events, "confirmation_overdue")
    check("R-DATA-13 ConfirmationOverdue: nick = our own, seq, nicks = who has not confirmed",
          [(e.nick, e.seq, e.nicks) for e in od] == [("alice", 1, ["carol"])],
          str([e.as_dict() for e in od]))
    check("§6.4 tick: ConfirmationOverdue before the heartbeat's confirmations",
          ks_ and ks_[0] == "confirmation_overdue" and "confirmed" in ks_ and
          [codec.decode(p).type for p in out.broadcasts] == ["heartbeat"], str(ks_))


# --- R-GEN-2: Rejected from a buffered message carries the claimed sender -----------------------

def check_rejected_nick():
    r = Room(["alice", "bob"])
    for n in r.nicks:
        r.call(n, "set_roster", [(x, f"{x}@localhost") for x in r.nicks])
    offer_a, offer_b = r.take("alice")[0], r.take("bob")[0]
    r.deliver(offer_a, ["alice", "bob"])       # bob: all offers, his key share
    (ks_b,) = r.take("bob")
    bad = ks_b[1][:-1] + bytes([ks_b[1][-1] ^ 1])
    r.deliver(("bob", bad), ["alice"])         # buffered before bob's offer: unchecked
    out = r.deliver(offer_b, ["alice"])["alice"]
    rej = ev(out.events, "rejected")
    check("R-GEN-2 Rejected(BadSignature) for the buffered forgery, nick = claimed sender",
          [(e.code, e.nick) for e in rej] == [("bad_signature", "bob")],
          str([e.as_dict() for e in out.events]))
    check("R-GEN-2 Rejected carries no session_id", rej and rej[0].session_id is None)


# --- R-KS-13 verdict 4: a false accusation decided right after the accuser's key share ---------

def check_false_accusation():
    r = Room()
    for n in r.nicks:
        r.call(n, "set_roster", [(x, f"{x}@localhost") for x in r.nicks])
    offers = list(r.queue)
    r.queue = []
    for o in offers:
        r.deliver(o, NICKS)
    kshares = {frm: (frm, p) for frm, p in r.queue}
    r.queue = []
    # bob accuses carol falsely: her key share is fine; he reveals his own e
    a = r.eng["bob"].attempt
    fields = {"session_id": a.sid, "sender": a.me, "accused": 2, "dh_private": a.e.to_bytes(),
              "key_share": kshares["carol"][1]}
    body, _ = codec.encode_body("accuse", fields)
    accuse = a.sign(body)
    r.deliver(kshares["carol"], ["alice"])
    out = r.deliver(("bob", accuse), ["alice"])["alice"]
    check("R-KS-13 verdict 4 waits for the accuser's key share (success, no output)",
          out.events == [] and out.broadcasts == [], str([e.as_dict() for e in out.events]))
    out = r.deliver(kshares["bob"], ["alice"])["alice"]
    ex = ev(out.events, "member_excluded")
    check("R-KS-13 verdict 4: the accuser is out (FalseAccusation, by = accuser)",
          [(e.nick, e.code, e.by) for e in ex] == [("bob", "false_accusation", "bob")],
          str([e.as_dict() for e in out.events]))
    types = [codec.decode(p).type for p in out.broadcasts]
    check("R-KS-13 decided before round 3: no Attest, the next attempt's Offer",
          types == ["offer"], str(types))
    st = ev(out.events, "setup_started")
    check("§6.2 the next attempt starts at once without the member left out",
          [e.nicks for e in st] == [["alice", "carol"]], str([e.as_dict() for e in st]))


# --- R-OFF-6 / R-OFF-11: buffered offers seed the attempt, a conflict moves it on ---------------

def check_seeding_conflict():
    r = Room(["alice", "bob"])
    # bob's offers for the roster {alice, bob}, attempt 0, made twice (the roster recurred)
    r.call("bob", "set_roster", [("alice", "alice@localhost"), ("bob", "bob@localhost")])
    first = r.take("bob")[0]
    r.call("bob", "set_roster", [("alice", "alice@localhost"), ("bob", "bob@localhost"),
                                 ("carol", "carol@localhost")])
    r.call("bob", "set_roster", [("alice", "alice@localhost"), ("bob", "bob@localhost")])
    second = [q for q in r.take("bob") if codec.decode(q[1]).type == "offer"][-1]
    check("the two offers have attempt 0 and different nonces",
          codec.decode(first[1])["attempt"] == codec.decode(second[1])["attempt"] == 0 and
          codec.decode(first[1])["nonce"] != codec.decode(second[1])["nonce"])
    r.eng["alice"].receive("bob", first[1], r.now)         # no roster yet: buffered (R-OFF-6)
    r.eng["alice"].receive("bob", second[1], r.now)
    out = r.call("alice", "set_roster", [("alice", "alice@localhost"), ("bob", "bob@localhost")])
    types = [(codec.decode(p).type, codec.decode(p).fields.get("attempt")) for p in out.broadcasts]
    check("R-OFF-6 our Offer, then the seeds: the first completes round 1 (our KeyShare), the "
          "second conflicts (R-OFF-11): a new Offer with attempt 1",
          types == [("offer", 0), ("key_share", None), ("offer", 1)], str(types))
    check("R-OFF-11 SetupStarted twice", kinds(out.events) == ["setup_started", "setup_started"],
          str(kinds(out.events)))


def types_of(payloads):
    return [codec.decode(p).type for p in payloads]


def call_error(fn):
    try:
        fn()
    except MpotrError as e:
        return e.code.name
    return "accepted"


def seq_entry(r, author, seq, counts, text=b"x"):
    """As forged_entry, with an explicit seq (several forged entries in a row)."""
    s = r.eng[author].session or r.eng[author].closing[0]
    acks = [counts[m] for m in range(s.n) if m != s.me]
    key, prefix = s.keys[s.me]
    from mpotr_indep.crypto import aes128_ctr
    body, _ = codec.encode_body("data", {"session_tag": s.tag, "sender": s.me, "seq": seq,
                                         "acks": acks, "view_digest": bytes(32),
                                         "ciphertext": aes128_ctr(key, ks.message_iv(prefix, seq),
                                                                  text)})
    return s.mac_sign(body)


# --- N1, R-SD-10: a member excused by its Quit is still missing at the Closing deadline --------

def check_quit_member_cut_at_closing_deadline():
    r = Room(timeouts={"gap": 20000})          # the gap timer would fire after the deadline
    r.establish()
    r.call("carol", "send_text", "c1")
    r.call("carol", "send_text", "c2")
    c1, c2 = r.take("carol")
    r.deliver(c1, ["bob"])                     # alice never gets c1
    r.deliver(c2, ["alice", "bob"])            # alice holds c2: Gap carol 1..1
    r.call("carol", "quit")                    # Quit, final count 2
    (cq,) = r.take("carol")
    r.deliver(cq, ["alice", "bob"])            # alice and bob: Closing, their Shutdowns
    r.run(to=["alice", "bob"])
    sa = r.eng["alice"].sessions()[0]
    check("N1 (setup) alice waits in Closing for carol's entry 1, carol's Quit held",
          sa.phase == "closing" and 2 in sa.quits, sa.phase)
    r.clear()
    r.now = TO["shutdown"]
    out = r.call("alice", "tick")
    si = ev(out.events, "shutdown_incomplete")
    check("R-SD-10 Closing deadline: a member whose Quit is held but whose entries up to its "
          "final count are missing is named in ShutdownIncomplete",
          [e.nicks for e in si] == [["carol"]], str([e.as_dict() for e in out.events]))
    check("R-SD-10 ShutdownIncomplete comes first, no MessageLost (the gap timer is not waited for)",
          kinds(out.events)[:1] == ["shutdown_incomplete"] and not ev(out.events, "message_lost"),
          str(kinds(out.events)))
    check("R-SD-10 its final count is cut to what we delivered (0), held c2 dropped, gap stopped",
          sa.final[2] == 0 and not sa.held[2] and sa.gap[2] is None,
          f"final {sa.final.get(2)}, held {list(sa.held[2])}, gap {sa.gap[2]}")
    check("R-SD-10 the shutdown proceeds: our Digest in that tick",
          "digest" in types_of(out.broadcasts), str(types_of(out.broadcasts)))
    r.now = 20000                              # carol's former gap deadline
    out = r.call("alice", "tick")
    check("R-SD-10 no MessageLost later either (its gap timer stopped)",
          not ev(out.events, "message_lost"), str([e.as_dict() for e in out.events]))
    check("R-DATA-6 carol's entry 1 arriving now is UnexpectedMessage (transcript closed)",
          call_error(lambda: r.eng["alice"].receive("carol", c1[1], r.now))
          == "UnexpectedMessage")


# --- N2, R-OFF-9 / R-GEN-2: the triggering offer is checked only as the last seed --------------

def check_rejected_trigger_offer():
    r = Room(["alice", "bob"])
    for n in r.nicks:
        r.call(n, "set_roster", [(x, f"{x}@localhost") for x in r.nicks])
    for item in list(r.queue):                 # the offers, then the key shares; no attest
        r.queue.remove(item)
        r.deliver(item, r.nicks)
    for item in [q for q in r.queue if codec.decode(q[1]).type == "key_share"]:
        r.queue.remove(item)
        r.deliver(item, r.nicks)
    r.clear()
    check("N2 (setup) alice's attempt 0 is in phase Attests",
          r.eng["alice"].attempt.phase == "attests", r.eng["alice"].attempt.phase)
    r.call("bob", "restart")
    genuine = [q for q in r.take("bob") if codec.decode(q[1]).type == "offer"][0]
    fields = dict(codec.decode(genuine[1]).fields)
    fields["dh_key"] = b"\x04" + bytes(64)     # decodes (§4.9), but is no point of P-256
    bad = codec.encode("offer", fields)
    out = r.deliver(("bob", bad), ["alice"])["alice"]
    bt = [(codec.decode(p).type, codec.decode(p).fields.get("attempt")) for p in out.broadcasts]
    check("R-OFF-9 an invalid higher offer does not fail the call: the attempt in Attests is given "
          "up (its Quit), then our new Offer (attempt 1)",
          bt == [("quit", None), ("offer", 1)], str(bt))
    rej = ev(out.events, "rejected")
    check("R-OFF-9/R-GEN-2 SetupStarted, then Rejected(DecodeBadValue, nick = the sender)",
          kinds(out.events) == ["setup_started", "rejected"]
          and [(e.code, e.nick, e.session_id) for e in rej] == [("decode_bad_value", "bob", None)],
          str([e.as_dict() for e in out.events]))
    check("R-OFF-9 we are at attempt 1", r.eng["alice"].attempt_no == 1)
    check("R-OFF-9 a rejected offer is not stored nor its nonce remembered: an invalid copy is now "
          "R-OFF-11's DecodeBadValue (not Replay, not Duplicate)",
          call_error(lambda: r.eng["alice"].receive("bob", bad, r.now)) == "DecodeBadValue")
    out = r.deliver(genuine, ["alice"])["alice"]
    check("R-OFF-9 the genuine offer with that nonce is stored: round 1 complete, our KeyShare",
          types_of(out.broadcasts) == ["key_share"] and out.events == [],
          str(types_of(out.broadcasts)))


# --- N3, R-SD-17: quit() for sessions whose End is out -----------------------------------------

def ended_waiting_for_carol():
    """alice left; she holds everything but carol's End (and KeyReveal): Ended, key not out."""
    r = Room()
    r.establish()
    r.call("alice", "leave")
    r.run(skip=lambda frm, p, n: n == "alice" and frm == "carol"
          and codec.decode(p).type in ("end", "key_reveal"))
    s = r.eng["alice"].closing[0]
    check("N3 (setup) alice is Ended, key neither published nor withheld",
          s.phase == "ended" and s.key_state is None and
          not ev(r.events["alice"], "ready_to_leave"), f"{s.phase} {s.key_state}")
    r.clear()
    return r


def check_quit_after_end():
    r = Room()
    r.establish()
    out = r.call("alice", "quit")
    kw = ev(out.events, "key_withheld")
    check("R-SD-17 quit() in Active: our Quit, KeyWithheld (who lacks End or Quit), SessionClosed",
          types_of(out.broadcasts) == ["quit"]
          and kinds(out.events) == ["key_withheld", "session_closed"]
          and kw[0].nicks == ["bob", "carol"], str([e.as_dict() for e in out.events]))

    r = ended_waiting_for_carol()
    out = r.call("alice", "quit")
    kw = ev(out.events, "key_withheld")
    check("R-SD-17 quit() in Ended: no Quit sent (our End is out), KeyWithheld naming carol, "
          "SessionClosed",
          out.broadcasts == [] and kinds(out.events) == ["key_withheld", "session_closed"]
          and kw[0].nicks == ["carol"] and kw[0].detail == "we quit before the end of the session",
          str([e.as_dict() for e in out.events]) + str(types_of(out.broadcasts)))
    check("R-SD-17 no ReadyToLeave from quit(), even after leave()",
          not ev(out.events, "ready_to_leave"))
    check("R-SD-17 the engine is Left, the session retired",
          r.eng["alice"].phase == "left" and not r.eng["alice"].sessions())

    r = ended_waiting_for_carol()
    r.now = TO["shutdown"]                     # Ended: carol excused, key withheld (R-SD-15)
    out = r.call("alice", "tick")
    check("N3 (setup) R-SD-15 KeyWithheld at the deadline, then ReadyToLeave",
          kinds(out.events) == ["shutdown_incomplete", "key_withheld", "ready_to_leave"],
          str(kinds(out.events)))
    out = r.call("alice", "quit")
    kw = ev(out.events, "key_withheld")
    check("R-SD-17 quit() in Ended after R-SD-15 reported the key withheld: KeyWithheld again, "
          "SessionClosed, nothing sent",
          out.broadcasts == [] and kinds(out.events) == ["key_withheld", "session_closed"]
          and kw[0].nicks == ["carol"], str([e.as_dict() for e in out.events]))

    r = Room(["alice", "bob"])
    r.establish()
    r.call("alice", "leave")
    r.run(skip=lambda frm, p, n: n == "alice" and frm == "bob"
          and codec.decode(p).type == "key_reveal")
    check("N3 (setup) alice is Revealed", r.eng["alice"].closing[0].phase == "revealed")
    r.clear()
    out = r.call("alice", "quit")
    check("R-SD-17 quit() in Revealed: SessionClosed only, nothing sent",
          out.broadcasts == [] and kinds(out.events) == ["session_closed"],
          str([e.as_dict() for e in out.events]))

    r = Room(["alice", "bob"])
    r.establish()
    r.call("alice", "leave")
    r.run()
    check("N3 (setup) the session is Closed and retired", not r.eng["alice"].sessions())
    r.clear()
    out = r.call("alice", "quit")
    check("R-SD-17 quit() after the session was Closed: nothing",
          out.broadcasts == [] and out.events == [], str([e.as_dict() for e in out.events]))


# --- N4, R-SD-18: a claim above a final count we already hold ----------------------------------

def check_claim_above_held_final():
    nicks = ["alice", "bob", "carol", "dave"]
    r = Room(nicks)
    r.establish()
    r.call("dave", "send_text", "d1")
    r.call("dave", "send_text", "d2")
    d1, d2 = r.take("dave")                    # carol gets them only at the end
    r.call("alice", "send_text", "a1")
    r.deliver(r.take("alice")[0], ["carol"])
    r.call("alice", "leave")                   # final count 1
    r.deliver(r.take("alice")[0], ["carol"])
    r.clear()
    # bob's entries claim 3 of alice's entries (her final count, held, is 1) and 2 of dave's
    e1 = seq_entry(r, "bob", 1, [3, 0, 0, 2])
    e2 = seq_entry(r, "bob", 2, [3, 1, 0, 2])
    out = r.deliver(("bob", e1), ["carol"])["carol"]
    got = [(e.kind, e.nick, e.seq, e.seq_end, e.by) for e in out.events]
    check("R-SD-18 a claim above a final count we hold: SplitView (nick = the entry's sender, no "
          "seq), in index order before R-DATA-11's Gap for the other member (dave, by bob)",
          got == [("message_received", "bob", 1, None, None),
                  ("split_view", "bob", None, None, None),
                  ("gap", "dave", 1, 2, "bob")], str(got))
    out = r.deliver(("bob", e2), ["carol"])["carol"]
    got = [(e.kind, e.nick, e.seq) for e in out.events]
    check("R-SD-18 every such entry is reported: a second SplitView for bob's next entry",
          got == [("message_received", "bob", 2), ("split_view", "bob", None)], str(got))
    s = r.eng["carol"].sessions()[0]
    check("R-SD-18 the count known to exist is not raised, no gap timer for alice",
          s.expected(0) == 1 and s.gap[0] is None, f"{s.expected(0)} {s.gap[0]}")
    r.deliver(d1, ["carol"])
    out = r.deliver(d2, ["carol"])["carol"]
    r.now = 30000
    out2 = r.call("carol", "tick")
    evs = out.events + out2.events
    check("R-SD-18 the views are not kept: dave's entries arrive, no Confirmed by bob, no "
          "SplitView with seq, no loss of alice's entries",
          not [e for e in evs if e.kind == "confirmed" and e.by == "bob"]
          and not ev(evs, "split_view")
          and not [e for e in evs if e.kind == "message_lost" and e.nick == "alice"],
          str([e.as_dict() for e in evs]))


# --- N5, §6.4: ReadyToLeave is the last event of the receive() that closes the session --------

def check_ready_to_leave_last_in_receive():
    r = Room(["alice", "bob"])
    r.establish()
    r.call("alice", "leave")
    r.take("alice")
    r.call("bob", "quit")                      # bob quits before seeing alice's Shutdown
    (bq,) = r.take("bob")
    r.clear()
    out = r.deliver(bq, ["alice"])["alice"]
    check("§6.4 receive() that publishes our key and closes the session: KeyPublished, "
          "SessionClosed, then ReadyToLeave last",
          kinds(out.events) == ["transcript_consistent", "key_published", "session_closed",
                                "ready_to_leave"], str(kinds(out.events)))
    check("R-SD-7 (setup) the Quit completed the shutdown: Digest, End, KeyReveal",
          types_of(out.broadcasts) == ["digest", "end", "key_reveal"],
          str(types_of(out.broadcasts)))


# --- N6, R-OFF-6: the seeds left when a seed restarts the attempt ------------------------------

def check_seeds_after_conflict_dropped():
    r = Room()
    three = [(x, f"{x}@localhost") for x in NICKS]
    two = [("alice", "alice@localhost"), ("bob", "bob@localhost")]
    r.call("bob", "set_roster", three)
    first = r.take("bob")[0]
    r.call("bob", "set_roster", two)
    r.call("bob", "set_roster", three)
    second = [q for q in r.take("bob") if codec.decode(q[1]).type == "offer"][-1]
    r.call("carol", "set_roster", three)
    carol = r.take("carol")[0]
    for item in (carol, first, second):        # buffered: alice has no roster yet (R-OFF-6)
        r.eng["alice"].receive(*item, r.now)
    out = r.call("alice", "set_roster", three)
    bt = [(codec.decode(p).type, codec.decode(p).fields.get("attempt")) for p in out.broadcasts]
    check("R-OFF-6 bob's two seeds conflict: our Offer 0, then at once our Offer 1 (round 1 of "
          "attempt 0 was not complete)", bt == [("offer", 0), ("offer", 1)], str(bt))
    check("R-OFF-6 carol's seed, not yet processed, is dropped without an event",
          kinds(out.events) == ["setup_started", "setup_started"]
          and len(r.eng["alice"].attempt.offers) == 1, str(kinds(out.events)))
    check("R-OFF-6 its nonce is not remembered: a copy received later is stale (R-OFF-8), "
          "not Replay", call_error(lambda: r.eng["alice"].receive(*carol, r.now))
          == "UnexpectedMessage")
    check("R-OFF-6 the conflicting seed's nonce is not remembered either",
          call_error(lambda: r.eng["alice"].receive(*second, r.now)) == "UnexpectedMessage")
    check("R-OFF-6 the first seed was stored, its nonce remembered: a copy is Replay (R-OFF-4)",
          call_error(lambda: r.eng["alice"].receive(*first, r.now)) == "Replay")


def check_restart_uses_held_offer():
    r = Room(["alice", "bob"])
    r.establish()
    r.call("bob", "restart")                   # bob: Shutdown, then Offer 1
    b_sd, b_offer = r.take("bob")
    out = r.deliver(b_offer, ["alice"])["alice"]
    check("R-OFF-9 (setup) the offer is held while the session is Active",
          out.events == [] and out.broadcasts == [])
    # an offer in bob's name with attempt 5 (injected: R-OFF-14), held too
    forged = dict(codec.decode(b_offer[1]).fields, attempt=5, nonce=bytes([9]) * 32)
    out = r.deliver(("bob", codec.encode("offer", forged)), ["alice"])["alice"]
    check("R-OFF-14 (setup) a second held offer in bob's name: UnauthenticatedOffers",
          kinds(out.events) == ["unauthenticated_offers"], str(kinds(out.events)))
    out = r.call("alice", "restart")
    bt = [(codec.decode(p).type, codec.decode(p).fields.get("attempt")) for p in out.broadcasts]
    check("R-OFF-6/R-MEM-2 restart() starts attempt number + 1 (not the highest held, 5), "
          "seeded with the held offer carrying it: Shutdown, Offer 1, then our KeyShare",
          bt == [("shutdown", None), ("offer", 1), ("key_share", None)], str(bt))
    check("R-OFF-6 restart() drops every other offer buffered for our roster (attempt 5)",
          not r.eng["alice"].pending_offers, str(r.eng["alice"].pending_offers))


# --- O-N1, §6.2 / R-OFF-6: the attempt after a verdict is seeded with the buffered offers -------

def refusing_key_share(r, n, refused):
    """Member n's key share of its current attempt with `refused` (indices) in its refused set,
    signed with its attempt key: what an engine whose admission check refuses them (R-ADM-1, a
    blocked JID) broadcasts. (This implementation refuses nobody itself.)"""
    a = r.eng[n].attempt
    fields = dict(a.my_key_share.fields)
    fields["refused"] = codec.memberset(refused)
    body, _ = codec.encode_body("key_share", fields)
    payload = a.sign(body)
    a.my_key_share = a.key_shares[a.me] = codec.decode(payload)   # n's engine holds it as its own
    return (n, payload)


def check_verdict_attempt_seeded():
    r = Room()
    three = [(x, f"{x}@localhost") for x in NICKS]
    for n in NICKS:
        r.call(n, "set_roster", three)
    offers = list(r.queue)
    r.queue = []
    for o in offers:
        r.deliver(o, NICKS)
    ks_ = {frm: (frm, p) for frm, p in r.queue}
    r.queue = []
    refusal = refusing_key_share(r, "alice", [2])           # alice refuses carol
    # carol reaches the verdict first: alice is out, carol's attempt 1 for {bob, carol}
    r.deliver(ks_["bob"], ["carol"])
    out = r.deliver(refusal, ["carol"])["carol"]
    mo = ev(out.events, "member_out")
    check("R-ADM-2 (setup) carol: MemberOut alice (nicks = carol), her Offer 1 for {bob, carol}",
          [(e.nick, e.nicks) for e in mo] == [("alice", ["carol"])]
          and [(codec.decode(p).type, codec.decode(p)["attempt"]) for p in out.broadcasts]
          == [("offer", 1)], str([e.as_dict() for e in out.events]))
    (c_offer,) = r.take("carol")
    r.deliver(ks_["carol"], ["bob"])
    rd_two = ks.roster_digest(ROOM.encode(), [b"bob", b"carol"])
    # a stale offer in carol's name for {bob, carol} with another number, buffered too
    other = dict(codec.decode(c_offer[1]).fields, attempt=3, nonce=bytes([7]) * 32)
    r.deliver(("carol", codec.encode("offer", other)), ["bob"])
    out = r.deliver(c_offer, ["bob"])["bob"]
    check("R-OFF-6 (setup) bob, whose roster is still all three, buffers carol's offers",
          out.events == [] and out.broadcasts == []
          and len(r.eng["bob"].pending_offers.get(b"carol", [])) == 2)
    out = r.deliver(refusal, ["bob"])["bob"]
    bt = [(codec.decode(p).type, codec.decode(p).fields.get("attempt")) for p in out.broadcasts]
    check("§6.2/R-OFF-6 the attempt after the verdict is seeded with carol's buffered offer for "
          "{bob, carol} with that number: bob's broadcasts are exactly Offer 1, KeyShare",
          bt == [("offer", 1), ("key_share", None)], str(bt))
    check("§6.2 events: MemberOut alice, SetupStarted for {bob, carol}",
          [(e.kind, e.nick, e.nicks) for e in out.events]
          == [("member_out", "alice", ["carol"]), ("setup_started", None, ["bob", "carol"])],
          str([e.as_dict() for e in out.events]))
    check("R-OFF-6 every other offer buffered for that roster is dropped (carol's attempt 3)",
          not [m for lst in r.eng["bob"].pending_offers.values() for m in lst
               if m["roster_digest"] == rd_two], str(r.eng["bob"].pending_offers))
    r.run(to=["bob", "carol"])
    got = [(n, r.eng[n].phase, r.eng[n].session and r.eng[n].session.nicks) for n in ("bob", "carol")]
    check("§6.2 bob and carol then establish a 2-member session",
          got == [("bob", "established", [b"bob", b"carol"]),
                  ("carol", "established", [b"bob", b"carol"])]
          and r.eng["bob"].session.sid == r.eng["carol"].session.sid, str(got))



# --- R-OFF-6 / R-ADM-3: the attempt that starts when we leave Out uses the buffered offers ------

def check_leaving_out_seeded():
    nicks = ["alice", "bob", "carol", "dave"]
    r = Room(nicks)
    four = [(x, f"{x}@localhost") for x in nicks]
    for n in nicks:
        r.call(n, "set_roster", four)
    offers = list(r.queue)
    r.queue = []
    for o in offers:
        r.deliver(o, nicks)
    ks_ = {frm: (frm, p) for frm, p in r.queue}
    r.queue = []
    ks_["alice"] = refusing_key_share(r, "alice", [2])      # alice and carol refuse each other
    ks_["carol"] = refusing_key_share(r, "carol", [0])
    for n in nicks:
        r.deliver(ks_[n], nicks)
    check("R-ADM-2 (setup) alice and carol are Out, bob and dave set up {bob, dave}",
          [r.eng[n].phase for n in nicks] == ["out", "setting_up", "out", "setting_up"],
          str([r.eng[n].phase for n in nicks]))
    r.run(to=["bob", "dave"])                  # bob and dave establish; alice and carol see none
    r.clear()
    # carol leaves the room: every member forgets both refusals (R-ADM-3); bob and dave first
    three = [x for x in four if x[0] != "carol"]
    r.call("bob", "set_roster", three)
    r.call("dave", "set_roster", three)
    for item in [q for q in r.queue if codec.decode(q[1]).type == "offer"]:
        out = r.deliver(item, ["alice"])["alice"]
        check("R-OFF-6 (setup) alice, Out, buffers the offer for {alice, bob, dave}",
              out.events == [] and out.broadcasts == [])
    out = r.call("alice", "set_roster", three)
    bt = [(codec.decode(p).type, codec.decode(p).fields.get("attempt")) for p in out.broadcasts]
    check("R-ADM-3/R-OFF-6 alice leaves Out: an attempt starts at once, seeded with the offers "
          "buffered while Out (round 1 complete: Offer 0, KeyShare)",
          bt == [("offer", 0), ("key_share", None)] and
          [(e.kind, e.nicks) for e in out.events] == [("setup_started", ["alice", "bob", "dave"])],
          str(bt) + str([e.as_dict() for e in out.events]))
    r.run(to=["alice", "bob", "dave"],
          skip=lambda frm, p, n: n == "alice" and codec.decode(p).type not in ("key_share",
                                                                                "attest"))
    got = [r.eng[n].phase for n in ("alice", "bob", "dave")]
    check("R-ADM-3 the next attempt includes alice: alice, bob and dave establish a session",
          got == ["established"] * 3 and r.eng["alice"].session.nicks == [b"alice", b"bob", b"dave"],
          str(got))


# --- O-N3, R-SD-18: both orders of a final count and a claim above it leave the same state -------

def final_and_claim(final_first):
    """carol receives alice's Shutdown (final count 1) and bob's entry claiming 3 of alice's
    entries, in either order; then the rest of the shutdown. Returns (room, the events carol
    reports for the two messages, carol's session)."""
    r = Room()
    r.establish()
    r.call("alice", "send_text", "a1")
    r.run()
    r.clear()
    claim = ("bob", forged_entry(r, "bob", [3, 0, 0]))
    r.call("alice", "leave")
    (sd,) = r.take("alice")
    first = [sd, claim] if final_first else [claim, sd]
    evs = []
    for item in first:
        evs += r.deliver(item, ["carol"])["carol"].events
    return r, evs, r.eng["carol"].sessions()[0]


def check_final_and_claim_both_orders():
    ra, ea, sa = final_and_claim(final_first=False)
    rb, eb, sb = final_and_claim(final_first=True)
    svs = [[(e.nick, e.seq) for e in ev(x, "split_view")] for x in (ea, eb)]
    check("R-SD-18 both orders: one SplitView naming bob (the claimer / the entry's sender), no seq",
          svs == [[("bob", None)], [("bob", None)]], str(svs))
    st = [(s.expected(0), s.gap[0], len(s.pending_views)) for s in (sa, sb)]
    check("R-SD-18 both orders leave the same state: alice's count known to exist is her final "
          "count, no gap pending, and no view kept waiting (the claim's view is dropped unchecked)",
          st == [(1, None, 0), (1, None, 0)], str(st))
    # the same calls afterwards give the same events in both orders: carol's tick at the gap
    # deadline the claim set in the first order (no MessageLost), then at the shutdown deadline
    later = []
    for r in (ra, rb):
        evs = []
        for r.now in (TO["gap"], TO["shutdown"]):
            evs.append([e.as_dict() for e in r.call("carol", "tick").events])
        later.append(evs)
    check("R-SD-18 then the same events in both orders (no MessageLost of alice's entries)",
          later[0] == later[1] and not [e for x in later[0] for e in x
                                        if e["kind"] == "message_lost"], str(later))


def main():
    checks = [check_decoding, check_late_lost_entry, check_late_lost_heartbeat,
              check_heartbeat_late, check_claimed_range, check_split_view_no_seq,
              check_final_below_claim, check_digest_after_last_entry,
              check_overdue_then_heartbeat, check_rejected_nick, check_false_accusation,
              check_seeding_conflict, check_quit_member_cut_at_closing_deadline,
              check_rejected_trigger_offer, check_quit_after_end, check_claim_above_held_final,
              check_ready_to_leave_last_in_receive, check_seeds_after_conflict_dropped,
              check_restart_uses_held_offer, check_verdict_attempt_seeded,
              check_leaving_out_seeded, check_final_and_claim_both_orders]
    for c in checks:
        try:
            c()
        except Exception:                      # noqa: BLE001 — a crash is a failure
            FAILURES.append(f"{c.__name__} crashed:\n{traceback.format_exc()}")
    for f in FAILURES:
        print("FAIL", f)
    print(f"rules_check: {PASSED} checks passed, {len(FAILURES)} failed")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
