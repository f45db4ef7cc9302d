#!/usr/bin/python3
"""Mint and check Django credentials with the real libraries, for Go tests.

The Go tests of the auth package run this script with Debian's Python
(Django, djangorestframework-simplejwt, PyJWT) to create session cookies and
access tokens at test time and to ask the libraries for their verdict on any
credential, under a clock the test chooses.

Input (stdin): one JSON object
    {"secret_key": str,
     "secret_key_fallbacks": [str],   # used only where Django supports it (>= 4.1)
     "session_cookie_age": int,       # SESSION_COOKIE_AGE
     "simple_jwt": {...},             # SIMPLE_JWT overrides, e.g. {"LEEWAY": 30}
     "ops": [op, ...]}

Output (stdout): {"versions": {...}, "supports_fallbacks": bool, "results": [...]}
with one result per op, in order. Every op takes "at", the Unix time at which
it runs (time.time(), PyJWT's and simplejwt's clocks are pinned to it).

Ops:
  mint_session   {"data": {...}, "salt"?, "key"?, "compress"?}
                 -> {"value": cookie value}. Without salt/key/compress the real
                    signed_cookies SessionStore saves the data.
  check_session  {"value"} -> {"session": dict the signed_cookies engine loads}
  loads          {"value", "salt", "max_age"} -> {"ok", "result" | "error"}
  mint_token     {"class": "access"|"refresh"|"sliding", "lifetime"?: seconds,
                  "claims"?: {...}, "drop"?: [claim], "key"?, "algorithm"?,
                  "pyjwt"?: bool}
                 -> {"value": token}. With "pyjwt", PyJWT's jwt.encode signs
                    directly, for algorithms this simplejwt does not accept.
  keypair        {"kind": "rsa"|"ec", "bits"?: int, "curve"?: "P-256"|"P-384"|"P-521"}
                 -> {"private": PKCS#8 PEM, "public": SubjectPublicKeyInfo PEM,
                     "public_pkcs1"?: PKCS#1 PEM (RSA)}, made by cryptography.
  check_token    {"value"} -> AccessToken(value) and the stateless user:
                    {"ok": true, "user_id": ..} or {"ok": false, "error": ..}
  check_header   {"authorization"} -> JWTStatelessUserAuthentication.authenticate:
                    {"result": "none"|"ok"|"error", "user_id"?, "error"?}
  parse_cookie   {"header"} -> {"cookies": django.http.parse_cookie(header)}
  check_origin   {"allowed_hosts": [...], "debug"?: bool, "origins": [[header, ...], ...]}
                 -> {"results": ["accepted" | "denied" | "exception: ..."]}: each
                    list of Origin header values (latin-1) run through Channels'
                    OriginValidator(app, allowed_hosts), or, when "debug" is
                    given, AllowedHostsOriginValidator with ALLOWED_HOSTS and
                    DEBUG set, as a real ASGI app.
"""

import contextlib
import datetime
import json
import sys
import time


class Clock:
    """The pinned time; None means the real clock."""

    def __init__(self):
        self.now = None


CLOCK = Clock()
_REAL_TIME = time.time
_REAL_DATETIME = datetime.datetime


class _PinnedMeta(type):
    # Real datetimes must still pass isinstance() checks against the
    # replacement class.
    def __instancecheck__(cls, obj):
        return isinstance(obj, _REAL_DATETIME)

    def __subclasscheck__(cls, sub):
        return issubclass(sub, _REAL_DATETIME)


class PinnedDateTime(_REAL_DATETIME, metaclass=_PinnedMeta):
    @classmethod
    def now(cls, tz=None):
        if CLOCK.now is None:
            return _REAL_DATETIME.now(tz)
        return _REAL_DATETIME.fromtimestamp(CLOCK.now, tz)

    @classmethod
    def utcnow(cls):
        if CLOCK.now is None:
            return _REAL_DATETIME.utcnow()
        return _REAL_DATETIME.fromtimestamp(CLOCK.now, datetime.timezone.utc).replace(tzinfo=None)


def _pinned_time():
    return _REAL_TIME() if CLOCK.now is None else float(CLOCK.now)


@contextlib.contextmanager
def pinned(at):
    old = CLOCK.now
    CLOCK.now = at
    try:
        yield
    finally:
        CLOCK.now = old


def configure(req):
    import django
    from django.conf import settings

    conf = dict(
        DEBUG=False,
        SECRET_KEY=req["secret_key"],
        ALLOWED_HOSTS=["*"],
        USE_TZ=True,
        TIME_ZONE="UTC",
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
            "rest_framework",
        ],
        SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
        SESSION_COOKIE_AGE=int(req.get("session_cookie_age", 1209600)),
        SIMPLE_JWT=dict(req.get("simple_jwt") or {}),
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        MIDDLEWARE=[],
        LOGGING_CONFIG=None,
    )
    supports_fallbacks = django.VERSION >= (4, 1)
    if supports_fallbacks and req.get("secret_key_fallbacks"):
        conf["SECRET_KEY_FALLBACKS"] = list(req["secret_key_fallbacks"])
    settings.configure(**conf)
    django.setup()

    # Pin every clock the checks read: django.core.signing uses time.time(),
    # PyJWT and simplejwt look datetime up in their own modules.
    time.time = _pinned_time
    import jwt.api_jwt
    import rest_framework_simplejwt.utils

    for mod in (jwt.api_jwt, rest_framework_simplejwt.utils):
        if getattr(mod, "datetime", None) is _REAL_DATETIME:
            mod.datetime = PinnedDateTime
    return supports_fallbacks


def versions():
    import django
    import jwt
    import rest_framework_simplejwt

    try:
        from importlib.metadata import version

        sj = version("djangorestframework-simplejwt")
    except Exception:
        sj = getattr(rest_framework_simplejwt, "__version__", "?")
    return {"django": django.get_version(), "simplejwt": sj, "pyjwt": jwt.__version__}


def op_mint_session(op):
    from django.contrib.sessions.backends.signed_cookies import SessionStore
    from django.core import signing

    data = op["data"]
    if "salt" in op or "key" in op or "compress" in op:
        value = signing.dumps(
            data,
            key=op.get("key"),
            salt=op.get("salt", "django.contrib.sessions.backends.signed_cookies"),
            compress=op.get("compress", True),
        )
        return {"value": value}
    store = SessionStore()
    for k, v in data.items():
        store[k] = v
    store.save()
    return {"value": store.session_key}


def op_check_session(op):
    from django.contrib.sessions.backends.signed_cookies import SessionStore

    store = SessionStore(session_key=op["value"])
    return {"session": dict(store.items())}


def op_loads(op):
    from django.core import signing

    try:
        result = signing.loads(op["value"], salt=op["salt"], max_age=op.get("max_age"))
    except Exception as e:  # BadSignature, SignatureExpired, ValueError, zlib.error...
        return {"ok": False, "error": type(e).__name__}
    return {"ok": True, "result": result}


def op_mint_token(op):
    import jwt
    from rest_framework_simplejwt.backends import TokenBackend
    from rest_framework_simplejwt.tokens import AccessToken, RefreshToken, SlidingToken

    cls = {"access": AccessToken, "refresh": RefreshToken, "sliding": SlidingToken}[op.get("class", "access")]
    tok = cls()
    if "lifetime" in op:
        tok.set_exp(from_time=tok.current_time, lifetime=datetime.timedelta(seconds=op["lifetime"]))
    for k, v in (op.get("claims") or {}).items():
        tok[k] = v
    for k in op.get("drop") or ():
        del tok.payload[k]
    alg = op.get("algorithm")
    if alg == "none":
        return {"value": jwt.encode(dict(tok.payload), None, algorithm="none")}
    if op.get("pyjwt"):
        return {"value": jwt.encode(dict(tok.payload), op["key"], algorithm=alg)}
    if alg or "key" in op:
        from django.conf import settings

        backend = TokenBackend(alg or "HS256", op.get("key", settings.SECRET_KEY))
        return {"value": backend.encode(dict(tok.payload))}
    return {"value": str(tok)}


def op_keypair(op):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if op["kind"] == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(op.get("bits", 2048)))
    else:
        curve = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}[op["curve"]]
        key = ec.generate_private_key(curve())
    pem = serialization.Encoding.PEM
    out = {
        "private": key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode(),
        "public": key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
    }
    if op["kind"] == "rsa":
        out["public_pkcs1"] = key.public_key().public_bytes(pem, serialization.PublicFormat.PKCS1).decode()
    return out


def op_check_token(op):
    from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
    from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
    from rest_framework_simplejwt.tokens import AccessToken

    try:
        tok = AccessToken(op["value"])
        user = JWTStatelessUserAuthentication().get_user(tok)
    except (TokenError, InvalidToken) as e:
        return {"ok": False, "error": type(e).__name__, "detail": str(e)}
    except Exception as e:  # simplejwt crashes on some claim types (HTTP 500)
        return {"ok": False, "error": type(e).__name__, "crash": True}
    return {"ok": True, "user_id": user.id}


def op_check_header(op):
    from django.test import RequestFactory
    from rest_framework.request import Request
    from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication

    req = Request(RequestFactory().get("/", HTTP_AUTHORIZATION=op["authorization"]))
    try:
        res = JWTStatelessUserAuthentication().authenticate(req)
    except Exception as e:
        return {"result": "error", "error": type(e).__name__}
    if res is None:
        return {"result": "none"}
    return {"result": "ok", "user_id": res[0].id}


def op_parse_cookie(op):
    from django.http import parse_cookie

    return {"cookies": parse_cookie(op["header"])}


def op_check_origin(op):
    from asgiref.sync import async_to_sync
    from django.conf import settings
    from channels.security.websocket import AllowedHostsOriginValidator, OriginValidator

    def run(factory, values):
        seen = {"inner": False}

        async def inner(scope, receive, send):
            seen["inner"] = True

        scope = {"type": "websocket", "path": "/ws/", "raw_path": b"/ws/", "query_string": b"",
                 "headers": [(b"host", b"example.com")] + [(b"origin", v.encode("latin-1")) for v in values or ()],
                 "subprotocols": []}
        msgs = [{"type": "websocket.connect"}]

        async def receive():
            return msgs.pop(0) if msgs else {"type": "websocket.disconnect", "code": 1006}

        async def send(message):
            pass

        try:
            async_to_sync(factory(inner))(scope, receive, send)
        except Exception as e:  # Channels lets urlparse's ValueError through
            return "exception: %s: %s" % (type(e).__name__, e)
        return "accepted" if seen["inner"] else "denied"

    saved = settings.DEBUG, settings.ALLOWED_HOSTS
    try:
        if "debug" in op:
            settings.DEBUG, settings.ALLOWED_HOSTS = bool(op["debug"]), list(op["allowed_hosts"])
            factory = AllowedHostsOriginValidator
        else:
            hosts = list(op["allowed_hosts"])

            def factory(inner):
                return OriginValidator(inner, hosts)

        return {"results": [run(factory, values) for values in op["origins"]]}
    finally:
        settings.DEBUG, settings.ALLOWED_HOSTS = saved


OPS = {
    "mint_session": op_mint_session,
    "check_session": op_check_session,
    "loads": op_loads,
    "mint_token": op_mint_token,
    "check_token": op_check_token,
    "check_header": op_check_header,
    "parse_cookie": op_parse_cookie,
    "check_origin": op_check_origin,
    "keypair": op_keypair,
}


def main():
    req = json.load(sys.stdin)
    supports_fallbacks = configure(req)
    results = []
    for op in req["ops"]:
        fn = OPS[op["op"]]
        with pinned(op.get("at")):
            results.append(fn(op))
    json.dump(
        {"versions": versions(), "supports_fallbacks": supports_fallbacks, "results": results},
        sys.stdout,
        default=str,
    )


if __name__ == "__main__":
    main()
