"""An mpOTR v2 member over XMPP MUC (spec §13), built on mpotr_indep.engine and slixmpp.

Roster from presence (§13.2, X-8, X-13), payloads as <mpotr xmlns='urn:mpotr:2'>BASE64</mpotr>
groupchat messages (§13.3, X-1..X-4), delayed (history) messages ignored (§13.1), timers driven
from the engine's wake_at. Everything the engine reports is kept in `events`, every rejected
payload in `rejections`.
"""
from __future__ import annotations

import asyncio
import base64
import logging
import time
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from mpotr_indep.crypto import PrivateKey, SystemRng
from mpotr_indep.engine import Engine
from mpotr_indep.errors import ErrorCode, MpotrError

NS = "urn:mpotr:2"
MUC = "http://jabber.org/protocol/muc"
MUC_USER = "http://jabber.org/protocol/muc#user"
DELAY = "urn:xmpp:delay"
MAX_B64 = 4 * ((65536 + 2) // 3)
FALLBACK = ("[This message is encrypted with mpOTR (multi-party Off-the-Record). Your client does "
            "not support it, so you cannot read it, and the other members' session does not "
            "include you.]")

log = logging.getLogger("xmpp_member")


def now_ms() -> int:
    return int(time.monotonic() * 1000)


def decode_payload_text(text: str) -> bytes:
    """X-1: canonical RFC 4648 base64 with padding, no whitespace."""
    if len(text) > MAX_B64:
        raise MpotrError(ErrorCode.DecodeOversize, "base64 text too long")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except Exception:
        raise MpotrError(ErrorCode.DecodeBadValue, "not base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise MpotrError(ErrorCode.DecodeBadValue, "not the canonical base64 encoding")
    return raw


class Member(slixmpp.ClientXMPP):
    def __init__(self, jid: str, password: str, room: str, nick: str, timeouts=None):
        super().__init__(jid, password)
        self.room = room.lower()                         # §13.2: ASCII letters lower-cased
        self.nick = nick
        self.identity = PrivateKey.generate(SystemRng())
        self.engine = Engine(self.room, nick, self.identity, SystemRng(), timeouts=timeouts)
        self.occupants: dict[str, tuple[str, str | None]] = {}   # nick -> (bare jid, marker)
        self.joined = False
        self.events: list = []                            # (ms, Event)
        self.rejections: list = []                        # (nick, code name, detail)
        self.sent: list = []                              # (ms, type byte, size)
        self.plaintext: list = []
        self.changed = asyncio.Event()
        self._wake = asyncio.Event()
        self._timer_task = None
        self._counter = 0
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("presence", self.on_presence)
        # slixmpp's own "message" event only fires for messages with a <body/>; setup and
        # shutdown payloads have none, so payloads get a handler of their own.
        self.register_handler(Callback("mpotr payload", MatchXPath(
            f"{{jabber:client}}message/{{{NS}}}mpotr"), self.on_message))
        self.add_event_handler("message", self.on_plain_message)

    # --- engine plumbing -----------------------------------------------------------------------

    def apply(self, out):
        for p in out.broadcasts:
            self.send_payload(p)
        for e in out.events:
            self.events.append((now_ms(), e))
            log.info("%s event %s", self.nick, e.as_dict())
        self._wake.set()
        self.changed.set()

    def call(self, fn, *args):
        try:
            self.apply(fn(*args, now_ms()))
        except MpotrError as e:
            log.info("%s: %s rejected: %s", self.nick, fn.__name__, e)
            raise

    async def timer_loop(self):
        while True:
            wake = self.engine.wake_at()
            self._wake.clear()
            delay = None if wake is None else max(0.0, (wake - now_ms()) / 1000.0)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
                continue
            except asyncio.TimeoutError:
                pass
            self.apply(self.engine.tick(now_ms()))

    # --- XMPP ----------------------------------------------------------------------------------

    async def on_start(self, _):
        self._timer_task = asyncio.ensure_future(self.timer_loop())
        self.send_join()

    def presence_marker(self):
        el = ET.Element(f"{{{NS}}}mpotr")
        if self.engine.phase == "out":
            el.set("status", "out")
        return el

    def send_join(self):
        pres = self.make_presence(pto=f"{self.room}/{self.nick}")
        x = ET.SubElement(ET.Element("dummy"), f"{{{MUC}}}x")
        ET.SubElement(x, f"{{{MUC}}}history", {"maxstanzas": "0"})   # §13.1
        pres.xml.append(x)
        pres.xml.append(self.presence_marker())
        pres.send()

    def send_leave(self):
        pres = self.make_presence(pto=f"{self.room}/{self.nick}", ptype="unavailable")
        pres.send()

    def send_payload(self, payload: bytes):
        msg = self.make_message(mto=self.room, mtype="groupchat")
        self._counter += 1
        msg["id"] = f"conf-{self._counter}"                # X-4a
        el = ET.Element(f"{{{NS}}}mpotr")
        el.text = base64.b64encode(payload).decode("ascii")
        msg.xml.append(el)
        msg.xml.append(ET.Element("{urn:xmpp:eme:0}encryption", {"namespace": NS, "name": "mpOTR"}))
        for hint in ("no-store", "no-permanent-store", "no-copy"):
            msg.xml.append(ET.Element(f"{{urn:xmpp:hints}}{hint}"))
        if payload[1] == 0x10:                              # only Data carries a body
            msg["body"] = FALLBACK
        self.sent.append((now_ms(), payload[1], len(payload)))
        log.debug("%s: sending %s", self.nick, msg)
        msg.send()

    def on_presence(self, pres):
        frm = pres["from"]
        if frm.bare.lower() != self.room or not frm.resource:
            return
        nick = frm.resource
        log.debug("%s: presence %s", self.nick, pres)
        x = pres.xml.find(f"{{{MUC_USER}}}x")
        codes = set()
        item = None
        if x is not None:
            codes = {int(s.get("code", "0")) for s in x.findall(f"{{{MUC_USER}}}status")}
            item = x.find(f"{{{MUC_USER}}}item")
        if pres["type"] == "error":
            log.warning("%s: presence error %s", self.nick, pres)
            return
        if pres["type"] == "unavailable":
            self.occupants.pop(nick, None)
            if nick == self.nick and 303 not in codes:
                self.joined = False
                return
        else:
            jid = item.get("jid", "") if item is not None else ""
            bare = jid.split("/")[0]
            mk = pres.xml.find(f"{{{NS}}}mpotr")
            marker = None if mk is None else ("out" if mk.get("status") == "out" else "in")
            if nick == self.nick or 110 in codes:
                self.joined = True
                if 100 not in codes and 172 not in codes and nick == self.nick and not bare:
                    log.warning("%s: the room may not be non-anonymous", self.nick)
            else:
                self.occupants[nick] = (bare, marker)
        if self.joined:
            self.apply_roster()

    def mpotr_roster(self):
        r = [(self.nick, f"{self.boundjid.bare}")]
        r += [(n, j) for n, (j, mk) in self.occupants.items() if mk == "in"]
        return r

    def apply_roster(self):
        if self.engine.phase in ("leaving", "left"):
            return
        try:
            self.call(self.engine.set_roster, self.mpotr_roster())
        except MpotrError:
            pass

    def on_message(self, msg):
        log.debug("%s: message %s", self.nick, msg)
        if msg["type"] != "groupchat":
            return
        frm = msg["from"]
        if frm.bare.lower() != self.room or not frm.resource:
            return
        if msg.xml.find(f"{{{DELAY}}}delay") is not None:   # §13.1: no history
            return
        el = msg.xml.find(f"{{{NS}}}mpotr")
        try:
            payload = decode_payload_text(el.text or "")
            self.apply(self.engine.receive(frm.resource, payload, now_ms()))
        except MpotrError as e:
            self.rejections.append((frm.resource, e.code.name, e.detail))
            log.info("%s: rejected from %s: %s", self.nick, frm.resource, e)

    def on_plain_message(self, msg):
        """X-5: a groupchat <body/> without a payload is unencrypted text, kept apart."""
        if msg["type"] != "groupchat" or msg.xml.find(f"{{{NS}}}mpotr") is not None:
            return
        if msg.xml.find(f"{{{DELAY}}}delay") is not None:
            return
        self.plaintext.append((msg["from"].resource, msg["body"]))

    # --- commands ------------------------------------------------------------------------------

    def send_text(self, text: str):
        self.call(self.engine.send_text, text)

    def leave(self):
        self.call(self.engine.leave)

    # --- queries -------------------------------------------------------------------------------

    def kinds(self, kind, **match):
        out = []
        for t, e in self.events:
            if e.kind != kind:
                continue
            d = e.as_dict()
            if all(d.get(k) == v for k, v in match.items()):
                out.append(d)
        return out
