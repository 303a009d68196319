"""Operators and scripts of the fleet dashboard: roles, password hashes and API tokens; stdlib only.

A password is kept as ``scrypt$n$r$p$salt$hash`` (hex): its own random salt and the cost it was
hashed with, so the cost can be raised later without locking anyone out. An API token is shown
once when it is made and only its SHA-256 is kept: a copy of the database lets nobody in.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

# scrypt's cost: 16 MiB and about 50 ms a login on a small server; a guess costs the same.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
PASSWORD_MIN_CHARS = 10
PASSWORD_MAX_CHARS = 1024  # scrypt of a megabyte is a denial of service, not a password
TOKEN_PREFIX = "kft_"

_ACCOUNT_NAME = re.compile(r"[a-z][a-z0-9._-]{0,31}")


class Role(enum.StrEnum):
    """``viewer`` reads everything; ``operator`` also acknowledges and sends commands."""

    VIEWER = "viewer"
    OPERATOR = "operator"

    @property
    def may_act(self) -> bool:
        return self is Role.OPERATOR


class AccountError(ValueError):
    """An account name, password or role that cannot be used (the message says why)."""


@dataclass(frozen=True)
class Principal:
    """Who makes a request: an operator logged in on a page, or a script with a token."""

    name: str
    role: Role
    via_token: bool = False

    @property
    def label(self) -> str:
        """How the store records who acknowledged: ``li.wei`` or ``token:nightly-report``."""
        return f"token:{self.name}" if self.via_token else self.name


def check_account_name(name: str) -> str:
    if not _ACCOUNT_NAME.fullmatch(name):
        raise AccountError("a name is 1-32 characters: a-z first, then a-z 0-9 . _ -")
    return name


def check_password(password: str) -> str:
    if not PASSWORD_MIN_CHARS <= len(password) <= PASSWORD_MAX_CHARS:
        raise AccountError(f"a password has {PASSWORD_MIN_CHARS}-{PASSWORD_MAX_CHARS} characters")
    return password


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=HASH_BYTES,
                          maxmem=256 * n * r + 1024 * 1024)


def hash_password(password: str) -> str:
    """The stored form of ``password`` with a new random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(check_password(password), salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


# Hashed once at import so an unknown name costs a login as much as a wrong password.
_DUMMY_HASH = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${'00' * SALT_BYTES}${'00' * HASH_BYTES}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time compare); None (no such account)
    is checked against a dummy so the answer takes as long and is always False."""
    if len(password) > PASSWORD_MAX_CHARS:
        return False
    try:
        scheme, n, r, p, salt, digest = (stored or _DUMMY_HASH).split("$")
        if scheme != "scrypt":
            return False
        found = _scrypt(password, bytes.fromhex(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(found, bytes.fromhex(digest)) and stored is not None


def new_token() -> str:
    """A new API token (shown once): a prefix that says what it is and 256 random bits."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the store keeps of a token, and looks it up by."""
    return hashlib.sha256(token.encode()).hexdigest()
