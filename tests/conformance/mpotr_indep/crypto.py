"""Primitives of spec/mpotr.md §1.4 and §3: SHA-256, HMAC, HKDF, AES-128-CTR, P-256 ECDH and
ECDSA (production and the vector-mode nonce of §3.5), and the vector RNG of §12.

Only the standard library and python3-cryptography (38.0.4 API) are used. k·G for the
vector-mode nonce is computed by cryptography's derive_private_key(k): no hand-written curve
arithmetic is needed.
"""
from __future__ import annotations

import hashlib
import hmac as _hmac
import os
import struct

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed, decode_dss_signature, encode_dss_signature)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .errors import ErrorCode, MpotrError

# P-256 group order (called q in the spec, §1.4).
Q = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
CURVE = ec.SECP256R1()
MAX_SCALAR_TRIES = 64
MAX_NONCE_TRIES = 64


def u8(x: int) -> bytes:
    return struct.pack(">B", x)


def u16(x: int) -> bytes:
    return struct.pack(">H", x)


def u32(x: int) -> bytes:
    return struct.pack(">I", x)


def vec8(s: bytes) -> bytes:
    if len(s) > 255:
        raise ValueError("vec8 longer than 255 bytes")
    return u8(len(s)) + s


def H(*parts: bytes) -> bytes:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


def hmac(key: bytes, *parts: bytes) -> bytes:
    m = _hmac.new(key, digestmod=hashlib.sha256)
    for p in parts:
        m.update(p)
    return m.digest()


def ct_equal(a: bytes, b: bytes) -> bool:
    return _hmac.compare_digest(a, b)


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    # RFC 5869: an empty salt is HashLen zero bytes (HMAC pads the key with zeros anyway).
    return hmac(salt if salt else b"\x00" * 32, ikm)


def hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    if length > 255 * 32:
        raise ValueError("HKDF output too long")
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac(prk, t, info, bytes([i]))
        out += t
        i += 1
    return out[:length]


def hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return hkdf_expand(hkdf_extract(salt, ikm), info, length)


def aes128_ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-128-CTR, the whole 16-byte counter block incremented as a big-endian integer (§3)."""
    if len(key) != 16 or len(iv) != 16:
        raise ValueError("AES-128-CTR needs a 16-byte key and a 16-byte counter block")
    enc = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return enc.update(data) + enc.finalize()


# --- the vector RNG (§12) and a system RNG ---------------------------------------------------

class DeterministicRng:
    """libsodium's randombytes_buf_deterministic, one call key per request (§12)."""

    reproducible = True
    _NONCE = b"LibsodiumDRG"

    def __init__(self, seed):
        if isinstance(seed, int):
            seed = seed.to_bytes(8, "big")
        self._key = H(b"mpotr-v1 test rng", seed)
        self._calls = 0

    def bytes(self, n: int) -> bytes:
        c = self._calls
        self._calls += 1
        call_key = H(self._key, u32(c >> 32), u32(c & 0xFFFFFFFF))
        # cryptography's ChaCha20 takes a 16-byte nonce: 32-bit little-endian block counter
        # followed by the 96-bit IETF nonce (RFC 8439).
        enc = Cipher(algorithms.ChaCha20(call_key, b"\x00\x00\x00\x00" + self._NONCE),
                     mode=None).encryptor()
        return enc.update(b"\x00" * n)


class SystemRng:
    reproducible = False

    def bytes(self, n: int) -> bytes:
        return os.urandom(n)


# --- P-256 ------------------------------------------------------------------------------------

def scalar_from_bytes(b: bytes) -> int:
    """A private scalar: exactly 32 bytes big-endian, in [1, q-1]; else DecodeBadValue."""
    if len(b) != 32:
        raise MpotrError(ErrorCode.DecodeBadValue, "scalar is not 32 bytes")
    d = int.from_bytes(b, "big")
    if not 1 <= d < Q:
        raise MpotrError(ErrorCode.DecodeBadValue, "scalar not in [1, q-1]")
    return d


def point_from_bytes(b: bytes) -> ec.EllipticCurvePublicKey:
    """A public point: 65 bytes uncompressed, on the curve, not infinity; else DecodeBadValue."""
    if len(b) != 65 or b[0] != 4:
        raise MpotrError(ErrorCode.DecodeBadValue, "point is not 65 bytes uncompressed")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(CURVE, b)
    except ValueError as e:
        raise MpotrError(ErrorCode.DecodeBadValue, f"point not on P-256: {e}") from None


def point_valid(b: bytes) -> bool:
    try:
        point_from_bytes(b)
        return True
    except MpotrError:
        return False


class PrivateKey:
    def __init__(self, d: int):
        if not 1 <= d < Q:
            raise MpotrError(ErrorCode.DecodeBadValue, "scalar not in [1, q-1]")
        self.d = d
        self._key = ec.derive_private_key(d, CURVE)
        self.public = self._key.public_key().public_bytes(
            serialization_encoding(), serialization_format())

    def __deepcopy__(self, memo):
        return self            # immutable

    @classmethod
    def from_bytes(cls, b: bytes) -> "PrivateKey":
        return cls(scalar_from_bytes(b))

    @classmethod
    def generate(cls, rng) -> "PrivateKey":
        """32 bytes per try, the first value in [1, q-1] (§12), at most 64 tries."""
        for _ in range(MAX_SCALAR_TRIES):
            d = int.from_bytes(rng.bytes(32), "big")
            if 1 <= d < Q:
                return cls(d)
        raise MpotrError(ErrorCode.Crypto, "no scalar in 64 tries")

    def to_bytes(self) -> bytes:
        return self.d.to_bytes(32, "big")

    def dh(self, peer_public: bytes) -> bytes:
        """DH(p, Q): the 32-byte x-coordinate of p·Q."""
        return self._key.exchange(ec.ECDH(), point_from_bytes(peer_public))

    def sign_digest(self, digest: bytes, rng) -> bytes:
        """ECDSA over a 32-byte digest, r ‖ s. Vector mode (§3.5) when the RNG is reproducible."""
        if getattr(rng, "reproducible", False):
            return sign_vector_mode(self.d, digest, rng.bytes(32))[0]
        der = self._key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def serialization_encoding():
    from cryptography.hazmat.primitives.serialization import Encoding
    return Encoding.X962


def serialization_format():
    from cryptography.hazmat.primitives.serialization import PublicFormat
    return PublicFormat.UncompressedPoint


def public_from_scalar(d: int) -> bytes:
    return PrivateKey(d).public


def vector_nonce(d: int, rnd32: bytes, digest: bytes, ctr: int) -> bytes:
    return hmac(d.to_bytes(32, "big"), rnd32, digest, u32(ctr))


def sign_vector_mode(d: int, digest: bytes, rnd32: bytes):
    """§3.5 steps 2.1–2.4. Returns (signature, ctr, k)."""
    if len(digest) != 32 or len(rnd32) != 32:
        raise ValueError("digest and rnd32 must be 32 bytes")
    e = int.from_bytes(digest, "big")
    for ctr in range(MAX_NONCE_TRIES):
        kb = vector_nonce(d, rnd32, digest, ctr)
        k = int.from_bytes(kb, "big")
        if k == 0 or k >= Q:
            continue
        kg = ec.derive_private_key(k, CURVE).public_key().public_numbers()
        r = kg.x % Q
        if r == 0:
            continue
        s = pow(k, -1, Q) * (e + r * d) % Q
        if s == 0:
            continue
        return r.to_bytes(32, "big") + s.to_bytes(32, "big"), ctr, kb
    raise MpotrError(ErrorCode.Crypto, "no vector-mode nonce in 64 tries")


def verify_digest(public: bytes, digest: bytes, signature: bytes) -> bool:
    if len(signature) != 64:
        return False
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if not (1 <= r < Q and 1 <= s < Q):
        return False
    try:
        key = point_from_bytes(public)
        key.verify(encode_dss_signature(r, s), digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        return True
    except (InvalidSignature, MpotrError):
        return False
