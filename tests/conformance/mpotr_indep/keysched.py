"""Key schedule of spec/mpotr.md §5. Every function takes bytes/ints and returns bytes."""
from __future__ import annotations

from .crypto import H, hkdf, hkdf_expand, hkdf_extract, hmac, u8, u32, vec8

LOST_LABEL = b"mpotr-v2 lost"


def roster_digest(room: bytes, nicks: list[bytes]) -> bytes:                       # §5.1
    return H(b"mpotr-v2 roster", vec8(room), u8(len(nicks)), *[vec8(n) for n in nicks])


def session_id(room: bytes, attempt: int, offers: list[dict]) -> bytes:            # §5.2
    parts = [b"mpotr-v2 session id", vec8(room), u32(attempt), u8(len(offers))]
    for o in offers:
        parts += [vec8(o["nick"]), o["nonce"], o["identity_key"], o["dh_key"], o["signing_key"]]
    return H(*parts)


def dake_info(i: int, j: int) -> bytes:
    return b"mpotr-v2 pairwise" + u8(i) + u8(j)


def dake_key_from_dh(sid: bytes, i: int, j: int, dh_a_e: bytes, dh_e_e: bytes) -> bytes:  # §5.3
    return hkdf(sid, dh_a_e + dh_e_e, dake_info(i, j), 32)


def dake_key_sender(sid, i, j, a_i, e_i, E_j) -> bytes:
    """K_{i→j} as i computes it: DH(a_i, E_j) ‖ DH(e_i, E_j). a_i, e_i are PrivateKeys."""
    return dake_key_from_dh(sid, i, j, a_i.dh(E_j), e_i.dh(E_j))


def dake_key_receiver(sid, i, j, e_j, A_i, E_i) -> bytes:
    """K_{i→j} as j (or anyone shown e_j) computes it: DH(e_j, A_i) ‖ DH(e_j, E_i)."""
    return dake_key_from_dh(sid, i, j, e_j.dh(A_i), e_j.dh(E_i))


def dake_mac(key, sid, i, j, S_i, E_i, R_i) -> bytes:                              # §5.4
    return hmac(key, b"mpotr-v2 dake", sid, u8(i), u8(j), S_i, E_i, R_i)


def commit(sid: bytes, i: int, x: bytes) -> bytes:                                 # §5.5
    return H(b"mpotr-v2 commit", sid, u8(i), x)


def elgamal_info(i, j, R_i, E_j) -> bytes:
    return b"mpotr-v2 elgamal" + u8(i) + u8(j) + R_i + E_j


def elgamal_pad(sid, i, j, shared, R_i, E_j) -> bytes:
    """pad_{i→j} = HKDF(sid, DH(r_i, E_j), "mpotr-v2 elgamal" ‖ u8 i ‖ u8 j ‖ R_i ‖ E_j, 32)."""
    return hkdf(sid, shared, elgamal_info(i, j, R_i, E_j), 32)


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b))


def group_secret(sid: bytes, secrets: list[bytes]) -> bytes:                       # §5.6
    return H(b"mpotr-v2 group secret", sid, *secrets)


def setup_transcript_hash(offers: list[bytes], ks_signed: list[bytes]) -> bytes:   # §5.7
    parts = [b"mpotr-v2 setup transcript"]
    for o in offers:
        parts += [u32(len(o)), o]
    for k in ks_signed:
        parts += [u32(len(k)), k]
    return H(*parts)


def key_confirm(G: bytes, T: bytes) -> bytes:                                      # §5.8
    ck = hkdf_expand(G, b"mpotr-v2 confirm", 32)
    return hmac(ck, b"mpotr-v2 key confirm", T)


def sender_key(G: bytes, i: int) -> tuple[bytes, bytes]:                           # §5.9
    okm = hkdf_expand(G, b"mpotr-v2 sender" + u8(i), 24)
    return okm[:16], okm[16:24]


def message_iv(prefix: bytes, seq: int) -> bytes:
    return prefix + u32(seq) + u32(0)


def signed_digest(sid: bytes, signed_part: bytes) -> bytes:                        # §5.10
    return H(b"mpotr-v2 signed", sid, signed_part)


def chain_start(sid: bytes, m: int) -> bytes:                                      # §5.11
    return H(b"mpotr-v2 chain", sid, u8(m))


def chain_step(c: bytes, message_id: bytes) -> bytes:
    return H(c, message_id)


def chain_lost_input(prev: bytes, first: int, last: int) -> bytes:                 # §5.13
    return prev + LOST_LABEL + u32(first) + u32(last)


def chain_lost(prev: bytes, first: int, last: int) -> bytes:
    return H(chain_lost_input(prev, first, last))


def view_digest(counts: list[int], chains: list[bytes]) -> bytes:                  # §5.12
    parts = [b"mpotr-v2 view"]
    for c, ch in zip(counts, chains):
        parts += [u32(c), ch]
    return H(*parts)


def closing_chain(start: bytes, final: int, held: dict[int, bytes]) -> bytes:
    """§5.13: entries 1..final; held maps seq -> message id; each maximal missing run steps once.
    Runs are found from the held set, so the work is O(len(held)), not O(final)."""
    t = start
    expect = 1
    for s in sorted(k for k in held if 1 <= k <= final):
        if s > expect:
            t = chain_lost(t, expect, s - 1)
        t = chain_step(t, held[s])
        expect = s + 1
    if expect <= final:
        t = chain_lost(t, expect, final)
    return t


def transcript_digest(finals: list[int], chains: list[bytes]) -> bytes:
    parts = [b"mpotr-v2 transcript"]
    for f, t in zip(finals, chains):
        parts += [u32(f), t]
    return H(*parts)


def end_digest_input(digests: list[bytes | None]) -> bytes:                        # §5.14
    out = b"mpotr-v2 end"
    for d in digests:
        out += (b"\x01" + d) if d is not None else (b"\x00" + b"\x00" * 32)
    return out


def end_digest(digests: list[bytes | None]) -> bytes:
    return H(end_digest_input(digests))


def auth_key(G: bytes) -> bytes:                                                   # §5.16
    return hkdf_expand(G, b"mpotr-v2 auth", 32)


def message_mac(k_auth: bytes, mac_part: bytes) -> bytes:
    return hmac(k_auth, mac_part)


def fingerprint(A: bytes) -> bytes:                                                # §7.10
    return H(A)


__all__ = [n for n in dir() if not n.startswith("_")] + ["hkdf_extract"]
