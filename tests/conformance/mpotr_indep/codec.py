"""Wire encodings of spec/mpotr.md §4: every message type, strict decoding (§4.9, §4.10).

A decoded message is a `Message`: its `type` name, a dict of `fields` named as in the spec
(§4.2–§4.7), and `signed_len` / `mac_len` as §4.11 defines them (signed_len = whole payload for
the unsigned Offer and KeyReveal, mac_len = 0 without a MAC).
"""
from __future__ import annotations

from dataclasses import dataclass

from .crypto import u8, u16, u32
from .errors import ErrorCode, MpotrError

VERSION = 2
MAX_WIRE = 65536
MAX_NICK = 64
MAX_MEMBERS = 128
MAX_TEXT = 16384
MAX_MESSAGES = 1 << 20

TYPES = {
    0x01: "offer", 0x02: "key_share", 0x03: "attest", 0x04: "accuse",
    0x10: "data", 0x11: "heartbeat",
    0x20: "shutdown", 0x21: "digest", 0x22: "key_reveal", 0x23: "end", 0x24: "quit",
}
TYPE_CODES = {v: k for k, v in TYPES.items()}
SIGNED = {"key_share", "attest", "accuse", "data", "heartbeat", "shutdown", "digest", "end", "quit"}
MACED = {"data", "heartbeat", "shutdown", "digest", "end", "quit"}


@dataclass
class Message:
    type: str
    fields: dict
    encoding: bytes = b""
    signed_len: int = 0
    mac_len: int = 0

    @property
    def signed_part(self) -> bytes:
        return self.encoding[:self.signed_len]

    @property
    def mac_part(self) -> bytes:
        return self.encoding[:self.mac_len]

    def __getitem__(self, k):
        return self.fields[k]


def _err(code, detail):
    return MpotrError(code, detail)


# --- varint (§4.10) ---------------------------------------------------------------------------

def encode_varint(v: int) -> bytes:
    if not 0 <= v < (1 << 32):
        raise ValueError("varint out of range")
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


class Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise _err(ErrorCode.DecodeTruncated, f"{what} runs past the end")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def u8(self, what):
        return self.take(1, what)[0]

    def u16(self, what):
        return int.from_bytes(self.take(2, what), "big")

    def u32(self, what):
        return int.from_bytes(self.take(4, what), "big")

    def point(self, what):
        p = self.take(65, what)
        if p[0] != 0x04:
            raise _err(ErrorCode.DecodeBadValue, f"{what}: not an uncompressed point")
        return p

    def varint(self, what):
        value, shift, n = 0, 0, 0
        while True:
            b = self.u8(what)
            n += 1
            if n > 1 and b == 0:
                # last byte 0x00 after at least one other byte: non-minimal
                raise _err(ErrorCode.DecodeBadValue, f"{what}: non-minimal varint")
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
            if n == 5:
                raise _err(ErrorCode.DecodeBadValue, f"{what}: varint longer than 5 bytes")
        if value >= (1 << 32):
            raise _err(ErrorCode.DecodeBadValue, f"{what}: varint of 2^32 or more")
        return value

    def count(self, what):
        c = self.u8(what)
        if c == 0:
            raise _err(ErrorCode.DecodeBadValue, f"{what} is 0")
        if c >= MAX_MEMBERS:
            raise _err(ErrorCode.DecodeOversize, f"{what} is {c} (at most 127)")
        return c

    def bounded(self, v, what):
        if v > MAX_MESSAGES:
            raise _err(ErrorCode.DecodeBadValue, f"{what} above 2^20")
        return v


def decode(payload: bytes) -> Message:
    if len(payload) > MAX_WIRE:
        raise _err(ErrorCode.DecodeOversize, "payload longer than 65536 bytes")
    r = Reader(payload)
    version = r.u8("version")
    if version != VERSION:
        raise _err(ErrorCode.DecodeBadVersion, f"version {version}")
    tcode = r.u8("type")
    if tcode not in TYPES:
        raise _err(ErrorCode.DecodeUnknownType, f"type 0x{tcode:02x}")
    t = TYPES[tcode]
    f: dict = {}
    mac_len = 0
    if t == "offer":
        f["roster_digest"] = r.take(32, "roster_digest")
        f["attempt"] = r.u32("attempt")
        nl = r.u8("nick length")
        if nl == 0:
            raise _err(ErrorCode.DecodeBadValue, "empty nick")
        if nl > MAX_NICK:
            raise _err(ErrorCode.DecodeOversize, "nick longer than 64 bytes")
        f["nick"] = r.take(nl, "nick")
        f["nonce"] = r.take(32, "nonce")
        f["identity_key"] = r.point("identity_key")
        f["dh_key"] = r.point("dh_key")
        f["signing_key"] = r.point("signing_key")
    elif t == "key_share":
        f["session_id"] = r.take(32, "session_id")
        f["sender"] = r.u8("sender")
        f["elgamal_r"] = r.point("elgamal_r")
        f["commit"] = r.take(32, "commit")
        f["refused"] = r.take(16, "refused")
        c = r.count("count")
        f["shares"] = [{"mac": r.take(32, "share mac"), "secret_ct": r.take(32, "secret_ct")}
                       for _ in range(c)]
    elif t == "attest":
        f["session_id"] = r.take(32, "session_id")
        f["sender"] = r.u8("sender")
        f["transcript_hash"] = r.take(32, "transcript_hash")
        f["key_confirm"] = r.take(32, "key_confirm")
    elif t == "accuse":
        f["session_id"] = r.take(32, "session_id")
        f["sender"] = r.u8("sender")
        f["accused"] = r.u8("accused")
        if f["accused"] == f["sender"]:
            raise _err(ErrorCode.DecodeBadValue, "accused equals sender")
        f["dh_private"] = r.take(32, "dh_private")
        kl = r.u16("key_share length")
        if kl == 0:
            raise _err(ErrorCode.DecodeBadValue, "empty key_share")
        f["key_share"] = r.take(kl, "key_share")
    elif t in ("data", "heartbeat"):
        f["session_tag"] = r.take(8, "session_tag")
        f["sender"] = r.u8("sender")
        seq = r.u32("seq")
        if seq == 0:
            raise _err(ErrorCode.DecodeBadValue, "seq 0")
        f["seq"] = r.bounded(seq, "seq")
        c = r.count("ack_count")
        f["acks"] = [r.bounded(r.varint("ack"), "ack") for _ in range(c)]
        f["view_digest"] = r.take(32, "view_digest")
        cl = r.u16("ciphertext length")
        if cl > MAX_TEXT:
            raise _err(ErrorCode.DecodeOversize, "ciphertext longer than 16384 bytes")
        # §4.9, R-DEC-9: the content is checked once its bytes are read, so a Heartbeat
        # announcing a ciphertext that runs past the end is DecodeTruncated (a length of 0
        # announces no bytes: an empty Data ciphertext is decided right after the length)
        f["ciphertext"] = r.take(cl, "ciphertext")
        if t == "heartbeat" and cl != 0:
            raise _err(ErrorCode.DecodeBadValue, "heartbeat with a ciphertext")
        if t == "data" and cl == 0:
            raise _err(ErrorCode.DecodeBadValue, "data with an empty ciphertext")
        mac_len = r.pos
        f["mac"] = r.take(32, "mac")
    elif t in ("shutdown", "quit"):
        f["session_tag"] = r.take(8, "session_tag")
        f["sender"] = r.u8("sender")
        f["final_count"] = r.bounded(r.u32("final_count"), "final_count")
        mac_len = r.pos
        f["mac"] = r.take(32, "mac")
    elif t == "digest":
        f["session_tag"] = r.take(8, "session_tag")
        f["sender"] = r.u8("sender")
        f["transcript_digest"] = r.take(32, "transcript_digest")
        mac_len = r.pos
        f["mac"] = r.take(32, "mac")
    elif t == "end":
        f["session_tag"] = r.take(8, "session_tag")
        f["sender"] = r.u8("sender")
        f["present"] = r.take(16, "present")
        f["digests_hash"] = r.take(32, "digests_hash")
        mac_len = r.pos
        f["mac"] = r.take(32, "mac")
    elif t == "key_reveal":
        f["session_tag"] = r.take(8, "session_tag")
        f["sender"] = r.u8("sender")
        f["private_key"] = r.take(32, "private_key")
    signed_len = r.pos
    if t in SIGNED:
        f["signature"] = r.take(64, "signature")
    if r.pos != len(payload):
        raise _err(ErrorCode.DecodeTrailingBytes, f"{len(payload) - r.pos} bytes after the message")
    return Message(t, f, bytes(payload), signed_len, mac_len)


def encode_body(t: str, f: dict) -> tuple[bytes, int]:
    """Everything up to (not including) the MAC and the signature; returns (bytes, mac_len)."""
    out = bytearray([VERSION, TYPE_CODES[t]])
    if t == "offer":
        nick = f["nick"].encode() if isinstance(f["nick"], str) else f["nick"]
        out += f["roster_digest"] + u32(f["attempt"]) + u8(len(nick)) + nick + f["nonce"]
        out += f["identity_key"] + f["dh_key"] + f["signing_key"]
    elif t == "key_share":
        out += f["session_id"] + u8(f["sender"]) + f["elgamal_r"] + f["commit"] + f["refused"]
        out += u8(len(f["shares"]))
        for s in f["shares"]:
            out += s["mac"] + s["secret_ct"]
    elif t == "attest":
        out += f["session_id"] + u8(f["sender"]) + f["transcript_hash"] + f["key_confirm"]
    elif t == "accuse":
        out += f["session_id"] + u8(f["sender"]) + u8(f["accused"]) + f["dh_private"]
        out += u16(len(f["key_share"])) + f["key_share"]
    elif t in ("data", "heartbeat"):
        out += f["session_tag"] + u8(f["sender"]) + u32(f["seq"]) + u8(len(f["acks"]))
        for a in f["acks"]:
            out += encode_varint(a)
        out += f["view_digest"] + u16(len(f["ciphertext"])) + f["ciphertext"]
    elif t in ("shutdown", "quit"):
        out += f["session_tag"] + u8(f["sender"]) + u32(f["final_count"])
    elif t == "digest":
        out += f["session_tag"] + u8(f["sender"]) + f["transcript_digest"]
    elif t == "end":
        out += f["session_tag"] + u8(f["sender"]) + f["present"] + f["digests_hash"]
    elif t == "key_reveal":
        out += f["session_tag"] + u8(f["sender"]) + f["private_key"]
    return bytes(out), (len(out) if t in MACED else 0)


def encode(t: str, f: dict) -> bytes:
    """Encode a complete message from its fields (mac and signature included where present)."""
    body, _ = encode_body(t, f)
    if t in MACED:
        body += f["mac"]
    if t in SIGNED:
        body += f["signature"]
    return body


# --- MemberSet (§4.1) -------------------------------------------------------------------------

def memberset(indices) -> bytes:
    b = bytearray(16)
    for i in indices:
        b[i // 8] |= 1 << (i % 8)
    return bytes(b)


def memberset_indices(ms: bytes) -> list[int]:
    return [i for i in range(128) if ms[i // 8] >> (i % 8) & 1]
