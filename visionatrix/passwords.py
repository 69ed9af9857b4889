"""Password hashes: bcrypt over an HMAC-SHA256 digest of the password, so any length counts.

bcrypt reads at most 72 bytes (the bcrypt package refuses more). A new hash is
``$vix-sha256$`` + bcrypt(base64(HMAC-SHA256(key=bcrypt salt, password))): every byte of a long
password matters, and a leaked unsalted SHA-256 list cannot be matched against it. Hashes made
before (plain bcrypt of a password of at most 72 bytes) keep verifying as they are.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac

import bcrypt

PREFIX = "$vix-sha256$"
ROUNDS = 12
# a password is a secret, not a document: far beyond any real one is refused when it is set
MAX_PASSWORD_BYTES = 1024
_BCRYPT_LIMIT = 72
_SALT_LENGTH = 29  # "$2b$12$" + 22 characters


def _digest(password: bytes, salt: bytes) -> bytes:
    return base64.b64encode(hmac.new(salt, password, hashlib.sha256).digest())


def hash_password(password: str) -> str:
    salt = bcrypt.gensalt(rounds=ROUNDS)
    return PREFIX + bcrypt.hashpw(_digest(password.encode(), salt), salt).decode()


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (either scheme). Costs one bcrypt either way."""
    raw = password.encode()
    if stored.startswith(PREFIX):
        hashed = stored[len(PREFIX) :].encode()
        return bcrypt.checkpw(_digest(raw, hashed[:_SALT_LENGTH]), hashed)
    if len(raw) > _BCRYPT_LIMIT:
        # an old-scheme hash never came from such a password; pay the same cost, then say no
        bcrypt.checkpw(raw[:_BCRYPT_LIMIT], stored.encode())
        return False
    return bcrypt.checkpw(raw, stored.encode())


@functools.cache
def dummy_hash() -> str:
    """Checked against when the user does not exist, so that answer takes as long as a wrong password."""
    return hash_password("no such user: this hash only burns the time a real check takes")
