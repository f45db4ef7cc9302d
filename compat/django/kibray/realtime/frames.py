"""Shared pieces of frames: timestamps and error frames."""
from datetime import datetime

# Close codes after the handshake was accepted: the credential expired or
# was revoked (the client should log in again), or the user may no longer
# use this socket. Refusals before accept stay HTTP 403, as in Channels.
CLOSE_AUTH_EXPIRED = 4001
CLOSE_FORBIDDEN = 4003


def now_iso():
    """Kibray's timestamp: datetime.now().isoformat(), a naive local time
    (Django sets the process's TZ from TIME_ZONE)."""
    return datetime.now().isoformat()


def error_frame(error, message, **extra):
    """An error frame; the socket stays open after it."""
    frame = {"type": "error", "error": error, "message": message}
    frame.update(extra)
    return frame


def rate_limit_frame(limit):
    """Kibray's rate-limit error frame, word for word."""
    return error_frame(
        "rate_limit_exceeded",
        "Rate limit exceeded. Maximum %d messages per minute." % limit,
        retry_after=60,
    )


def as_int(value):
    """An id from a frame or a path: an int, or a string of ASCII digits;
    None for anything else (bools, floats, other text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None
