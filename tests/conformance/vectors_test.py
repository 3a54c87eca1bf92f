#!/usr/bin/env python3
"""Reproduce every computable value of spec/vectors/{crypto,key_schedule,messages,session}.json
with the independent implementation in mpotr_indep/ (written from spec/ alone).

Every value is recomputed from the inputs the file gives (never copied), every valid message is
decoded and re-encoded, every invalid one must be rejected with the named error, and the
session is replayed through mpotr_indep.engine byte for byte. Prints a count of reproduced
values per file; exits 1 on any mismatch.

usage: vectors_test.py [SPEC_VECTORS_DIR]
"""
from __future__ import annotations

import json
import os
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from mpotr_indep import codec, keysched as ks                         # noqa: E402
from mpotr_indep.crypto import (DeterministicRng, PrivateKey, H, hmac, hkdf_extract,  # noqa: E402
                                hkdf_expand, aes128_ctr, scalar_from_bytes,
                                sign_vector_mode, vector_nonce, verify_digest)
from mpotr_indep.errors import MpotrError                            # noqa: E402


class Tally:
    def __init__(self):
        self.counts: dict[str, int] = {}
        self.failures: list[str] = []
        self.file = "?"

    def eq(self, what: str, got, want):
        if isinstance(got, bytes):
            got = got.hex()
        if isinstance(want, bytes):
            want = want.hex()
        if got == want:
            self.counts[self.file] = self.counts.get(self.file, 0) + 1
        else:
            self.failures.append(f"{self.file}: {what}: got {str(got)[:200]} want {str(want)[:200]}")

    def ok(self, what: str, cond: bool, detail: str = ""):
        self.eq(what, bool(cond) or detail or False, True)

    def error(self, what: str, fn, want_code: str):
        try:
            fn()
        except MpotrError as e:
            self.eq(what, e.code.snake, want_code)
            return
        self.eq(what, "accepted", want_code)


T = Tally()
X = bytes.fromhex


def load(d, name):
    with open(os.path.join(d, name), encoding="utf-8") as f:
        v = json.load(f)
    if v.get("version") != 2:
        raise SystemExit(f"{name}: version {v.get('version')} is not 2")
    return v


# --- crypto.json ------------------------------------------------------------------------------

def check_crypto(v):
    for c in v["deterministic_rng"]:
        rng = DeterministicRng(c["seed"])
        for i, dr in enumerate(c["draws"]):
            T.eq(f"rng {c['seed']} draw {i}", rng.bytes(dr["length"]), dr["output"])
    for c in v["p256_keys"]:
        if "rng_seed" in c:
            k = PrivateKey.generate(DeterministicRng(c["rng_seed"]))
            T.eq(f"p256 key from seed {c['rng_seed']}", k.to_bytes(), c["private"])
        k = PrivateKey.from_bytes(X(c["private"]))
        T.eq(f"p256 public of {c['private'][:8]}", k.public, c["public"])
    for c in v["p256_invalid_scalars"]:
        T.error(f"invalid scalar {c['private'][:8]}", lambda: scalar_from_bytes(X(c["private"])),
                c["error"])
    for c in v["ecdh"]:
        T.eq("ecdh", PrivateKey.from_bytes(X(c["private"])).dh(X(c["peer_public"])), c["shared"])
    for c in v["ecdsa"]:
        k = PrivateKey.from_bytes(X(c["private"]))
        T.eq("ecdsa public", k.public, c["public"])
        rnd32 = DeterministicRng(c["rng_seed"]).bytes(32)
        T.eq("ecdsa rnd32", rnd32, c["rnd32"])
        T.eq("ecdsa k", vector_nonce(k.d, rnd32, X(c["digest"]), c["nonce_counter"]), c["k"])
        sig, ctr, kb = sign_vector_mode(k.d, X(c["digest"]), rnd32)
        T.eq("ecdsa nonce counter", ctr, c["nonce_counter"])
        T.eq("ecdsa signature", sig, c["signature"])
        T.ok("ecdsa verifies", verify_digest(X(c["public"]), X(c["digest"]), X(c["signature"])))
        T.eq("ecdsa via sign_digest", k.sign_digest(X(c["digest"]), DeterministicRng(c["rng_seed"])),
             c["signature"])
    for c in v["sha256"]:
        T.eq("sha256", H(X(c["input"])), c["output"])
    for c in v["hmac_sha256"]:
        T.eq("hmac", hmac(X(c["key"]), X(c["data"])), c["output"])
    for c in v["hkdf_sha256"]:
        prk = hkdf_extract(X(c["salt"]), X(c["ikm"]))
        T.eq("hkdf prk", prk, c["prk"])
        T.eq("hkdf okm", hkdf_expand(prk, X(c["info"]), c["length"]), c["okm"])
    for c in v["aes128_ctr"]:
        T.eq("aes-ctr encrypt", aes128_ctr(X(c["key"]), X(c["iv"]), X(c["plaintext"])), c["ciphertext"])
        T.eq("aes-ctr decrypt", aes128_ctr(X(c["key"]), X(c["iv"]), X(c["ciphertext"])), c["plaintext"])


# --- key_schedule.json ------------------------------------------------------------------------

def offer_fields(o):
    return {"nick": o["nick"].encode(), "nonce": X(o["nonce"]), "identity_key": X(o["identity_key"]),
            "dh_key": X(o["dh_key"]), "signing_key": X(o["signing_key"])}


def check_key_schedule(v):
    for c in v["roster_digest"]:
        T.eq("roster_digest", ks.roster_digest(c["room"].encode(), [n.encode() for n in c["nicks"]]),
             c["output"])
    for c in v["session_id"]:
        attempts = {o["attempt"] for o in c["offers"]}
        T.eq("session_id: one attempt number", len(attempts), 1)
        sid = ks.session_id(c["room"].encode(), attempts.pop(), [offer_fields(o) for o in c["offers"]])
        T.eq("session_id", sid, c["output"])
        T.eq("session_tag", sid[:8], c["session_tag"])
    for c in v["dake_keys"]:
        sid, i, j = X(c["session_id"]), c["from"], c["to"]
        a = PrivateKey.from_bytes(X(c["from_identity"]["private"]))
        e_i = PrivateKey.from_bytes(X(c["from_dh"]["private"]))
        e_j = PrivateKey.from_bytes(X(c["to_dh"]["private"]))
        for kp, key in ((c["from_identity"], a), (c["from_dh"], e_i), (c["to_dh"], e_j)):
            T.eq("dake key pair", key.public, kp["public"])
        T.eq("dake DH(a_from, E_to)", a.dh(e_j.public), c["dh_a_from_e_to"])
        T.eq("dake DH(e_to, A_from)", e_j.dh(a.public), c["dh_a_from_e_to"])
        T.eq("dake DH(e_from, E_to)", e_i.dh(e_j.public), c["dh_e_from_e_to"])
        T.eq("dake DH(e_to, E_from)", e_j.dh(e_i.public), c["dh_e_from_e_to"])
        ikm = a.dh(e_j.public) + e_i.dh(e_j.public)
        T.eq("dake ikm", ikm, c["ikm"])
        T.eq("dake info", ks.dake_info(i, j), c["info"])
        T.eq("dake prk", hkdf_extract(sid, ikm), c["prk"])
        T.eq("dake key (sender side)", ks.dake_key_sender(sid, i, j, a, e_i, e_j.public), c["key"])
        T.eq("dake key (receiver side)", ks.dake_key_receiver(sid, i, j, e_j, a.public, e_i.public),
             c["key"])
    keys = {(c["from"], c["to"]): c["key"] for c in v["dake_keys"]}
    T.ok("dake keys differ per direction",
         all(keys[(i, j)] != keys[(j, i)] for (i, j) in keys if (j, i) in keys))
    for c in v["dake_mac"]:
        T.eq("dake_mac", ks.dake_mac(X(c["mac_key"]), X(c["session_id"]), c["from"], c["to"],
                                     X(c["signing_key"]), X(c["dh_key"]), X(c["elgamal_r"])), c["output"])
    for c in v["elgamal_pad"]:
        sid, i, j = X(c["session_id"]), c["from"], c["to"]
        r = PrivateKey.from_bytes(X(c["elgamal_r"]["private"]))
        e = PrivateKey.from_bytes(X(c["recipient_dh"]["private"]))
        T.eq("elgamal R", r.public, c["elgamal_r"]["public"])
        T.eq("elgamal E", e.public, c["recipient_dh"]["public"])
        T.eq("elgamal DH(r, E)", r.dh(e.public), c["shared"])
        T.eq("elgamal DH(e, R)", e.dh(r.public), c["shared"])
        pad = ks.elgamal_pad(sid, i, j, r.dh(e.public), r.public, e.public)
        T.eq("elgamal pad", pad, c["pad"])
        T.eq("elgamal secret_ct", ks.xor(X(c["secret"]), pad), c["secret_ct"])
        T.eq("elgamal recovered", ks.xor(X(c["secret_ct"]), ks.elgamal_pad(
            sid, i, j, e.dh(r.public), r.public, e.public)), c["secret"])
    for c in v["commit"]:
        T.eq("commit", ks.commit(X(c["session_id"]), c["sender"], X(c["secret"])), c["output"])
    for c in v["group_secret"]:
        T.eq("group_secret", ks.group_secret(X(c["session_id"]), [X(s) for s in c["secrets"]]),
             c["output"])
    for c in v["setup_transcript_hash"]:
        T.eq("setup_transcript_hash", ks.setup_transcript_hash([X(o) for o in c["offers"]],
                                                                [X(k) for k in c["key_shares"]]),
             c["output"])
    check_setup_case_consistency(v)
    for c in v["key_confirm"]:
        T.eq("key_confirm", ks.key_confirm(X(c["group_secret"]), X(c["transcript_hash"])), c["output"])
    for c in v["auth_key"]:
        T.eq("auth_key", ks.auth_key(X(c["group_secret"])), c["output"])
    for c in v["sender_key"]:
        key, prefix = ks.sender_key(X(c["group_secret"]), c["sender"])
        T.eq("sender key", key, c["key"])
        T.eq("sender iv prefix", prefix, c["iv_prefix"])
        for m in c["message_ivs"]:
            T.eq(f"message iv seq {m['seq']}", ks.message_iv(prefix, m["seq"]), m["iv"])
    for c in v["signed_digest"]:
        T.eq("signed_digest", ks.signed_digest(X(c["session_id"]), X(c["signed_part"])), c["output"])
    for c in v["chain"]:
        t = ks.chain_start(X(c["session_id"]), c["sender"])
        T.eq("chain start", t, c["start"])
        for e in c["entries"]:
            t = ks.chain_step(t, X(e["message_id"]))
            T.eq(f"chain {c['sender']} seq {e['seq']}", t, e["chain"])
    for c in v["chain_lost"]:
        T.eq("chain_lost input", ks.chain_lost_input(X(c["previous"]), c["first"], c["last"]), c["input"])
        T.eq("chain_lost", ks.chain_lost(X(c["previous"]), c["first"], c["last"]), c["output"])
    for c in v["view_digest"]:
        T.eq("view_digest", ks.view_digest(c["counts"], [X(x) for x in c["chains"]]), c["output"])
    tcases = {}
    for c in v["transcript_digest"]:
        sid = X(c["session_id"])
        closing = []
        for m in c["members"]:
            t = ks.chain_start(sid, m["member"])
            T.eq("transcript chain start", t, m["start"])
            held = {}
            for s in m["steps"]:
                if "seq" in s:
                    t = ks.chain_step(t, X(s["message_id"]))
                    held[s["seq"]] = X(s["message_id"])
                else:
                    t = ks.chain_lost(t, s["lost_first"], s["lost_last"])
                T.eq(f"transcript {c['name']} member {m['member']} step", t, s["chain"])
            T.eq(f"transcript {c['name']} closing chain (step by step)", t, m["closing_chain"])
            # and the same closing chain from the held set alone (maximal runs found by us)
            T.eq(f"transcript {c['name']} closing chain (from held entries)",
                 ks.closing_chain(ks.chain_start(sid, m["member"]), m["final_count"], held),
                 m["closing_chain"])
            closing.append(t)
        T.eq(f"transcript {c['name']} counts", [m["final_count"] for m in c["members"]], c["counts"])
        T.eq(f"transcript {c['name']} chains", [x.hex() for x in closing], c["chains"])
        d = ks.transcript_digest(c["counts"], closing)
        T.eq(f"transcript {c['name']} digest", d, c["output"])
        tcases[c["name"]] = d.hex()
    T.eq("late-arrival equals intact", tcases.get("late-arrival"), tcases.get("intact"))
    for c in v["end_digest"]:
        digests = []
        for dd in c["digests"]:
            if dd["present"]:
                T.eq(f"end {c['name']} digest from case {dd['transcript_case']}",
                     tcases[dd["transcript_case"]], dd["digest"])
                digests.append(X(dd["digest"]))
            else:
                # the file writes an absent digest as null (README: "32 zero bytes")
                T.ok(f"end {c['name']} absent digest", dd.get("digest") in (None, "00" * 32))
                digests.append(None)
        T.eq(f"end {c['name']} present", codec.memberset(
            [i for i, d in enumerate(digests) if d is not None]), c["present"])
        T.eq(f"end {c['name']} input", ks.end_digest_input(digests), c["input"])
        T.eq(f"end {c['name']} output", ks.end_digest(digests), c["output"])
    check_message_macs(v)


def check_setup_case_consistency(v):
    """The setup's offers and key shares (setup_transcript_hash case 0) against the other
    sections: decode them, and recompute sid, DAKE MACs and commitments they carry."""
    c = v["setup_transcript_hash"][0]
    room = v["session_id"][0]["room"].encode()
    offers = [codec.decode(X(o)) for o in c["offers"]]
    for o in offers:
        T.eq("setup offer re-encodes", codec.encode("offer", o.fields), o.encoding)
    nicks = [o["nick"] for o in offers]
    rd = ks.roster_digest(room, nicks)
    T.ok("setup offers carry the roster digest", all(o["roster_digest"] == rd for o in offers))
    sid = ks.session_id(room, offers[0]["attempt"], [o.fields for o in offers])
    T.eq("setup sid from decoded offers", sid, v["session_id"][0]["output"])
    ks_parts = [X(k) for k in c["key_shares"]]
    for i, part in enumerate(ks_parts):
        # the signed part of a key share decodes once a (dummy) signature is appended
        m = codec.decode(part + b"\x00" * 64)
        T.eq("setup key share sid", m["session_id"], sid)
        T.eq("setup key share sender", m["sender"], i)
        T.eq("setup key share signed_len", m.signed_len, len(part))
        com = [x for x in v["commit"] if x["session_id"] == sid.hex() and x["sender"] == i]
        if com:
            T.eq("setup key share commit", m["commit"], com[0]["output"])
        for j in range(len(offers)):
            if j == i:
                continue
            share = m["shares"][j if j < i else j - 1]
            dm = [x for x in v["dake_mac"] if x["from"] == i and x["to"] == j
                  and x["session_id"] == sid.hex()]
            if dm:
                T.eq(f"setup key share mac {i}->{j}", share["mac"], dm[0]["output"])
                T.eq(f"setup dake_mac S/E/R from the offer/key share {i}",
                     (dm[0]["signing_key"], dm[0]["dh_key"], dm[0]["elgamal_r"]),
                     (offers[i]["signing_key"].hex(), offers[i]["dh_key"].hex(), m["elgamal_r"].hex()))
            ep = [x for x in v["elgamal_pad"] if x["from"] == i and x["to"] == j
                  and x["session_id"] == sid.hex()]
            if ep:
                T.eq(f"setup key share secret_ct {i}->{j}", share["secret_ct"], ep[0]["secret_ct"])


def check_message_macs(v):
    sid = X(v["session_id"][0]["output"])
    gs = [c for c in v["auth_key"] if c["output"] == v["message_mac"][0]["auth_key"]]
    G = X(gs[0]["group_secret"]) if gs else None
    own: dict[int, list[bytes]] = {}
    for c in v["message_mac"]:
        msg = X(c["message"])
        m = codec.decode(msg)
        T.eq(f"message_mac {c['name']} type", m.type, c["type"])
        T.eq(f"message_mac {c['name']} sender", m["sender"], c["sender"])
        T.eq(f"message_mac {c['name']} re-encodes", codec.encode(m.type, m.fields), msg)
        T.eq(f"message_mac {c['name']} mac_len", m.mac_len, c["mac_len"])
        T.eq(f"message_mac {c['name']} signed_len", m.signed_len, c["signed_len"])
        mac = ks.message_mac(X(c["auth_key"]), msg[:c["mac_len"]])
        T.eq(f"message_mac {c['name']} mac", mac, c["mac"])
        T.eq(f"message_mac {c['name']} mac in message", msg[c["mac_len"]:c["mac_len"] + 32], c["mac"])
        d = ks.signed_digest(sid, msg[:c["signed_len"]])
        T.eq(f"message_mac {c['name']} signed_digest", d, c["signed_digest"])
        T.ok(f"message_mac {c['name']} signature", verify_digest(X(c["signer_public_key"]), d,
                                                                  m["signature"]))
        if "view_counts" in c:
            counts = c["view_counts"]
            sender = c["sender"]
            want = [counts[k] for k in range(len(counts)) if k != sender]
            T.eq(f"message_mac {c['name']} acks", m["acks"], want)
            T.eq(f"message_mac {c['name']} own count", counts[sender], m["seq"] - 1)
            # the entries of this section are one session's: chain over them in order (§5.11)
            n = len(counts)
            for k in range(n):
                own.setdefault(k, [ks.chain_start(sid, k)])
            if all(counts[k] < len(own[k]) for k in range(n)):
                T.eq(f"message_mac {c['name']} view digest",
                     ks.view_digest(counts, [own[k][counts[k]] for k in range(n)]), m["view_digest"])
            else:
                T.failures.append(f"message_mac {c['name']}: view names entries not in the section")
            if len(own[sender]) == m["seq"]:
                own[sender].append(ks.chain_step(own[sender][-1], d))
        if "text" in c and G is not None:
            key, prefix = ks.sender_key(G, c["sender"])
            T.eq(f"message_mac {c['name']} iv", ks.message_iv(prefix, m["seq"]), c["iv"])
            T.eq(f"message_mac {c['name']} text",
                 aes128_ctr(key, X(c["iv"]), m["ciphertext"]).decode(), c["text"])


# --- messages.json ----------------------------------------------------------------------------

def norm_fields(t, f):
    """JSON fields -> codec fields (hex -> bytes, nick as UTF-8)."""
    out = {}
    for k, val in f.items():
        if k == "nick":
            out[k] = val.encode()
        elif k == "shares":
            out[k] = [{"mac": X(s["mac"]), "secret_ct": X(s["secret_ct"])} for s in val]
        elif isinstance(val, str):
            out[k] = X(val)
        else:
            out[k] = val
    return out


def check_messages(v):
    by_name = {}
    for c in v["cases"]:
        name, t = c["name"], c["type"]
        enc = X(c["encoding"])
        fields = norm_fields(t, c["fields"])
        T.eq(f"{name} encode", codec.encode(t, fields), enc)
        m = codec.decode(enc)
        T.eq(f"{name} decoded type", m.type, t)
        T.eq(f"{name} decoded fields", m.fields, fields)
        T.eq(f"{name} signed_len", m.signed_len, c["signed_len"])
        T.eq(f"{name} mac_len", m.mac_len, c["mac_len"])
        by_name[name] = m
        sc = c.get("signature_check")
        if sc:
            k = PrivateKey.from_bytes(X(sc["signer_private_key"]))
            T.eq(f"{name} signer public", k.public, sc["signer_public_key"])
            d = ks.signed_digest(X(sc["session_id"]), enc[:m.signed_len])
            T.eq(f"{name} signed_digest", d, sc["signed_digest"])
            if "session_id" in m.fields:
                T.eq(f"{name} session_id", m["session_id"], sc["session_id"])
            else:
                T.eq(f"{name} session_tag", m["session_tag"], X(sc["session_id"])[:8])
            rnd32 = DeterministicRng(sc["rng_seed"]).bytes(32)
            T.eq(f"{name} rnd32", rnd32, sc["rnd32"])
            T.eq(f"{name} k", vector_nonce(k.d, rnd32, d, sc["nonce_counter"]), sc["k"])
            sig, ctr, _ = sign_vector_mode(k.d, d, rnd32)
            T.eq(f"{name} nonce counter", ctr, sc["nonce_counter"])
            T.eq(f"{name} signature", sig, m["signature"])
            T.ok(f"{name} verifies", verify_digest(k.public, d, m["signature"]))
        mc = c.get("mac_check")
        if mc:
            ak = ks.auth_key(X(mc["group_secret"]))
            T.eq(f"{name} auth_key", ak, mc["auth_key"])
            T.eq(f"{name} mac", ks.message_mac(ak, enc[:m.mac_len]), m["mac"])
        kc = c.get("key_check")
        if kc:
            T.eq(f"{name} revealed key's point", PrivateKey.from_bytes(m["private_key"]).public,
                 kc["public_key"])
        if t == "accuse":
            # note: key_share is the encoding of case key_share/<n>; dh_private's public point
            ref = "key_share/" + name.split("/", 1)[1]
            if ref in by_name:
                T.eq(f"{name} embedded key share", m["key_share"], by_name[ref].encoding)
                inner = codec.decode(m["key_share"])
                T.eq(f"{name} accused is the key share's sender", m["accused"], inner["sender"])
            note = c.get("note", "")
            if "public point: " in note:
                pub = note.split("public point: ")[1].rstrip(")").strip()
                T.eq(f"{name} dh_private's point", PrivateKey.from_bytes(m["dh_private"]).public, pub)
    for c in v["invalid"]:
        T.error(f"invalid {c['name']}", lambda: codec.decode(X(c["encoding"])), c["error"])
    # spec §4.12 sizes, on the valid cases
    for name, m in by_name.items():
        n_len = len(m.encoding)
        size = {
            "offer": lambda: 266 + len(m["nick"]),
            "key_share": lambda: 213 + 64 * len(m["shares"]),
            "attest": lambda: 163,
            "accuse": lambda: 134 + len(m["key_share"]),
            "data": lambda: 146 + sum(len(codec.encode_varint(a)) for a in m["acks"]) + len(m["ciphertext"]),
            "heartbeat": lambda: 146 + sum(len(codec.encode_varint(a)) for a in m["acks"]),
            "shutdown": lambda: 111, "digest": lambda: 139, "end": lambda: 155,
            "key_reveal": lambda: 43, "quit": lambda: 111,
        }[m.type]()
        T.eq(f"{name} size (§4.12)", n_len, size)


# --- session.json -----------------------------------------------------------------------------

def check_session(v):
    from session_replay import replay_session
    replay_session(v, T)


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "spec", "vectors")
    files = [("crypto.json", check_crypto), ("key_schedule.json", check_key_schedule),
             ("messages.json", check_messages), ("session.json", check_session)]
    for name, fn in files:
        T.file = name
        T.counts.setdefault(name, 0)
        try:
            fn(load(d, name))
        except Exception:
            T.failures.append(f"{name}: exception\n{traceback.format_exc()}")
    for name, _ in files:
        print(f"{name}: {T.counts.get(name, 0)} values reproduced")
    print(f"total: {sum(T.counts.values())} values reproduced, {len(T.failures)} mismatches")
    for f in T.failures:
        print("MISMATCH", f)
    return 1 if T.failures else 0


if __name__ == "__main__":
    sys.exit(main())
