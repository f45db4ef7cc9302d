"""Verification of the sidecar's signed hook calls, used until (or unless)
the shared sidecar_hooks helper package is importable.

A call carries X-Sidecar-Timestamp (Unix seconds) and X-Sidecar-Signature:
"v1=" and the lowercase hex HMAC-SHA256, keyed with a shared secret, of
"<timestamp>." followed by the raw body. A call is refused when the
timestamp is more than 300 seconds from this clock or no configured secret
matches (several secrets allow rotation).
"""
import hashlib
import hmac
import time

MAX_SKEW_SECONDS = 300


def signature(secret, timestamp, body):
    """The header value for body signed at timestamp."""
    digest = hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return "v1=" + digest.hexdigest()


def verify(secrets, timestamp, sig, body, now=None):
    """Return None if the call is genuine, else the reason it is not."""
    if not secrets:
        return "no hook secret is configured"
    if not timestamp or not timestamp.isascii() or not timestamp.isdigit():
        return "missing or malformed timestamp"
    if now is None:
        now = time.time()
    if abs(now - int(timestamp)) > MAX_SKEW_SECONDS:
        return "stale timestamp"
    if not sig or not sig.startswith("v1="):
        return "missing or malformed signature"
    ok = False
    for secret in secrets:
        # Every secret is compared, in constant time each.
        ok = hmac.compare_digest(signature(secret, timestamp, body), sig) or ok
    return None if ok else "bad signature"
