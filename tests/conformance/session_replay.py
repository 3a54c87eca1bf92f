"""Replay spec/vectors/session.json through mpotr_indep.engine (the description's replay rules)
and check every broadcast byte for byte, every member's events, the expected results and the
derived values. Used by vectors_test.py."""
from __future__ import annotations

from mpotr_indep import codec, keysched as ks
from mpotr_indep.crypto import DeterministicRng, PrivateKey, aes128_ctr
from mpotr_indep.engine import Engine

X = bytes.fromhex


def replay_session(v, T):
    members = v["members"]
    nicks = [m["nick"] for m in members]
    engines = {}
    for m in members:
        ident = PrivateKey.generate(DeterministicRng(m["identity_seed"]))
        T.eq(f"{m['nick']} identity private", ident.to_bytes(), m["identity_private"])
        T.eq(f"{m['nick']} identity public", ident.public, m["identity_public"])
        T.eq(f"{m['nick']} fingerprint", ks.fingerprint(ident.public), m["fingerprint"])
        engines[m["nick"]] = Engine(v["room"], m["nick"], ident, DeterministicRng(m["rng_seed"]),
                                    timeouts=v["timeouts"])
    queue = []            # (index, from, payload)
    produced = []         # dicts like v["broadcasts"]
    events = {n: [] for n in nicks}

    def record(nick, out, step, trigger):
        for p in out.broadcasts:
            idx = len(produced)
            produced.append({"index": idx, "step": step, "trigger": trigger, "from": nick,
                             "type": codec.decode(p).type, "payload": p.hex()})
            queue.append((idx, nick, p))
        for e in out.events:
            d = {"step": step, "trigger": trigger}
            d.update(e.as_dict())
            events[nick].append(d)

    for step, op in enumerate(v["script"]):
        at = op["at"]
        if op["op"] == "set_roster":
            roster = [(n, f"{n}@localhost") for n in nicks]
            for n in nicks:
                record(n, engines[n].set_roster(roster, at), step, None)
        elif op["op"] == "send_text":
            record(op["nick"], engines[op["nick"]].send_text(op["text"], at), step, None)
        elif op["op"] == "leave":
            record(op["nick"], engines[op["nick"]].leave(at), step, None)
        elif op["op"] == "tick":
            for n in nicks:
                record(n, engines[n].tick(at), step, None)
        elif op["op"] == "run":
            while queue:
                idx, frm, p = queue.pop(0)
                for n in nicks:
                    record(n, engines[n].receive(frm, p, at), step, idx)
        else:
            T.failures.append(f"session.json: unknown script op {op['op']}")

    want = v["broadcasts"]
    T.eq("broadcast count", len(produced), len(want))
    for got, w in zip(produced, want):
        for k in ("step", "trigger", "from", "type", "payload"):
            T.eq(f"broadcast {w['index']} {k}", got[k], w[k])
    for n in nicks:
        got, w = events[n], v["events"][n]
        T.eq(f"{n} event count", len(got), len(w))
        for i, (g, ww) in enumerate(zip(got, w)):
            T.eq(f"{n} event {i} ({ww['kind']})", g, ww)

    check_expected(v, engines, produced, events, T)
    check_derived(v, produced, T)
    for n in nicks:
        replay_alone(v, n, T)


def replay_alone(v, me, T):
    """The conversation again for one member alone, fed only the recorded payloads: its own
    broadcasts and events must be the recorded ones."""
    nicks = [m["nick"] for m in v["members"]]
    mem = [m for m in v["members"] if m["nick"] == me][0]
    eng = Engine(v["room"], me, PrivateKey.generate(DeterministicRng(mem["identity_seed"])),
                 DeterministicRng(mem["rng_seed"]), timeouts=v["timeouts"])
    mine, evs = [], []

    def record(out, step, trigger):
        mine.extend(p.hex() for p in out.broadcasts)
        for e in out.events:
            d = {"step": step, "trigger": trigger}
            d.update(e.as_dict())
            evs.append(d)

    for step, op in enumerate(v["script"]):
        at = op["at"]
        if op["op"] == "set_roster":
            record(eng.set_roster([(n, f"{n}@localhost") for n in nicks], at), step, None)
        elif op["op"] in ("send_text", "leave") and op["nick"] == me:
            out = eng.send_text(op["text"], at) if op["op"] == "send_text" else eng.leave(at)
            record(out, step, None)
        elif op["op"] == "tick":
            record(eng.tick(at), step, None)
        elif op["op"] == "run":
            for b in v["broadcasts"]:
                if _delivered_in_run(v, b, step):
                    record(eng.receive(b["from"], X(b["payload"]), at), step, b["index"])
    want = [b["payload"] for b in v["broadcasts"] if b["from"] == me]
    T.eq(f"{me} alone: own broadcasts", mine, want)
    T.eq(f"{me} alone: events", evs, v["events"][me])


def _delivered_in_run(v, b, step):
    """A broadcast is delivered in the first run step at or after the step that produced it."""
    runs = [i for i, op in enumerate(v["script"]) if op["op"] == "run"]
    first = min(i for i in runs if i >= b["step"])
    return first == step


def check_expected(v, engines, produced, events, T):
    exp = v["expected"]
    nicks = [m["nick"] for m in v["members"]]
    T.eq("roster_digest", ks.roster_digest(v["room"].encode(), sorted(n.encode() for n in nicks)),
         exp["roster_digest"])
    est = [e for n in nicks for e in events[n] if e["kind"] == "session_established"]
    T.ok("every member established", len(est) == len(nicks))
    for e in est:
        T.eq("session id", e.get("session_id"), exp["session_id"])
    shown = {}                      # the text each receiver showed, from its events
    for n in nicks:
        for e in events[n]:
            if e["kind"] == "message_received":
                shown.setdefault((e["nick"], e["seq"]), set()).add(e["text"])
    for t in exp["texts"]:
        got = shown.get((t["from"], t["seq"]), set())
        T.eq(f"text {t['from']}#{t['seq']} shown to the others", sorted(got), [t["text"]])
    for n in nicks:
        T.eq(f"{n} final phase", engines[n].phase, exp["final_phases"][n])
    digests = {}
    ends = {}
    for p in produced:
        m = codec.decode(X(p["payload"]))
        if m.type == "digest":
            digests[p["from"]] = m["transcript_digest"].hex()
        if m.type == "end":
            ends[p["from"]] = m
        if m.type == "shutdown":
            T.eq(f"{p['from']} final count", m["final_count"],
                 exp["final_counts"][nicks.index(p["from"])])
    for n in nicks:
        T.eq(f"{n} final transcript digest", digests.get(n), exp["final_transcript_digests"][n])
        T.eq(f"{n} end present", ends[n]["present"].hex(), exp["end_present"])
        T.eq(f"{n} end digest", ends[n]["digests_hash"].hex(), exp["end_digest"])
    T.eq("transcript digest", digests.get(nicks[0]), exp["transcript_digest"])
    T.eq("end digest from the digests", ks.end_digest([X(digests[n]) for n in sorted(nicks)]).hex(),
         exp["end_digest"])


def check_derived(v, produced, T):
    """Recompute every derived value from the recorded payloads and the members' seeds."""
    d = v["derived"]
    room = v["room"].encode()
    msgs = [(p["from"], codec.decode(X(p["payload"]))) for p in produced]
    offers = {f: m for f, m in msgs if m.type == "offer"}
    order = sorted(offers, key=lambda n: n.encode())
    idx = {n: i for i, n in enumerate(order)}
    sid = ks.session_id(room, offers[order[0]]["attempt"], [offers[n].fields for n in order])
    T.eq("derived session id", sid, v["expected"]["session_id"])
    kshares = {f: m for f, m in msgs if m.type == "key_share"}
    eph = {}
    for e in d["ephemeral"]:
        n = e["nick"]
        mem = [m for m in v["members"] if m["nick"] == n][0]
        rng = DeterministicRng(mem["rng_seed"])
        # §12: e, s, r as P-256 keys, then x and the nonce, 32 bytes each
        dh, sg, r = (PrivateKey.generate(rng) for _ in range(3))
        x, nonce = rng.bytes(32), rng.bytes(32)
        T.eq(f"{n} dh_private", dh.to_bytes(), e["dh_private"])
        T.eq(f"{n} signing_private", sg.to_bytes(), e["signing_private"])
        T.eq(f"{n} elgamal_r_private", r.to_bytes(), e["elgamal_r_private"])
        T.eq(f"{n} secret", x, e["secret"])
        T.eq(f"{n} nonce", nonce, e["nonce"])
        T.eq(f"{n} offer nonce", offers[n]["nonce"], e["nonce"])
        T.eq(f"{n} offer E", offers[n]["dh_key"], dh.public)
        T.eq(f"{n} offer S", offers[n]["signing_key"], sg.public)
        T.eq(f"{n} key share R", kshares[n]["elgamal_r"], r.public)
        T.eq(f"{n} commit", ks.commit(sid, idx[n], x), e["commit"])
        T.eq(f"{n} key share commit", kshares[n]["commit"], e["commit"])
        eph[n] = (dh, sg, r, x)
    ident = {m["nick"]: PrivateKey.from_bytes(X(m["identity_private"])) for m in v["members"]}
    for p in d["pairs"]:
        f, t = p["from"], p["to"]
        i, j = idx[f], idx[t]
        (e_i, s_i, r_i, _), (e_j, _, _, _) = eph[f], eph[t]
        T.eq(f"{f}->{t} DH(a,E)", ident[f].dh(e_j.public), p["dh_a_from_e_to"])
        T.eq(f"{f}->{t} DH(e,A)", e_j.dh(ident[f].public), p["dh_a_from_e_to"])
        T.eq(f"{f}->{t} DH(e,E)", e_i.dh(e_j.public), p["dh_e_from_e_to"])
        key = ks.dake_key_sender(sid, i, j, ident[f], e_i, e_j.public)
        T.eq(f"{f}->{t} dake key", key, p["dake_key"])
        T.eq(f"{f}->{t} dake key (receiver)", ks.dake_key_receiver(sid, i, j, e_j, ident[f].public,
                                                                     e_i.public), p["dake_key"])
        mac = ks.dake_mac(key, sid, i, j, s_i.public, e_i.public, r_i.public)
        T.eq(f"{f}->{t} dake mac", mac, p["dake_mac"])
        share = kshares[f]["shares"][j if j < i else j - 1]
        T.eq(f"{f}->{t} key share mac", share["mac"], p["dake_mac"])
        shared = r_i.dh(e_j.public)
        T.eq(f"{f}->{t} elgamal shared", shared, p["elgamal_shared"])
        T.eq(f"{f}->{t} elgamal shared (receiver)", e_j.dh(r_i.public), p["elgamal_shared"])
        pad = ks.elgamal_pad(sid, i, j, shared, r_i.public, e_j.public)
        T.eq(f"{f}->{t} pad", pad, p["pad"])
        T.eq(f"{f}->{t} secret_ct", share["secret_ct"], ks.xor(eph[f][3], pad))
    G = ks.group_secret(sid, [eph[n][3] for n in order])
    T.eq("group secret", G, d["group_secret"])
    Th = ks.setup_transcript_hash([offers[n].encoding for n in order],
                                  [kshares[n].signed_part for n in order])
    T.eq("setup transcript hash", Th, d["setup_transcript_hash"])
    kc = ks.key_confirm(G, Th)
    T.eq("key confirm", kc, d["key_confirm"])
    for f, m in msgs:
        if m.type == "attest":
            T.eq(f"{f} attest T", m["transcript_hash"], d["setup_transcript_hash"])
            T.eq(f"{f} attest key_confirm", m["key_confirm"], d["key_confirm"])
    ka = ks.auth_key(G)
    T.eq("auth key", ka, d["auth_key"])
    for sk in d["sender_keys"]:
        key, prefix = ks.sender_key(G, sk["sender"])
        T.eq(f"sender key {sk['sender']}", key, sk["key"])
        T.eq(f"iv prefix {sk['sender']}", prefix, sk["iv_prefix"])
    chains = {i: [ks.chain_start(sid, i)] for i in range(len(order))}
    held = {i: {} for i in range(len(order))}
    entries = iter(d["entries"])
    for k, (f, m) in enumerate(msgs):
        if m.mac_len:
            T.eq(f"broadcast {k} group mac", ks.message_mac(ka, m.mac_part), m["mac"])
        if m.type not in ("data", "heartbeat"):
            continue
        e = next(entries)
        i = m["sender"]
        T.eq(f"entry {k} broadcast", k, e["broadcast"])
        T.eq(f"entry {k} from/type/seq", (f, m.type, m["seq"]), (e["from"], e["type"], e["seq"]))
        counts = [0] * len(order)
        for kk, a in zip([x for x in range(len(order)) if x != i], m["acks"]):
            counts[kk] = a
        counts[i] = m["seq"] - 1
        T.eq(f"entry {k} view counts", counts, e["view_counts"])
        T.eq(f"entry {k} view digest", ks.view_digest(counts, [chains[x][counts[x]] for x in
                                                                range(len(order))]), m["view_digest"])
        mid = ks.signed_digest(sid, m.signed_part)
        T.eq(f"entry {k} message id", mid, e["message_id"])
        chains[i].append(ks.chain_step(chains[i][-1], mid))
        held[i][m["seq"]] = mid
        T.eq(f"entry {k} chain", chains[i][-1], e["chain"])
        if m.type == "data":
            key, prefix = ks.sender_key(G, i)
            iv = ks.message_iv(prefix, m["seq"])
            T.eq(f"entry {k} iv", iv, e["iv"])
            txt = aes128_ctr(key, iv, m["ciphertext"]).decode()
            T.ok(f"entry {k} text is expected",
                 {"from": f, "seq": m["seq"], "text": txt} in v["expected"]["texts"])
    finals = v["expected"]["final_counts"]
    closing = [ks.closing_chain(chains[i][0], finals[i], held[i]) for i in range(len(order))]
    T.eq("closing chains", [c.hex() for c in closing], d["closing_chains"])
    T.eq("transcript digest from closing chains", ks.transcript_digest(finals, closing),
         v["expected"]["transcript_digest"])
    for f, m in msgs:
        if m.type == "key_reveal":
            T.eq(f"{f} key reveal", m["private_key"], eph[f][1].to_bytes())
