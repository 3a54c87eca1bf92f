"""Error codes (spec/mpotr.md Appendix A) and the exception that carries one."""
from __future__ import annotations

import enum
import re


class ErrorCode(enum.IntEnum):
    Crypto = 1
    Storage = 2
    InvalidArgument = 10
    InvalidState = 11
    NotReady = 12
    DecodeTruncated = 20
    DecodeTrailingBytes = 21
    DecodeBadVersion = 22
    DecodeUnknownType = 23
    DecodeOversize = 24
    DecodeBadValue = 25
    UnknownSession = 40
    UnexpectedMessage = 41
    NickMismatch = 42
    NotAMember = 43
    RosterMismatch = 44
    BadSignature = 45
    BadMac = 46
    SessionIdMismatch = 47
    TranscriptMismatch = 48
    GroupKeyMismatch = 49
    Duplicate = 50
    Equivocation = 51
    KeyRevoked = 52
    BadKeyReveal = 53
    SplitView = 54
    LimitExceeded = 55
    IdentityBlocked = 56
    IdentityChanged = 57
    Replay = 58
    IdentityUnverified = 59
    FalseAccusation = 60
    Internal = 90

    @property
    def snake(self) -> str:
        """The spelling the vectors use: DecodeBadValue -> decode_bad_value."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).lower()

    @classmethod
    def from_snake(cls, s: str) -> "ErrorCode":
        for c in cls:
            if c.snake == s:
                return c
        raise KeyError(s)


class MpotrError(Exception):
    def __init__(self, code: ErrorCode, detail: str = ""):
        super().__init__(f"{code.name}: {detail}")
        self.code = code
        self.detail = detail
