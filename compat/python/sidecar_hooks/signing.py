"""Signatures of the hook protocol.

The sidecar signs every call with HMAC-SHA256 over ``b"<timestamp>." +
body``, keyed with a shared secret, and sends::

    X-Sidecar-Timestamp: <unix seconds>
    X-Sidecar-Signature: v1=<lowercase hex digest>

A receiver accepts the call when the timestamp is within MAX_CLOCK_SKEW
seconds of its own clock and the digest matches one of its secrets.
"""
import hashlib
import hmac
import re
import time

#: How far, in seconds, a timestamp may be from this clock either way.
MAX_CLOCK_SKEW = 300

#: The signature scheme's version prefix.
SIGNATURE_VERSION = "v1"

TIMESTAMP_HEADER = "X-Sidecar-Timestamp"
SIGNATURE_HEADER = "X-Sidecar-Signature"

_TIMESTAMP_RE = re.compile(r"[0-9]{1,19}")
_SIGNATURE_RE = re.compile(r"v1=[0-9a-f]{64}")


class SignatureError(Exception):
    """A call whose signature or timestamp does not check out.

    ``code`` is ``"bad_signature"`` or ``"stale_timestamp"``; the message
    says why, and never contains a secret.
    """

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def _as_bytes(value):
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError("expected str or bytes, not %s" % type(value).__name__)


def sign(body, secret, ts):
    """Return the X-Sidecar-Signature value of ``body`` signed at Unix time
    ``ts`` with ``secret`` (str or bytes): ``"v1=<hex>"``."""
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise TypeError("ts must be whole Unix seconds (int)")
    mac = hmac.new(_as_bytes(secret), b"%d." % ts + _as_bytes(body), hashlib.sha256)
    return SIGNATURE_VERSION + "=" + mac.hexdigest()


def signed_headers(body, secret, ts=None):
    """Return the two signature headers for ``body``, keyed as Django's
    request.META names them, for Django's test client:
    ``client.post(url, body, content_type="application/json",
    **signed_headers(body, secret))``. ``ts`` defaults to now."""
    if ts is None:
        ts = int(time.time())
    return {
        "HTTP_X_SIDECAR_TIMESTAMP": str(ts),
        "HTTP_X_SIDECAR_SIGNATURE": sign(body, secret, ts),
    }


def verify(body, timestamp, signature, secrets, now=None):
    """Check a signed body: ``timestamp`` and ``signature`` are the header
    values (None when absent), ``secrets`` a list of accepted secrets, of
    which any may match. Raise SignatureError when the call must be
    refused. The digest comparison takes constant time."""
    if now is None:
        now = time.time()
    if not timestamp:
        raise SignatureError("stale_timestamp", "missing %s header" % TIMESTAMP_HEADER)
    if not _TIMESTAMP_RE.fullmatch(timestamp):
        raise SignatureError("stale_timestamp", "%s is not whole Unix seconds" % TIMESTAMP_HEADER)
    ts = int(timestamp)
    skew = abs(int(now) - ts)
    if skew > MAX_CLOCK_SKEW:
        raise SignatureError(
            "stale_timestamp",
            "timestamp is %d s from this clock, more than %d s" % (skew, MAX_CLOCK_SKEW),
        )
    if not signature:
        raise SignatureError("bad_signature", "missing %s header" % SIGNATURE_HEADER)
    if not _SIGNATURE_RE.fullmatch(signature):
        raise SignatureError("bad_signature", "signature must be v1= and 64 lowercase hex digits")
    given = signature.encode("ascii")
    matched = False
    body = _as_bytes(body)
    for secret in secrets:
        # Every secret is tried, so the time taken does not tell which
        # one matched.
        if hmac.compare_digest(sign(body, secret, ts).encode("ascii"), given):
            matched = True
    if not matched:
        raise SignatureError("bad_signature", "signature matches no configured secret")
