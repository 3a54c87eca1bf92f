"""One established session (spec §6.3, §7.6–§7.8): chat entries, heartbeats, confirmations,
gaps and losses, and the four-round shutdown with key publication (R-SD-15)."""
from __future__ import annotations

from . import codec
from . import keysched as ks
from .codec import Message, MAX_MESSAGES
from .crypto import PrivateKey, aes128_ctr, ct_equal, verify_digest, Q
from .errors import ErrorCode as E, MpotrError

MAX_HELD = 256          # kMaxHeldMessages (held entries, and pending views)
MAX_OWN_PENDING = 1024  # kMaxOwnPending


def err(code, detail=""):
    return MpotrError(code, detail)


class Session:
    def __init__(self, eng, attempt, now: int):
        self.eng = eng
        self.sid = attempt.sid
        self.tag = self.sid[:8]
        self.nicks = list(attempt.nicks)
        self.jids = list(attempt.jids)
        self.n = attempt.n
        self.me = attempt.me
        self.S = [attempt.offers[i]["signing_key"] for i in range(self.n)]
        self.s = attempt.s
        self.keys = [ks.sender_key(attempt.G, i) for i in range(self.n)]
        self.k_auth = attempt.k_auth
        # setup messages the session was set up with, by signed part (R-KS-1)
        self.setup_parts = {("key_share", i): attempt.key_shares[i].signed_part for i in range(self.n)}
        self.setup_parts.update({("attest", i): attempt.attests[i].signed_part for i in range(self.n)})
        self.phase = "active"
        n = self.n
        self.delivered = [0] * n
        self.ids: list[dict] = [{} for _ in range(n)]           # seq -> message id (held for §5.13)
        self.chain = [[ks.chain_start(self.sid, m)] for m in range(n)]   # intact prefix
        self.broken = [False] * n
        self.lost: list[list] = [[] for _ in range(n)]
        self.held: list[dict] = [{} for _ in range(n)]          # seq -> (type, id, text)
        self.vouched = [0] * n                                  # counts m itself vouched for
        self.claim = [(0, None)] * n                            # (count, by) from others' acks
        self.gap: list = [None] * n                             # gap deadline per member
        self.pending_views: list = []
        self.my_count = 0
        self.last_acks = [0] * n
        self.conf = [[0] * n for _ in range(n)]                 # conf[m][j]: j confirmed m up to
        self.fully = [0] * n
        self.own_pending: dict[int, int] = {}                   # own Data seq -> confirm deadline
        self.hb_deadline = None
        # shutdown
        self.shutdowns: dict[int, Message] = {}
        self.quits: dict[int, Message] = {}
        self.final: dict[int, int] = {}
        self.excused: set[int] = set()
        self.digests: dict[int, Message] = {}
        self.ends: dict[int, Message] = {}
        self.end_compared: set[int] = set()
        self.reveals: dict[int, bytes] = {}
        self.revoked: set[int] = set()
        self.mismatch_reported: set[int] = set()
        self.my_shutdown = self.my_digest = self.my_end = self.my_quit = None
        self.my_reveal = None
        self.my_transcript = None
        self.sd_deadline = None
        self.key_state = None          # None, 'published', 'withheld'
        self.incomplete_reported: set[str] = set()

    # --- helpers -------------------------------------------------------------------------------

    @property
    def out(self):
        return self.eng.out

    def nick(self, i):
        return self.nicks[i].decode("utf-8", "replace")

    def emit(self, kind, **kw):
        kw.setdefault("session_id", self.sid)
        return self.out.emit(kind, **kw)

    def sign(self, body: bytes) -> bytes:
        return body + self.s.sign_digest(ks.signed_digest(self.sid, body), self.eng.rng)

    def mac_sign(self, body: bytes) -> bytes:
        return self.sign(body + ks.message_mac(self.k_auth, body))

    def check_mac_sig(self, m: Message):
        """R-DATA-15 (MAC first), R-DATA-2 (KeyRevoked), R-DATA-3 (signature)."""
        if not ct_equal(ks.message_mac(self.k_auth, m.mac_part), m["mac"]):
            raise err(E.BadMac, "group MAC")
        if m["sender"] in self.revoked:
            raise err(E.KeyRevoked, "the sender's signing key was published")
        if not verify_digest(self.S[m["sender"]], ks.signed_digest(self.sid, m.signed_part),
                             m["signature"]):
            raise err(E.BadSignature, "signature")

    def others(self):
        return [m for m in range(self.n) if m != self.me]

    def acks_now(self):
        """§5.12: per other member the largest count whose chain value we know."""
        return [min(self.delivered[m], len(self.chain[m]) - 1) if m != self.me else self.my_count
                for m in range(self.n)]

    def chain_at(self, m, c):
        if m == self.me:
            return self.chain[m][c] if c < len(self.chain[m]) else None
        return self.chain[m][c] if c < len(self.chain[m]) else None

    def deadlines(self):
        d = [self.hb_deadline if self.phase == "active" else None, self.sd_deadline]
        d += [g for g in self.gap if g is not None]
        if self.phase == "active":
            d += list(self.own_pending.values())
        return [x for x in d if x is not None]

    # --- routing (R-SES-2) ---------------------------------------------------------------------

    def receive(self, m: Message, from_nick: bytes, now: int):
        j = m["sender"]
        if j >= self.n:
            raise err(E.NotAMember, "sender index outside the session")
        if self.nicks[j] != from_nick:
            raise err(E.NickMismatch, "sender index names another member")
        if j == self.me:
            return self.own_echo(m)
        t = m.type
        if t in ("data", "heartbeat"):
            self.on_entry(m, now)
        elif t == "shutdown":
            self.on_shutdown(m, now)
        elif t == "digest":
            self.on_digest(m, now)
        elif t == "end":
            self.on_end(m, now)
        elif t == "quit":
            self.on_quit(m, now)
        elif t == "key_reveal":
            self.on_key_reveal(m, now)

    def own_echo(self, m: Message):
        t = m.type
        if t in ("data", "heartbeat"):
            if m["seq"] <= self.my_count and self.ids[self.me].get(m["seq"]) == ks.signed_digest(
                    self.sid, m.signed_part):
                return
            raise err(E.NickMismatch, "an entry in our name that we did not send")
        if t == "key_reveal":
            if self.my_reveal is not None and m.encoding == self.my_reveal:
                return
            raise err(E.NickMismatch, "a key reveal in our name that we did not send")
        mine = {"shutdown": self.my_shutdown, "digest": self.my_digest, "end": self.my_end,
                "quit": self.my_quit}.get(t)
        if mine is not None and mine.signed_part == m.signed_part:
            return
        raise err(E.NickMismatch, f"a {t} in our name that we did not send")

    # --- chat entries (§7.7) ---------------------------------------------------------------------

    def on_entry(self, m: Message, now: int):
        j, seq = m["sender"], m["seq"]
        if len(m["acks"]) != self.n - 1:                                      # R-DATA-1
            raise err(E.DecodeBadValue, "ack_count is not n - 1")
        self.check_mac_sig(m)                                                 # R-DATA-15/2/3
        mid = ks.signed_digest(self.sid, m.signed_part)
        known = self.ids[j].get(seq)                                          # R-DATA-4
        if seq <= self.delivered[j] and known is not None:
            raise err(E.Duplicate if known == mid else E.Equivocation, f"entry {seq}")
        if seq in self.held[j]:
            raise err(E.Duplicate if self.held[j][seq][1] == mid else E.Equivocation,
                      f"held entry {seq}")
        if j in self.final and seq > self.final[j]:                           # R-DATA-5
            raise err(E.UnexpectedMessage, "entry beyond the sender's final count")
        if self.phase not in ("active", "closing"):                           # R-DATA-6
            raise err(E.UnexpectedMessage, "our transcript is closed")
        counts = self.counts_of(j, m)
        if seq > self.delivered[j] + 1 and sum(len(h) for h in self.held) >= MAX_HELD:
            raise err(E.LimitExceeded, "too many held entries")
        text = None
        if m.type == "data":
            key, prefix = self.keys[j]
            text = aes128_ctr(key, ks.message_iv(prefix, seq), m["ciphertext"]).decode(
                "utf-8", "replace")
        entry = (m.type, mid, text, counts, m["view_digest"])
        if seq <= self.delivered[j]:                                          # R-DATA-8: late
            # a lost entry arriving late is accepted and counts as held for the transcript
            # digest (§5.13); a Data entry is shown with late = true, a Heartbeat gives no event,
            # and nothing else is done: its view is not examined, no timer starts
            self.ids[j][seq] = mid
            if m.type == "data":
                self.emit("message_received", nick=self.nick(j), seq=seq, text=text, late=True,
                          detail="an entry declared lost arrived late")
            return
        if seq > self.delivered[j] + 1:                                       # R-DATA-7: held
            self.held[j][seq] = entry
            self.vouched[j] = max(self.vouched[j], seq)
            if self.gap[j] is None:
                self.emit("gap", nick=self.nick(j), seq=self.delivered[j] + 1, seq_end=seq - 1)
                self.gap[j] = now + self.eng.timeouts["gap"]
            return
        # R-DATA-7: delivered (late if later entries were held), then the held entries that now
        # follow, each view checked right after its own event; then the pending views that are
        # now complete, oldest first; then the shutdown moves on if it can
        self.deliver(j, seq, entry, now, late=bool(self.held[j]))
        self.release_held(j, now)
        self.update_gap(j, now)
        self.recheck_views(now)
        self.progress(now)

    def counts_of(self, j, m):
        others = [k for k in range(self.n) if k != j]
        counts = [0] * self.n
        for k, a in zip(others, m["acks"]):
            counts[k] = a
        counts[j] = m["seq"] - 1
        return counts

    def deliver(self, j, seq, entry, now, late=False):
        typ, mid, text, counts, view = entry
        self.delivered[j] = seq
        self.ids[j][seq] = mid
        if not self.broken[j]:
            self.chain[j].append(ks.chain_step(self.chain[j][-1], mid))
        self.vouched[j] = max(self.vouched[j], seq)
        self.show(j, seq, entry, late=late, now=now)

    def show(self, j, seq, entry, late, now):
        typ, mid, text, counts, view = entry
        if typ == "data":
            self.emit("message_received", nick=self.nick(j), seq=seq, text=text, late=late or None)
            if self.phase == "active" and self.hb_deadline is None:          # §6.4 heartbeat
                self.hb_deadline = now + self.eng.timeouts["heartbeat"]
        else:
            self.emit("heartbeat", nick=self.nick(j), seq=seq, late=late or None)
        self.check_view(j, seq, counts, view, now)

    def release_held(self, j, now):
        while self.delivered[j] + 1 in self.held[j]:
            seq = self.delivered[j] + 1
            self.deliver(j, seq, self.held[j].pop(seq), now, late=False)

    def expected(self, j):
        """How many entries of j we know exist: vouched by j, claimed by others, final count."""
        c = max(self.vouched[j], self.claim[j][0])
        if j in self.final:
            c = max(c, self.final[j])
        return c

    def vouched_by(self, j):
        """R-DATA-8: what j itself vouched for — its entries delivered to us or held, every
        entry before them, and its final count."""
        return max(self.vouched[j], self.final.get(j, 0))

    def claimed_by(self, j, last):
        """The member a range ending at `last` names (by), if it reaches beyond what j vouched
        for: the member whose acknowledgement first claimed the highest count (R-DATA-11)."""
        if last > self.vouched_by(j) and self.claim[j][1] is not None:
            return self.claim[j][1]
        return None

    def update_gap(self, j, now):
        if self.delivered[j] >= self.expected(j) and not self.held[j]:
            self.gap[j] = None

    # --- views and confirmations (R-DATA-9 … R-DATA-12) -----------------------------------------

    def check_view(self, j, seq, counts, view, now):
        """An entry's view, right after its own event (R-DATA-7)."""
        if counts[self.me] > self.my_count:                                   # R-DATA-10
            # checked first; the view is examined no further and not kept (no seq: Appendix B)
            self.emit("split_view", nick=self.nick(j),
                      detail="it acknowledges more of our entries than we wrote")
            return
        waiting = contradicted = False
        for m in range(self.n):                                               # R-DATA-11
            if m in (j, self.me) or counts[m] <= self.delivered[m]:
                continue
            if m in self.final and counts[m] > self.final[m]:
                # R-SD-18, second bullet: a claim above m's final count, which we already hold:
                # SplitView naming the entry's sender, once per entry and member; the count
                # known to exist is not raised, no Gap, no timer; the other members are handled
                # as usual, but the view, which can never be complete, is not kept
                contradicted = True
                self.emit("split_view", nick=self.nick(j),
                          detail=f"acknowledged {counts[m]} entries of {self.nick(m)}, "
                                 f"whose final count is {self.final[m]}")
                continue
            waiting = True
            if counts[m] > self.expected(m):
                # the highest count known to exist; beyond what m vouched for, so the sender
                # is the member a loss of them names
                self.claim[m] = (counts[m], j)
            if self.gap[m] is None:
                self.emit("gap", nick=self.nick(m), seq=self.delivered[m] + 1,
                          seq_end=counts[m], by=self.nick(j),
                          detail=f"only {self.nick(j)}'s acknowledgement claims them")
                self.gap[m] = now + self.eng.timeouts["gap"]
        if contradicted:
            return
        if waiting:
            if len(self.pending_views) < MAX_HELD:
                self.pending_views.append((j, seq, counts, view))
            return
        self.verify_view(j, seq, counts, view)

    def verify_view(self, j, seq, counts, view):
        """R-DATA-9 and R-DATA-12 for a view all of whose entries are held."""
        chains = []
        for m in range(self.n):
            c = self.chain_at(m, counts[m])
            if c is None:                                                     # broken chain
                return
            chains.append(c)
        if ks.view_digest(counts, chains) != view:                            # R-DATA-9
            self.emit("split_view", nick=self.nick(j), seq=seq, detail="its view differs from ours")
            return
        self.confirm(j, counts)

    def view_complete(self, j, counts):
        return all(counts[m] <= self.delivered[m] for m in range(self.n) if m not in (j, self.me))

    def recheck_views(self, now):
        """Pending views (R-DATA-11) that are now complete are checked, oldest first; the others
        stay pending, unexamined."""
        done = [v for v in self.pending_views if self.view_complete(v[0], v[2])]
        self.pending_views = [v for v in self.pending_views if v not in done]
        for (j, seq, counts, view) in done:
            self.verify_view(j, seq, counts, view)

    def confirm(self, j, counts):
        for m in range(self.n):
            if m == j:
                continue
            c = counts[m]
            if c > self.conf[m][j]:
                self.conf[m][j] = c
                self.emit("confirmed", nick=self.nick(m), seq=c, by=self.nick(j))
                f = min(self.conf[m][k] for k in range(self.n) if k != m)
                f = min(f, self.my_count if m == self.me else self.delivered[m])
                if f > self.fully[m]:
                    self.fully[m] = f
                    self.emit("fully_confirmed", nick=self.nick(m), seq=f)
                    if m == self.me:
                        for s in [s for s in self.own_pending if s <= f]:
                            del self.own_pending[s]

    # --- sending (R-SEND-1, R-DATA-14) ---------------------------------------------------------

    def send_entry(self, typ: str, text: bytes, now: int):
        if self.my_count >= MAX_MESSAGES:
            raise err(E.LimitExceeded, "2^20 entries in this session")
        seq = self.my_count + 1
        counts = self.acks_now()
        counts[self.me] = self.my_count
        acks = [counts[m] for m in self.others()]
        view = ks.view_digest(counts, [self.chain_at(m, counts[m]) for m in range(self.n)])
        key, prefix = self.keys[self.me]
        ct = aes128_ctr(key, ks.message_iv(prefix, seq), text) if text else b""
        body, _ = codec.encode_body(typ, {"session_tag": self.tag, "sender": self.me, "seq": seq,
                                          "acks": acks, "view_digest": view, "ciphertext": ct})
        payload = self.mac_sign(body)
        m = codec.decode(payload)
        mid = ks.signed_digest(self.sid, m.signed_part)
        self.my_count = seq
        self.ids[self.me][seq] = mid
        self.chain[self.me].append(ks.chain_step(self.chain[self.me][-1], mid))
        self.last_acks = counts
        self.hb_deadline = None
        if typ == "data":
            self.own_pending[seq] = now + self.eng.timeouts["confirm"]
            while len(self.own_pending) > MAX_OWN_PENDING:
                del self.own_pending[min(self.own_pending)]
        self.eng.broadcast(payload, own_chat=True)
        self.confirm(self.me, counts)
        return seq

    # --- timers --------------------------------------------------------------------------------

    def tick(self, now: int):
        """§6.4, within a session: (1) due gaps, in index order (R-DATA-8); (2) pending views now
        complete; (3) if Active, ConfirmationOverdue in sequence order, then the heartbeat;
        (4) if Closing, the shutdown moves on; (5) the shutdown deadline (R-SD-10)."""
        for m in range(self.n):
            if self.gap[m] is not None and self.gap[m] <= now:
                self.gap_expired(m, now)
        self.recheck_views(now)
        if self.phase == "active":
            for s, dl in sorted(self.own_pending.items()):
                if dl <= now:
                    del self.own_pending[s]
                    missing = [self.nick(k) for k in self.others() if self.conf[self.me][k] < s]
                    self.emit("confirmation_overdue", nick=self.nick(self.me), seq=s,
                              nicks=missing)
            if self.hb_deadline is not None and self.hb_deadline <= now:
                self.hb_deadline = None
                acks = self.acks_now()
                if any(acks[m] != self.last_acks[m] for m in self.others()):
                    self.send_entry("heartbeat", b"", now)
        if self.phase == "closing":
            self.progress(now)
        if self.sd_deadline is not None and self.sd_deadline <= now:
            self.shutdown_timeout(now)

    def missing_end(self, m):
        """The end of the missing range of m (R-DATA-8): before the lowest entry held ahead of
        the gap, or else the highest count known to exist."""
        return (min(self.held[m]) - 1) if self.held[m] else self.expected(m)

    def gap_expired(self, m, now):
        first, last = self.delivered[m] + 1, self.missing_end(m)
        self.gap[m] = None
        if last >= first:
            by = self.claimed_by(m, last)
            self.emit("message_lost", nick=self.nick(m), seq=first, seq_end=last,
                      by=self.nick(by) if by is not None else None,
                      detail=(f"only {self.nick(by)}'s acknowledgement claims the entries beyond "
                              f"{self.vouched_by(m)}") if by is not None else None)
            self.lost[m].append((first, last))
            self.delivered[m] = last
            self.broken[m] = True
            # views still waiting for m's entries name a lost entry: dropped unchecked
            self.pending_views = [v for v in self.pending_views
                                  if not (v[0] != m and v[2][m] >= first)]
            self.release_held(m, now)
        if self.delivered[m] < self.expected(m) or self.held[m]:
            # entries still missing: the timer restarts at once, with a Gap for the next range
            nxt, end = self.delivered[m] + 1, self.missing_end(m)
            by = self.claimed_by(m, end)
            self.emit("gap", nick=self.nick(m), seq=nxt, seq_end=end,
                      by=self.nick(by) if by is not None else None,
                      detail=(f"only {self.nick(by)}'s acknowledgement claims the entries beyond "
                              f"{self.vouched_by(m)}") if by is not None else None)
            self.gap[m] = now + self.eng.timeouts["gap"]

    # --- shutdown (§7.8) -------------------------------------------------------------------------

    def begin_shutdown(self, now: int, detail: str):
        if self.phase != "active":
            return
        self.phase = "closing"
        self.hb_deadline = None
        self.emit("session_closing", detail=detail)
        body, _ = codec.encode_body("shutdown", {"session_tag": self.tag, "sender": self.me,
                                                 "final_count": self.my_count})
        payload = self.mac_sign(body)
        self.my_shutdown = codec.decode(payload)
        self.eng.broadcast(payload)
        self.sd_deadline = now + self.eng.timeouts["shutdown"]
        self.progress(now)

    def highest_held(self, j):
        return max([self.delivered[j]] + list(self.held[j]) + list(self.ids[j]))

    def check_final(self, j, fc, other: Message | None):
        if fc < self.highest_held(j):                                         # R-SD-4
            raise err(E.Equivocation, "final count below an entry it signed")
        if other is not None and other["final_count"] != fc:
            raise err(E.Equivocation, "its Quit and Shutdown give different final counts")

    def set_final(self, j, fc, now):
        self.final[j] = fc
        cnt, by = self.claim[j]
        if cnt > fc:                                                          # R-SD-18
            self.emit("split_view", nick=self.nick(by) if by is not None else None,
                      detail=f"acknowledged {cnt} entries of {self.nick(j)}, "
                             f"whose final count is {fc}")
            self.claim[j] = (fc, by)
            # "every view kept waiting (R-DATA-11) that names more of m's entries than the final
            # count is dropped unchecked ... so both orders leave the same state"
            self.pending_views = [v for v in self.pending_views if v[2][j] <= fc]
        for s in [s for s in self.held[j] if s > fc]:
            del self.held[j][s]
        if fc > self.delivered[j]:                                            # R-SD-5
            if self.gap[j] is None:
                self.emit("gap", nick=self.nick(j), seq=self.delivered[j] + 1, seq_end=fc,
                          detail="announced in its shutdown")
                self.gap[j] = now + self.eng.timeouts["gap"]
        else:
            self.update_gap(j, now)

    def on_shutdown(self, m: Message, now: int):
        j = m["sender"]
        self.check_mac_sig(m)                                                 # R-SD-2
        if j in self.shutdowns:                                               # R-SD-3
            raise err(E.Duplicate if self.shutdowns[j].signed_part == m.signed_part
                      else E.Equivocation, "shutdown already held")
        self.check_final(j, m["final_count"], self.quits.get(j))
        self.shutdowns[j] = m
        if j not in self.final:
            self.set_final(j, m["final_count"], now)
        was_active = self.phase == "active"
        self.begin_shutdown(now, f"'{self.nick(j)}' is closing the session")  # R-SD-1
        self.progress(now)
        if was_active:
            self.eng.session_stopped_by_member(self, now)

    def on_quit(self, m: Message, now: int):
        j = m["sender"]
        self.check_mac_sig(m)                                                 # R-SD-16
        if j in self.quits:
            raise err(E.Duplicate if self.quits[j].signed_part == m.signed_part
                      else E.Equivocation, "quit already held")
        self.check_final(j, m["final_count"], self.shutdowns.get(j))
        self.quits[j] = m
        if j not in self.final:
            self.set_final(j, m["final_count"], now)
        self.excused.add(j)
        was_active = self.phase == "active"
        self.begin_shutdown(now, f"'{self.nick(j)}' quit the session")
        self.progress(now)
        if was_active:
            self.eng.session_stopped_by_member(self, now)

    def on_digest(self, m: Message, now: int):
        j = m["sender"]
        self.check_mac_sig(m)                                                 # R-SD-6
        if j in self.digests:
            raise err(E.Duplicate if self.digests[j].signed_part == m.signed_part
                      else E.Equivocation, "digest already held")
        if self.phase == "active":
            raise err(E.UnexpectedMessage, "digest before any shutdown")
        self.digests[j] = m
        if self.my_transcript is not None:                                    # R-SD-8
            self.compare_digest(j)
        self.progress(now)                                                    # Ends: R-SD-14

    def compare_digest(self, j):
        if self.digests[j]["transcript_digest"] != self.my_transcript and j not in self.mismatch_reported:
            self.mismatch_reported.add(j)
            self.emit("transcript_mismatch", nick=self.nick(j), detail="its transcript digest differs")

    def on_end(self, m: Message, now: int):
        j = m["sender"]
        self.check_mac_sig(m)                                                 # R-SD-14
        if j in self.ends:
            raise err(E.Duplicate if self.ends[j].signed_part == m.signed_part
                      else E.Equivocation, "end already held")
        if any(i >= self.n for i in codec.memberset_indices(m["present"])):
            raise err(E.DecodeBadValue, "present names an index outside the session")
        if self.phase == "active":
            raise err(E.UnexpectedMessage, "end before any shutdown")
        self.ends[j] = m
        self.progress(now)                                                    # Ends: R-SD-14

    def digest_of(self, m):
        if m == self.me:
            return self.my_transcript
        d = self.digests.get(m)
        return d["transcript_digest"] if d is not None else None

    def compare_ends(self):
        """R-SD-14: once Ended (and still when Revealed), every End held is compared as soon as
        we hold every digest its present set names; in member index order."""
        if self.phase not in ("ended", "revealed"):
            return
        for j, m in sorted(self.ends.items()):
            if j in self.end_compared:
                continue
            present = codec.memberset_indices(m["present"])
            ds = [self.digest_of(k) for k in present]
            if any(d is None for d in ds):
                continue                       # names a digest we do not hold: not comparable
            self.end_compared.add(j)
            full = [self.digest_of(k) if k in present else None for k in range(self.n)]
            if ks.end_digest(full) != m["digests_hash"] and j not in self.mismatch_reported:
                self.mismatch_reported.add(j)
                self.emit("transcript_mismatch", nick=self.nick(j),
                          detail="compared other digests than we did")

    def on_key_reveal(self, m: Message, now: int):
        j = m["sender"]
        if j in self.reveals:                                                 # R-SD-9
            raise err(E.Duplicate if self.reveals[j] == m.encoding else E.Equivocation,
                      "key reveal already accepted")
        d = int.from_bytes(m["private_key"], "big")
        if not 1 <= d < Q or PrivateKey(d).public != self.S[j]:
            raise err(E.BadKeyReveal, "the scalar does not match the member's signing key")
        self.reveals[j] = m.encoding
        self.revoked.add(j)
        self.emit("peer_key_published", nick=self.nick(j), data=m["private_key"])
        self.progress(now)

    def transcript_digest(self):
        finals, chains = [], []
        for m in range(self.n):
            f = self.my_count if m == self.me else self.final[m]
            finals.append(f)
            chains.append(ks.closing_chain(self.chain[m][0], f, self.ids[m]))
        return ks.transcript_digest(finals, chains)

    def progress(self, now: int):
        """R-SD-7: the shutdown moves on as far as it can. In Ended and Revealed each move first
        compares the Ends held (R-SD-14), so mismatches come before KeyPublished."""
        while True:
            self.compare_ends()
            if self.phase == "closing":
                if not all((m in self.final) and self.delivered[m] >= self.final[m]
                           for m in self.others()):
                    return
                self.my_transcript = self.transcript_digest()
                body, _ = codec.encode_body("digest", {"session_tag": self.tag, "sender": self.me,
                                                       "transcript_digest": self.my_transcript})
                payload = self.mac_sign(body)
                self.my_digest = codec.decode(payload)
                self.phase = "digested"
                self.eng.broadcast(payload)
                for j in sorted(self.digests):
                    self.compare_digest(j)
                continue
            if self.phase == "digested":
                if not all(m in self.digests or m in self.excused for m in self.others()):
                    return
                if not self.mismatch_reported:
                    no_digest = [self.nick(m) for m in self.others() if m not in self.digests]
                    self.emit("transcript_consistent", nicks=no_digest or None,
                              detail=("among the members that finished the check; the others did "
                                      "not send their final digest") if no_digest else None)
                present = [m for m in range(self.n) if self.digest_of(m) is not None]
                full = [self.digest_of(m) for m in range(self.n)]
                body, _ = codec.encode_body("end", {"session_tag": self.tag, "sender": self.me,
                                                    "present": codec.memberset(present),
                                                    "digests_hash": ks.end_digest(full)})
                payload = self.mac_sign(body)
                self.my_end = codec.decode(payload)
                self.phase = "ended"
                self.eng.broadcast(payload)
                continue
            if self.phase == "ended":
                missing = [m for m in self.others() if m not in self.ends and m not in self.quits]
                if missing:
                    if all(m in self.excused for m in missing) and self.key_state is None:
                        self.key_state = "withheld"                          # R-SD-15
                        self.sd_deadline = None
                        self.emit("key_withheld", nicks=[self.nick(m) for m in missing],
                                  detail="they have not confirmed the end of the session")
                    return
                self.key_state = "published"
                self.phase = "revealed"
                self.emit("key_published")
                self.my_reveal = codec.encode("key_reveal", {"session_tag": self.tag,
                                                             "sender": self.me,
                                                             "private_key": self.s.to_bytes()})
                self.eng.broadcast(self.my_reveal)
                self.sd_deadline = now + self.eng.timeouts["shutdown"]
                continue
            if self.phase == "revealed":
                if not all(m in self.reveals or m in self.excused for m in self.others()):
                    return
                self.close()
            return

    def close(self, detail=None):
        self.phase = "closed"
        self.sd_deadline = None
        self.emit("session_closed", detail=detail)
        self.eng.retire(self)

    def shutdown_timeout(self, now: int):
        ph = self.phase
        self.sd_deadline = None
        if ph == "closing":
            # R-SD-10: in Closing a member excused by its Quit is counted too — a Quit excuses
            # it from the Digest and End rounds, not from the entries up to its final count — so
            # it is cut like any other instead of waiting for its gap timer
            missing = [m for m in self.others()
                       if m not in self.final or self.delivered[m] < self.final[m]]
        # in Digested and Ended a member already excused (by its Quit or at an earlier
        # deadline) is not counted again
        elif ph == "digested":
            missing = [m for m in self.others() if m not in self.digests and m not in self.excused]
        elif ph == "ended":
            missing = [m for m in self.others() if m not in self.ends and m not in self.quits
                       and m not in self.excused]
        elif ph == "revealed":
            missing = [m for m in self.others() if m not in self.reveals and m not in self.excused]
            if missing:
                self.emit("shutdown_incomplete", nicks=[self.nick(m) for m in missing])
            self.close()
            return
        else:
            return
        if missing and ph not in self.incomplete_reported:
            self.incomplete_reported.add(ph)
            self.emit("shutdown_incomplete", nicks=[self.nick(m) for m in missing])
        for m in missing:
            self.excused.add(m)
            if ph == "closing":
                self.final[m] = self.delivered[m]
                self.held[m] = {}
                self.gap[m] = None
        self.sd_deadline = now + self.eng.timeouts["shutdown"]
        self.progress(now)
        if self.key_state == "withheld":
            self.sd_deadline = None

    def quit(self, now: int):
        """R-SD-17, for a session not Closed yet: our Quit unless our End is out (none in Ended
        or Revealed); KeyWithheld unless our key is published (again if R-SD-15 reported it);
        then SessionClosed, and the session is retired."""
        if self.my_end is None:
            body, _ = codec.encode_body("quit", {"session_tag": self.tag, "sender": self.me,
                                                 "final_count": self.my_count})
            payload = self.mac_sign(body)
            self.my_quit = codec.decode(payload)
            self.eng.broadcast(payload)
        if self.key_state != "published":
            lack = [self.nick(m) for m in self.others() if m not in self.ends and m not in self.quits]
            self.emit("key_withheld", nicks=lack, detail="we quit before the end of the session")
        self.close()
