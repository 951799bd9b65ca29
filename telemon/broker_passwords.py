"""Mosquitto password-file entries for device provisioning.

Device tokens are stored in the database only as hashes, so the broker's password file cannot be rebuilt from
them later. When a device is created, telemon therefore also stores ``mosquitto_password_hash(token)``: a hash in
Mosquitto 2's own ``$7$`` format (PBKDF2-HMAC-SHA512), which ``render_password_file`` turns into a password file
the broker reads (``password_file`` in ``deploy/mosquitto/mosquitto.conf``) without the token ever being kept.

Format, as written by ``mosquitto_passwd`` 2.0 and checked by the broker::

    <username>:$7$<iterations>$<base64 of a 12-byte salt>$<base64 of the 64-byte PBKDF2-HMAC-SHA512 digest>
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable

MOSQUITTO_SALT_BYTES = 12  # mosquitto 2.0 SALT_LEN; the broker reads no other salt length
MOSQUITTO_DEFAULT_ITERATIONS = 101  # mosquitto 2.0 PW_DEFAULT_ITERATIONS, what ``mosquitto_passwd`` writes

# A password-file line is ``user:hash``: a colon or line break in the user would corrupt it. ``+ # /`` in a
# username make Mosquitto deny every ``pattern`` ACL (``%u``) to that client, so such a device could never publish.
_FORBIDDEN_IN_USERNAME = frozenset(":\n\r\0+#/")


def mosquitto_password_hash(
    password: str, *, iterations: int = MOSQUITTO_DEFAULT_ITERATIONS, salt: bytes | None = None
) -> str:
    """Hash ``password`` the way ``mosquitto_passwd`` (Mosquitto 2, ``-H sha512-pbkdf2``) does.

    ``salt`` is for reproducible tests; leave it out in production so that a fresh random salt is drawn.
    Returns ``$7$<iterations>$<base64 salt>$<base64 hash>``.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, not {iterations}")
    if salt is None:
        salt = os.urandom(MOSQUITTO_SALT_BYTES)
    elif len(salt) != MOSQUITTO_SALT_BYTES:
        raise ValueError(f"salt must be {MOSQUITTO_SALT_BYTES} bytes (Mosquitto's salt length), not {len(salt)}")
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${_b64(salt)}${_b64(digest)}"


def render_password_file(entries: Iterable[tuple[str, str]]) -> str:
    """A Mosquitto password file: one ``username:hash`` line per ``(username, hash)`` entry.

    ``hash`` is a stored ``mosquitto_password_hash`` result. Raises ``ValueError`` for a username Mosquitto
    would misread (empty, duplicate, or containing ``:``, a line break, ``+``, ``#`` or ``/``) or a hash that is
    not in a ``$6$``/``$7$`` form.
    """
    lines: list[str] = []
    seen: set[str] = set()
    for username, password_hash in entries:
        if not username or _FORBIDDEN_IN_USERNAME.intersection(username):
            raise ValueError(f"username {username!r} cannot appear in a Mosquitto password file")
        if username in seen:
            raise ValueError(f"username {username!r} appears twice")
        if not password_hash.startswith(("$6$", "$7$")) or any(c in password_hash for c in ":\n\r\0"):
            raise ValueError(f"password hash for {username!r} is not a Mosquitto hash")
        seen.add(username)
        lines.append(f"{username}:{password_hash}\n")
    return "".join(lines)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
