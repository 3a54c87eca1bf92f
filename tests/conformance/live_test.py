#!/usr/bin/env python3
"""Live interoperability: the independent member (mpotr_indep over slixmpp) in one MUC with
reference mpotr-chat clients, on a private ejabberd on loopback (testserver/ejabberd-test).

Scenario (nicks sort as alice < bob < carol < dave; bob is ours, index 1):
  1. alice and carol (mpotr-chat --json) and bob (ours) join: a session of all three forms,
     with the same session id on every side;
  2. each of the three sends a line, and the other two show it;
  3. dave (mpotr-chat) joins: the old session shuts down (transcripts consistent, keys
     published), and a new session of four forms, which bob completes; lines both ways;
  4. bob leaves: every side reports the transcript consistent and publishes its key, and the
     reference clients accept bob's published key.
Every process started is stopped by PID, the server by `ejabberd-test stop --dir`, also on
failure. Every wait is bounded.

usage: live_test.py --chat PATH/TO/mpotr-chat [--server-script testserver/ejabberd-test] [-v]
exit: 0 pass, 1 fail, 77 skipped (python3-slixmpp missing)
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

try:
    import slixmpp  # noqa: F401
except ImportError:
    print("SKIP: python3-slixmpp is not installed (apt-get install python3-slixmpp)")
    sys.exit(77)

from xmpp_member import Member  # noqa: E402

ROOM = "conf@conference.localhost"
HEARTBEAT_MS = 400        # short heartbeat timers on every side, so heartbeats happen in the test
T0 = time.monotonic()


def say(msg):
    print(f"[{time.monotonic() - T0:6.2f}s] {msg}", flush=True)


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)
    say(f"ok: {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, script, work):
        self.script = script
        self.dir = os.path.join(work, "server")
        self.started = False
        self.port = None

    def start(self):
        for _ in range(5):
            c2s, http = free_port(), free_port()
            r = subprocess.run([self.script, "start", "--dir", self.dir, "--c2s-port", str(c2s),
                                "--http-port", str(http), "--owner-pid", str(os.getpid())],
                               capture_output=True, text=True, timeout=40)
            if r.returncode == 0:
                self.started = True
                self.port = c2s
                say(r.stdout.strip())
                return
            if r.returncode != 3:
                raise Failure(f"ejabberd-test start failed ({r.returncode}): {r.stdout}{r.stderr}")
        raise Failure("no free port pair for ejabberd")

    def run(self, *args):
        r = subprocess.run([self.script, args[0], "--dir", self.dir, *args[1:]],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise Failure(f"ejabberd-test {args[0]} failed: {r.stdout}{r.stderr}")

    def stop(self):
        if self.started:
            subprocess.run([self.script, "stop", "--dir", self.dir], capture_output=True, timeout=30)
            self.started = False


class Chat:
    """One reference mpotr-chat process in --json mode."""

    def __init__(self, exe, work, user, password, port):
        self.user = user
        self.dir = os.path.join(work, user)
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        pw = os.path.join(self.dir, "password")
        with open(os.open(pw, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(password + "\n")
        self.argv = [exe, "--jid", f"{user}@localhost", "--room", ROOM, "--password-file", pw,
                     "--server", f"127.0.0.1:{port}", "--tls", "disabled", "--json",
                     "--key-file", os.path.join(self.dir, "identity.json"), "--no-reconnect",
                     "--timeouts", f"heartbeat={HEARTBEAT_MS}"]
        self.proc = None
        self.events: list[dict] = []
        self.stderr = b""

    async def start(self):
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        self._reader = asyncio.ensure_future(self._read())
        self._errreader = asyncio.ensure_future(self._read_err())
        say(f"started mpotr-chat {self.user} pid {self.proc.pid}")

    async def _read(self):
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                return
            try:
                self.events.append(json.loads(line))
            except ValueError:
                self.events.append({"event": "unparsed", "line": line.decode(errors="replace")})

    async def _read_err(self):
        self.stderr = await self.proc.stderr.read()

    def command(self, **cmd):
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())

    def find(self, event, **match):
        return [e for e in self.events if e.get("event") == event
                and all(e.get(k) == v for k, v in match.items())]

    async def stop(self):
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            self.command(cmd="quit")
            await asyncio.wait_for(self.proc.wait(), 5)
        except Exception:
            pass
        if self.proc.returncode is None:
            try:
                os.kill(self.proc.pid, 15)
                await asyncio.wait_for(self.proc.wait(), 3)
            except Exception:
                pass
        if self.proc.returncode is None:
            try:
                os.kill(self.proc.pid, 9)
                await asyncio.wait_for(self.proc.wait(), 3)
            except Exception:
                pass
        say(f"stopped mpotr-chat {self.user} (pid {self.proc.pid}, exit {self.proc.returncode})")


async def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        r = pred()
        if r:
            return r
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout:.0f} s waiting for: {what}")
        await asyncio.sleep(0.05)


def last_secure(chat: Chat, nicks):
    ev = [e for e in chat.find("secure") if e.get("nicks") == nicks]
    return ev[-1]["session"] if ev else None


def our_session(member: Member, nicks):
    ev = member.kinds("session_established", nicks=nicks)
    return ev[-1]["session_id"] if ev else None


async def scenario(args, work, server, chats, holder):
    server.start()
    users = {u: secrets.token_hex(8) for u in ("alice", "bob", "carol", "dave")}
    server.run("register", *[x for u, p in users.items() for x in (u, p)])
    server.run("create-room", ROOM.split("@")[0])

    alice = Chat(args.chat, work, "alice", users["alice"], server.port)
    carol = Chat(args.chat, work, "carol", users["carol"], server.port)
    dave = Chat(args.chat, work, "dave", users["dave"], server.port)
    chats += [alice, carol, dave]
    await alice.start()
    await carol.start()
    await wait_for(lambda: last_secure(alice, ["alice", "carol"]), 20, "alice and carol secure")

    bob = Member("bob@localhost", users["bob"], ROOM, "bob", timeouts={"heartbeat": HEARTBEAT_MS})
    holder.append(bob)
    bob.connect(address=("127.0.0.1", server.port), force_starttls=False, disable_starttls=True)
    say("started the independent member bob (slixmpp)")

    # 1. a session of all three, the same id everywhere
    three = ["alice", "bob", "carol"]
    s1 = await wait_for(lambda: our_session(bob, three), 30, "bob establishes with alice and carol")
    sa = await wait_for(lambda: last_secure(alice, three), 10, "alice secure with all three")
    sc = await wait_for(lambda: last_secure(carol, three), 10, "carol secure with all three")
    check(sa == s1 and sc == s1, f"one session id on every side: {s1[:16]}")

    # 2. lines each way
    alice.command(cmd="send", text="hello from alice (reference)")
    carol.command(cmd="send", text="hello from carol (reference)")
    await wait_for(lambda: bob.kinds("message_received", nick="alice", text="hello from alice (reference)",
                                     session_id=s1), 10, "bob shows alice's line")
    await wait_for(lambda: bob.kinds("message_received", nick="carol", text="hello from carol (reference)",
                                     session_id=s1), 10, "bob shows carol's line")
    check(True, "the independent member decrypted both reference members' lines")
    bob.send_text("hello from bob (independent implementation)")
    for c in (alice, carol):
        await wait_for(lambda: c.find("message", nick="bob", session=s1,
                                      message="hello from bob (independent implementation)"),
                       10, f"{c.user} shows bob's line")
    check(True, "both reference members showed the independent member's line")
    await wait_for(lambda: carol.find("message", nick="alice", session=s1), 10, "carol shows alice's line")
    await wait_for(lambda: alice.find("message", nick="carol", session=s1), 10, "alice shows carol's line")
    # the reference checked bob's view digest (R-DATA-9): bob's entry confirms their lines
    for c in (alice, carol):
        await wait_for(lambda: c.find("confirmed", nick=c.user, by="bob", seq=1, session=s1), 10,
                       f"{c.user}: bob confirmed its line #1")
    check(True, "the reference members accepted bob's view digest (confirmed by bob)")
    # heartbeats (R-DATA-14) both ways: theirs answer bob's Data, bob's answers alice's Data
    for c in ("alice", "carol"):
        await wait_for(lambda: bob.kinds("heartbeat", nick=c, session_id=s1), 10,
                       f"bob receives {c}'s heartbeat")
    check(True, "bob verified the reference members' heartbeats")
    alice.command(cmd="send", text="alice again")
    sent = await wait_for(lambda: alice.find("sent", message="alice again", session=s1), 10,
                          "alice sent her second line")
    aseq = sent[-1]["seq"]
    await wait_for(lambda: any(t == 0x11 for _, t, _ in bob.sent), 10, "bob sends a heartbeat")
    await wait_for(lambda: alice.find("confirmed", nick="alice", by="bob", seq=aseq, session=s1), 10,
                   f"alice: bob's heartbeat confirms her line #{aseq}")
    check(True, f"bob's heartbeat confirmed alice's #{aseq} at the reference")

    # 3. dave joins: re-key; the old session shuts down cleanly on every side
    await dave.start()
    four = ["alice", "bob", "carol", "dave"]
    s2 = await wait_for(lambda: our_session(bob, four), 30, "bob establishes the session of four")
    for c in (alice, carol, dave):
        sx = await wait_for(lambda: last_secure(c, four), 15, f"{c.user} secure with four")
        check(sx == s2, f"{c.user} reports the new session id {s2[:16]}")
    check(s2 != s1, "the re-key gave a new session id")
    await wait_for(lambda: bob.kinds("key_published", session_id=s1), 20, "bob published its key of s1")
    check(bob.kinds("transcript_consistent", session_id=s1), "bob: s1 transcript consistent")
    for c in (alice, carol):
        await wait_for(lambda: c.find("transcript_consistent", session=s1), 15,
                       f"{c.user}: s1 transcript consistent")
        await wait_for(lambda: c.find("peer_key_published", nick="bob", session=s1), 15,
                       f"{c.user} accepted bob's s1 key")
    check(True, "s1 shut down with consistent transcripts and bob's key accepted by the others")
    bob.send_text("bob after the re-key")
    await wait_for(lambda: dave.find("message", nick="bob", session=s2, message="bob after the re-key"),
                   10, "dave shows bob's line")
    dave.command(cmd="send", text="dave here")
    await wait_for(lambda: bob.kinds("message_received", nick="dave", text="dave here", session_id=s2),
                   10, "bob shows dave's line")
    check(True, "lines both ways with the late joiner in the new session")

    # 4. bob leaves: shutdown with transcripts consistent and keys published on every side
    bob.leave()
    for c in (alice, carol, dave):
        await wait_for(lambda: c.find("transcript_consistent", session=s2), 20,
                       f"{c.user}: s2 transcript consistent")
        await wait_for(lambda: c.find("key_published", session=s2), 20, f"{c.user} published its key")
        await wait_for(lambda: c.find("peer_key_published", nick="bob", session=s2), 20,
                       f"{c.user} accepted bob's published key")
    check(True, "the reference members report s2 consistent, published, and accepted bob's key")
    await wait_for(lambda: bob.kinds("ready_to_leave"), 20, "bob ready to leave")
    check(bob.kinds("transcript_consistent", session_id=s2), "bob: s2 transcript consistent")
    check(bob.kinds("key_published", session_id=s2), "bob published its key of s2")
    await wait_for(lambda: len(bob.kinds("peer_key_published", session_id=s2)) == 3, 20,
                   "bob accepted the three others' keys")
    check(True, "bob accepted alice's, carol's and dave's published keys")
    bob.send_leave()
    await asyncio.sleep(0.3)

    # nothing we sent was rejected or reported as an attack by the reference clients
    for c in chats:
        bad = [e for e in c.events if e.get("severity") == "alert"]
        check(not bad, f"{c.user}: no alert ({bad[:2]})")
        bad = [e for e in c.events if e.get("nick") == "bob" and e.get("code") not in
               (None, "unknown_session", "replay")]
        check(not bad, f"{c.user}: nothing from bob rejected but other sessions' traffic ({bad[:2]})")
    check(not [r for r in bob.rejections if r[1] not in ("UnknownSession", "Replay")],
          f"bob rejected nothing but other sessions' traffic ({bob.rejections[:3]})")


async def amain(args):
    work = tempfile.mkdtemp(prefix="mpotr-conformance-")
    server = Server(args.server_script, work)
    chats: list[Chat] = []
    holder: list[Member] = []
    ok = False
    try:
        await asyncio.wait_for(scenario(args, work, server, chats, holder), args.timeout)
        ok = True
    except Failure as e:
        say(f"FAIL: {e}")
    except asyncio.TimeoutError:
        say(f"FAIL: the scenario took more than {args.timeout} s")
    finally:
        for c in chats:
            await c.stop()
        for m in holder:
            try:
                m.disconnect()
                await asyncio.sleep(0.2)
            except Exception:
                pass
        server.stop()
        if not ok or args.verbose:
            for c in chats:
                tail = [json.dumps(e) for e in c.events
                        if e.get("severity") in ("warning", "alert") or e.get("event") in
                        ("secure", "transcript_consistent", "key_published", "closing",
                         "transcript_mismatch", "command_error")]
                say(f"--- {c.user}: notable events ---\n" + "\n".join(tail[-40:]))
                if c.stderr:
                    say(f"--- {c.user} stderr ---\n{c.stderr.decode(errors='replace')[-2000:]}")
            for m in holder:
                say("--- bob (independent) events ---\n" +
                    "\n".join(str(e.as_dict()) for _, e in m.events[-60:]))
                say(f"--- bob rejections ---\n{m.rejections[-20:]}")
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chat", required=True, help="path to the reference mpotr-chat")
    ap.add_argument("--server-script", default=os.path.join(ROOT, "testserver", "ejabberd-test"))
    ap.add_argument("--timeout", type=float, default=110)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")
    if not os.access(args.chat, os.X_OK):
        print(f"FAIL: {args.chat} is not executable")
        return 1
    ok = asyncio.run(amain(args))
    say("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
