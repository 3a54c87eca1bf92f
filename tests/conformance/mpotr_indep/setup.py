"""One setup attempt (spec §6.2, §7.3–§7.5): offers, key shares, accusations, attests."""
from __future__ import annotations

from . import codec
from . import keysched as ks
from .codec import Message
from .crypto import PrivateKey, ct_equal, point_valid, verify_digest, Q
from .errors import ErrorCode as E, MpotrError

MAX_EARLY = 4   # kMaxEarlyPerSender


def err(code, detail=""):
    return MpotrError(code, detail)


class Attempt:
    """Phases: offers, key_shares, attests, done, failed."""

    def __init__(self, eng, number: int, nicks: list[bytes], jids: list[str], now: int):
        self.eng = eng
        self.number = number
        self.nicks = nicks
        self.jids = jids
        self.n = len(nicks)
        self.me = nicks.index(eng.nick)
        self.roster_digest = ks.roster_digest(eng.room, nicks)
        self.phase = "offers"
        self.deadline = now + eng.timeouts["setup"]
        rng = eng.rng
        # §12: an attempt draws e, s and r (one key each), then x, then the offer nonce
        self.e = PrivateKey.generate(rng)
        self.s = PrivateKey.generate(rng)
        self.r = PrivateKey.generate(rng)
        self.x = rng.bytes(32)
        self.nonce = rng.bytes(32)
        fields = {"roster_digest": self.roster_digest, "attempt": number, "nick": eng.nick,
                  "nonce": self.nonce, "identity_key": eng.identity.public,
                  "dh_key": self.e.public, "signing_key": self.s.public}
        self.my_offer = codec.decode(codec.encode("offer", fields))
        self.offers: dict[int, Message] = {self.me: self.my_offer}
        self.early: dict[str, dict[bytes, list[Message]]] = {"key_share": {}, "attest": {}, "accuse": {}}
        self.sid: bytes | None = None
        self.key_shares: dict[int, Message] = {}
        self.xs: dict[int, bytes] = {}
        self.G = self.T = self.kc = self.k_auth = None
        self.attests: dict[int, Message] = {}
        self.my_key_share: Message | None = None
        self.my_attest: Message | None = None

    # --- helpers -----------------------------------------------------------------------------

    @property
    def out(self):
        return self.eng.out

    def index_of(self, nick: bytes):
        try:
            return self.nicks.index(nick)
        except ValueError:
            return None

    def nick_str(self, i):
        return self.nicks[i].decode("utf-8", "replace")

    def nicks_str(self):
        return [self.nick_str(i) for i in range(self.n)]

    def sign(self, body: bytes) -> bytes:
        return body + self.s.sign_digest(ks.signed_digest(self.sid, body), self.eng.rng)

    def verify(self, i: int, m: Message, sid: bytes | None = None) -> bool:
        S = self.offers[i]["signing_key"]
        return verify_digest(S, ks.signed_digest(sid or self.sid, m.signed_part), m["signature"])

    def erase(self):
        """§6.2: a failed or finished attempt forgets its ephemeral secrets."""
        self.e = self.s = self.r = None
        self.x = None
        self.xs = {}
        self.G = self.k_auth = None

    def start(self, seeds: list[Message], now: int):
        """Our Offer and SetupStarted, then the seeds (R-OFF-6, R-OFF-9): in the order given,
        each processed as R-OFF-11, errors as Rejected events (R-GEN-2)."""
        self.eng.broadcast(self.my_offer.encoding)
        self.eng.remember_nonce(self.nonce, own=True)
        self.out.emit("setup_started", nicks=self.nicks_str())
        for m in seeds:
            if self.eng.attempt is not self or self.phase not in ("offers", "key_shares", "attests"):
                break          # a seed (or what it completed) ended this attempt: the rest is stale
            try:
                self.seed_offer(m, now)
            except MpotrError as e:
                self.out.emit("rejected", code=e.code.snake, nick=m["nick"].decode("utf-8", "replace"),
                              detail=e.detail)

    def seed_offer(self, m: Message, now: int):
        i = self.index_of(m["nick"])
        if i is None:                                                         # R-OFF-7
            raise err(E.NotAMember, "sender not in our roster")
        if i in self.offers:
            if self.offers[i]["nonce"] == m["nonce"]:
                return                                    # the same offer twice: nothing new
            self.eng.conflicting_offer(self, now)                             # R-OFF-11
            return
        self.eng.check_offer_points(m)
        self.store_offer(m, now)

    # --- offers ------------------------------------------------------------------------------

    def store_offer(self, m: Message, now: int):
        i = self.index_of(m["nick"])
        self.offers[i] = m
        self.eng.remember_nonce(m["nonce"])
        if len(self.offers) == self.n:
            self.enter_key_shares(now)

    def enter_key_shares(self, now):
        offers = [self.offers[i] for i in range(self.n)]
        self.sid = ks.session_id(self.eng.room, self.number, [o.fields for o in offers])
        me, sid = self.me, self.sid
        shares = []
        for j in range(self.n):
            if j == me:
                continue
            Ej = self.offers[j]["dh_key"]
            k = ks.dake_key_sender(sid, me, j, self.eng.identity, self.e, Ej)
            mac = ks.dake_mac(k, sid, me, j, self.s.public, self.e.public, self.r.public)
            pad = ks.elgamal_pad(sid, me, j, self.r.dh(Ej), self.r.public, Ej)
            shares.append({"mac": mac, "secret_ct": ks.xor(self.x, pad)})
        fields = {"session_id": sid, "sender": me, "elgamal_r": self.r.public,
                  "commit": ks.commit(sid, me, self.x), "refused": codec.memberset([]),
                  "shares": shares}
        body, _ = codec.encode_body("key_share", fields)
        payload = self.sign(body)
        self.my_key_share = codec.decode(payload)
        self.key_shares[me] = self.my_key_share
        self.xs[me] = self.x
        self.phase = "key_shares"
        self.eng.broadcast(payload)
        # §6.2: buffered key shares, then buffered accusations; each kind member by member in
        # index order, each member's in arrival order (R-KS-3). The accusations buffered in
        # phase Offers are taken out first, so that a key share accepted here decides only the
        # accusations that waited for it (R-KS-13 verdict 4), not these.
        early_accusations = self.early["accuse"]
        self.early["accuse"] = {}
        for i in range(self.n):
            for m in self.early["key_share"].pop(self.nicks[i], []):
                if self.phase != "key_shares":
                    break
                self.run_buffered(lambda: self.key_share(m, self.nicks[i], now, buffered=True),
                                  self.nicks[i])
        for i in range(self.n):
            for m in early_accusations.get(self.nicks[i], []):
                if self.phase not in ("key_shares", "attests"):
                    break
                self.run_buffered(lambda: self.accuse(m, self.nicks[i], now, buffered=True),
                                  self.nicks[i])
        self.maybe_attest(now)

    def run_buffered(self, fn, nick: bytes):
        """R-GEN-2: an error of buffered input is a Rejected event (code, nick = the claimed
        sender, detail), not an error of the call."""
        try:
            fn()
        except MpotrError as e:
            self.out.emit("rejected", code=e.code.snake, nick=nick.decode("utf-8", "replace"),
                          detail=e.detail)

    # --- early messages (phase offers) -------------------------------------------------------

    def buffer_early(self, kind: str, m: Message, from_nick: bytes):
        i = self.index_of(from_nick)
        if i is None:
            raise err(E.UnknownSession, "sender outside the roster being set up")
        if i in self.offers:
            S = self.offers[i]["signing_key"]
            if not verify_digest(S, ks.signed_digest(m["session_id"], m.signed_part), m["signature"]):
                raise err(E.UnknownSession, "signature does not verify under the held offer's key")
        lst = self.early[kind].setdefault(from_nick, [])
        if any(c.signed_part == m.signed_part for c in lst):
            raise err(E.Duplicate, "same candidate buffered")
        if len(lst) >= MAX_EARLY:
            raise err(E.LimitExceeded, "4 candidates already buffered")
        lst.append(m)

    # --- key shares (R-KS-2 … R-KS-11) ---------------------------------------------------------

    def sender_checks(self, m: Message, from_nick: bytes):
        if m["sender"] >= self.n:
            raise err(E.NotAMember, "sender index outside the roster")
        if self.nicks[m["sender"]] != from_nick:
            raise err(E.NickMismatch, "sender index names another member")

    def key_share(self, m: Message, from_nick: bytes, now: int, buffered=False):
        if self.phase == "offers":
            return self.buffer_early("key_share", m, from_nick)
        if buffered and m["session_id"] != self.sid:
            raise err(E.UnknownSession, "stale key share (another session id)")
        self.sender_checks(m, from_nick)
        i = m["sender"]
        if i == self.me:                                                      # R-KS-4
            if self.my_key_share and m.signed_part == self.my_key_share.signed_part:
                return
            raise err(E.NickMismatch, "a key share in our name that we did not send")
        refused = codec.memberset_indices(m["refused"])
        if len(m["shares"]) != self.n - 1 or any(r >= self.n or r == i for r in refused):  # R-KS-5
            raise err(E.DecodeBadValue, "count or refused set does not fit the roster")
        if not self.verify(i, m):                                             # R-KS-6
            raise err(E.BadSignature, "key share signature")
        if i in self.key_shares:                                              # R-KS-7
            if self.key_shares[i].signed_part == m.signed_part:
                raise err(E.Duplicate, "key share already held")
            raise err(E.Equivocation, "a second, different key share")
        if self.phase != "key_shares":                                        # R-KS-8
            raise err(E.UnexpectedMessage, f"attempt in phase {self.phase}")
        if not point_valid(m["elgamal_r"]):                                   # R-KS-9
            raise err(E.DecodeBadValue, "elgamal_r not on P-256")
        ok, code = self.check_share_for(m, self.me, self.e)                   # R-KS-10
        if not ok:
            self.accuse_and_fail(m, code, now)
            return
        self.key_shares[i] = m                                                # R-KS-11
        self.xs[i] = ok
        # R-KS-13 verdict 4: accusations by i that waited for i's key share are decided now
        for acc in self.early["accuse"].pop(from_nick, []):
            if self.phase not in ("key_shares", "attests"):
                break
            self.run_buffered(lambda: self.accuse(acc, from_nick, now, buffered=True), from_nick)
        if not buffered and self.phase == "key_shares":
            self.maybe_attest(now)

    def check_share_for(self, m: Message, j: int, e_j: PrivateKey):
        """The MAC and contribution i sent j (§5.4, §5.5), computed with e_j. Returns
        (x_i, None) if both check out, else (None, 'bad_mac' | 'group_key_mismatch')."""
        i, sid = m["sender"], self.sid
        off_i = self.offers[i]
        E_j = self.offers[j]["dh_key"]
        share = m["shares"][j if j < i else j - 1]
        k = ks.dake_key_receiver(sid, i, j, e_j, off_i["identity_key"], off_i["dh_key"])
        mac = ks.dake_mac(k, sid, i, j, off_i["signing_key"], off_i["dh_key"], m["elgamal_r"])
        if not ct_equal(mac, share["mac"]):
            return None, "bad_mac"
        pad = ks.elgamal_pad(sid, i, j, e_j.dh(m["elgamal_r"]), m["elgamal_r"], E_j)
        x = ks.xor(share["secret_ct"], pad)
        if ks.commit(sid, i, x) != m["commit"]:
            return None, "group_key_mismatch"
        return x, None

    def accuse_and_fail(self, m: Message, code: str, now: int):
        i = m["sender"]
        fields = {"session_id": self.sid, "sender": self.me, "accused": i,
                  "dh_private": self.e.to_bytes(), "key_share": m.encoding}
        body, _ = codec.encode_body("accuse", fields)
        self.eng.broadcast(self.sign(body))
        self.out.emit("member_excluded", nick=self.nick_str(i), code=code,
                      by=self.nick_str(self.me), detail="its key share failed our checks")
        self.eng.attempt_verdict(self, out_nicks=[self.nicks[i]], now=now)

    def maybe_attest(self, now):
        if self.phase != "key_shares" or len(self.key_shares) < self.n:
            return
        refusers = {i: codec.memberset_indices(self.key_shares[i]["refused"]) for i in range(self.n)}
        refusers = {i: r for i, r in refusers.items() if r}
        if refusers:                                                          # R-ADM-2
            for i, r in sorted(refusers.items()):
                self.out.emit("member_out", nick=self.nick_str(i), nicks=[self.nick_str(x) for x in r])
            self.eng.attempt_verdict(self, out_nicks=[self.nicks[i] for i in refusers], now=now,
                                     refusals={self.nicks[i]: [self.nicks[x] for x in r]
                                               for i, r in refusers.items()})
            return
        self.G = ks.group_secret(self.sid, [self.xs[i] for i in range(self.n)])
        self.T = ks.setup_transcript_hash([self.offers[i].encoding for i in range(self.n)],
                                          [self.key_shares[i].signed_part for i in range(self.n)])
        self.kc = ks.key_confirm(self.G, self.T)
        self.k_auth = ks.auth_key(self.G)
        body, _ = codec.encode_body("attest", {"session_id": self.sid, "sender": self.me,
                                               "transcript_hash": self.T, "key_confirm": self.kc})
        payload = self.sign(body)
        self.my_attest = codec.decode(payload)
        self.attests[self.me] = self.my_attest
        self.phase = "attests"
        self.eng.broadcast(payload)
        for i in range(self.n):
            for m in self.early["attest"].pop(self.nicks[i], []):
                if self.phase != "attests":
                    break
                self.run_buffered(lambda: self.attest(m, self.nicks[i], now, buffered=True),
                                  self.nicks[i])
        self.maybe_establish(now)

    # --- attests (R-AT-1 … R-AT-8) -------------------------------------------------------------

    def attest(self, m: Message, from_nick: bytes, now: int, buffered=False):
        if self.phase == "offers":
            return self.buffer_early("attest", m, from_nick)
        if buffered and m["session_id"] != self.sid:
            raise err(E.UnknownSession, "stale attest (another session id)")
        self.sender_checks(m, from_nick)                                      # R-AT-1
        i = m["sender"]
        if i == self.me:
            if self.my_attest and m.signed_part == self.my_attest.signed_part:
                return
            raise err(E.NickMismatch, "an attest in our name that we did not send")
        if not self.verify(i, m):                                             # R-AT-3
            raise err(E.BadSignature, "attest signature")
        if self.phase == "key_shares":                                        # R-AT-2
            lst = self.early["attest"].setdefault(from_nick, [])
            if any(c.signed_part == m.signed_part for c in lst):
                raise err(E.Duplicate, "same attest buffered")
            if len(lst) >= MAX_EARLY:
                raise err(E.LimitExceeded, "4 attests already buffered")
            lst.append(m)
            return
        if i in self.attests:                                                 # R-AT-4
            if self.attests[i].signed_part == m.signed_part:
                raise err(E.Duplicate, "attest already held")
            raise err(E.Equivocation, "a second, different attest")
        if self.phase != "attests":                                           # R-AT-5
            raise err(E.UnexpectedMessage, f"attempt in phase {self.phase}")
        if m["transcript_hash"] != self.T:                                    # R-AT-6
            self.out.emit("setup_failed", code="transcript_mismatch", nick=self.nick_str(i),
                          detail="its attest hashes other offers or key shares")
            self.eng.attempt_failed(self, now)
            return
        if not ct_equal(m["key_confirm"], self.kc):                           # R-AT-7
            self.out.emit("member_excluded", nick=self.nick_str(i), code="group_key_mismatch",
                          detail="its attest confirms another group key")
            self.eng.attempt_verdict(self, out_nicks=[self.nicks[i]], now=now)
            return
        self.attests[i] = m
        if not buffered:
            self.maybe_establish(now)

    def maybe_establish(self, now):
        if self.phase == "attests" and len(self.attests) == self.n:          # R-AT-8
            self.eng.establish(self, now)

    # --- accusations (R-KS-13) -----------------------------------------------------------------

    def accuse(self, m: Message, from_nick: bytes, now: int, buffered=False):
        if self.phase == "offers":
            return self.buffer_early("accuse", m, from_nick)
        if buffered and m["session_id"] != self.sid:
            raise err(E.UnknownSession, "stale accusation (another session id)")
        self.sender_checks(m, from_nick)
        j, i = m["sender"], m["accused"]
        if j == self.me:
            raise err(E.NickMismatch, "an accusation in our name that we did not make")
        if i >= self.n:
            raise err(E.DecodeBadValue, "accused index outside the roster")
        if not self.verify(j, m):
            raise err(E.BadSignature, "accusation signature")
        if self.phase not in ("key_shares", "attests"):
            raise err(E.UnexpectedMessage, f"attempt in phase {self.phase}")
        try:
            inner = codec.decode(m["key_share"])
        except MpotrError as e:
            raise err(E.DecodeBadValue, f"embedded key share: {e.detail}") from None
        if (inner.type != "key_share" or inner["session_id"] != self.sid or inner["sender"] != i
                or len(inner["shares"]) != self.n - 1):
            raise err(E.DecodeBadValue, "embedded key share does not fit this attempt")
        if not self.verify(i, inner):
            raise err(E.BadSignature, "embedded key share signature")
        held = self.key_shares.get(i)
        if i == self.me:
            held = self.my_key_share
        if held is not None and held.signed_part != inner.signed_part:       # verdict 1
            if i == self.me:
                raise err(E.NickMismatch, "an embedded key share in our name that we did not send")
            return self.verdict(i, "equivocation", j, now)
        if held is None:                                                      # verdict 2
            x, code = self.check_share_for(inner, self.me, self.e)
            if code:
                return self.verdict(i, code, j, now)
        # verdict 3: with the revealed scalar e_j
        d = int.from_bytes(m["dh_private"], "big")
        e_j = None
        if 1 <= d < Q:
            e_j = PrivateKey(d)
            if e_j.public != self.offers[j]["dh_key"]:
                e_j = None
        if e_j is not None:
            x, code = self.check_share_for(inner, j, e_j)
            if code:
                return self.verdict(i, code, j, now)
        # verdict 4: a false accusation, once j's own key share authenticated j
        if j not in self.key_shares:
            lst = self.early["accuse"].setdefault(from_nick, [])
            if any(c.signed_part == m.signed_part for c in lst):
                raise err(E.Duplicate, "same accusation buffered")
            if len(lst) >= MAX_EARLY:
                raise err(E.LimitExceeded, "4 accusations already buffered")
            lst.append(m)
            return
        return self.verdict(j, "false_accusation", j, now)

    def verdict(self, out: int, code: str, by: int, now):
        self.out.emit("member_excluded", nick=self.nick_str(out), code=code, by=self.nick_str(by),
                      detail="proven by an accusation")
        self.eng.attempt_verdict(self, out_nicks=[self.nicks[out]], now=now)

    # --- giving up (R-AT-10) ---------------------------------------------------------------------

    def quit_if_attesting(self):
        """An attempt given up in phase Attests broadcasts a Quit for its session."""
        if self.phase != "attests":
            return
        body, mac_len = codec.encode_body("quit", {"session_tag": self.sid[:8], "sender": self.me,
                                                   "final_count": 0})
        body += ks.message_mac(self.k_auth, body)
        self.eng.broadcast(self.sign(body))

    def missing(self):
        """Members whose message of the current round is missing (for SetupTimeout)."""
        have = {"offers": self.offers, "key_shares": self.key_shares, "attests": self.attests}.get(
            self.phase, {})
        return [self.nick_str(i) for i in range(self.n) if i not in have]
