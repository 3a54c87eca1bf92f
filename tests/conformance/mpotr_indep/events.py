"""Engine outputs: events (spec Appendix B) and what one call returns."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Event:
    kind: str                    # snake_case, as session.json spells them
    nick: str | None = None
    nicks: list | None = None
    session_id: bytes | None = None
    seq: int | None = None
    seq_end: int | None = None
    text: str | None = None
    late: bool | None = None
    by: str | None = None
    code: str | None = None
    detail: str | None = None
    data: bytes | None = None

    def as_dict(self) -> dict:
        """The set fields, as session.json lists them (Appendix B, "Names in the vectors"): a
        field is unset when it is empty, 0, false or absent; detail is left out (free text);
        late is written only when true, seq and seq_end only when not 0."""
        out = {"kind": self.kind}
        for k in ("nick", "nicks", "seq", "seq_end", "text", "by", "code", "data", "session_id"):
            v = getattr(self, k)
            if v is None or v == 0 or (isinstance(v, (str, bytes, list)) and len(v) == 0):
                continue
            if k == "session_id" and v == bytes(32):
                continue
            out[k] = v.hex() if isinstance(v, bytes) else v
        if self.late:
            out["late"] = True
        return out


@dataclass
class Output:
    broadcasts: list = field(default_factory=list)   # payloads (bytes) to send to the room
    events: list = field(default_factory=list)       # Event
    wake_at: int | None = None                        # call tick() no later than this (ms)

    def emit(self, kind: str, **kw) -> Event:
        ev = Event(kind, **kw)
        self.events.append(ev)
        return ev
