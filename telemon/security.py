"""Secrets: device tokens and API keys (random, stored as SHA-256), clinician passwords (argon2id)."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def new_secret(prefix: str) -> str:
    """A random secret with a readable prefix (``tmd_`` device token, ``tmk_`` API key)."""
    return f"{prefix}{secrets.token_urlsafe(32)}"


def secret_hash(secret: str) -> bytes:
    """Tokens and keys carry 256 random bits, so a fast hash is enough to store them safely."""
    return hashlib.sha256(secret.encode()).digest()


def nightscout_secret(token: str) -> str:
    """What a Nightscout uploader sends in ``api-secret`` when the token is its API secret: SHA-1 hex."""
    return hashlib.sha1(token.encode()).hexdigest()  # noqa: S324 - Nightscout's protocol, not our storage


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
