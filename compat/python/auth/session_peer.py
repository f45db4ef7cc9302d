#!/usr/bin/python3
"""Log users in and out with the real Django session engines, for Go tests.

The Go tests start this script once per Python stack and talk to it over
stdin/stdout, one JSON object per line. It runs the real
django.contrib.auth.login() and logout() against the real session store
(cache, cached_db, db, file), so whatever Django writes to Redis, the
database or the file system is what the Go side then reads.

First line (settings), one of:
    {"mode": "module"}
        use DJANGO_SETTINGS_MODULE from the environment (e.g. the reference
        project, refsite.settings, with compat/django on PYTHONPATH);
    {"mode": "inline", "secret_key": str, "db_path": str,
     "caches": {alias: {...}},            # CACHES, as in settings.py
     "session_cache_alias"?: str,          # SESSION_CACHE_ALIAS
     "session_engine"?: str}               # SESSION_ENGINE
        configure Django here and migrate a SQLite database at db_path.
It answers {"ready": true, "versions": {...}}.

Then one op per line, each answered with one line:
    {"op": "login", "username": str, "engine"?: str, "cache_alias"?: str,
     "expiry"?: int}
        create the user if needed (active, password "pw-" + username), log
        it in on a fresh session of the engine (default SESSION_ENGINE) and
        cache alias (default SESSION_CACHE_ALIAS), with
        set_expiry(timezone.now() + expiry seconds) if given
        -> {"session_key", "user_id", "cache_key"?, "redis_key"?}
    {"op": "logout", "session_key": str, "engine"?: str, "cache_alias"?: str}
        django.contrib.auth.logout() on that session -> {"ok": true}
    {"op": "load", "session_key": str, "engine"?: str, "cache_alias"?: str}
        -> {"session": the dict the engine loads (values as strings)}
Errors are answered as {"error": "..."}; the peer keeps running.
"""

import datetime
import importlib
import json
import sys


def configure(first):
    import django
    from django.conf import settings

    if first.get("mode") == "inline":
        conf = dict(
            DEBUG=False,
            SECRET_KEY=first["secret_key"],
            ALLOWED_HOSTS=["*"],
            USE_TZ=True,
            TIME_ZONE="UTC",
            INSTALLED_APPS=[
                "django.contrib.contenttypes",
                "django.contrib.auth",
                "django.contrib.sessions",
            ],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": first["db_path"]}},
            CACHES=first.get("caches") or {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
            SESSION_ENGINE=first.get("session_engine", "django.contrib.sessions.backends.cache"),
            SESSION_CACHE_ALIAS=first.get("session_cache_alias", "default"),
            DEFAULT_AUTO_FIELD="django.db.models.AutoField",
            MIDDLEWARE=[],
            LOGGING_CONFIG=None,
        )
        settings.configure(**conf)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def versions():
    import django

    out = {"django": django.get_version()}
    try:
        import django_redis

        out["django_redis"] = ".".join(map(str, django_redis.VERSION))
    except ImportError:
        pass
    try:
        import redis

        out["redis"] = redis.__version__
    except ImportError:
        pass
    return out


def new_store(op, session_key=None):
    """A SessionStore of the op's engine, bound to the op's cache alias."""
    from django.conf import settings
    from django.test.utils import override_settings

    cls = importlib.import_module(op.get("engine") or settings.SESSION_ENGINE).SessionStore
    # Cache-backed stores pick their cache when they are created.
    with override_settings(SESSION_CACHE_ALIAS=op.get("cache_alias") or settings.SESSION_CACHE_ALIAS):
        return cls(session_key)


def request_with(session):
    from django.test import RequestFactory

    req = RequestFactory().get("/")
    req.session = session
    return req


def op_login(op):
    from django.contrib.auth import get_user_model, login
    from django.utils import timezone

    User = get_user_model()
    user, created = User.objects.get_or_create(username=op["username"])
    if created:
        user.set_password("pw-" + op["username"])
        user.save()
    req = request_with(new_store(op))
    login(req, user, backend="django.contrib.auth.backends.ModelBackend")
    if "expiry" in op:
        req.session.set_expiry(timezone.now() + datetime.timedelta(seconds=op["expiry"]))
    req.session.save()
    out = {"session_key": req.session.session_key, "user_id": str(user.pk)}
    cache_key = getattr(req.session, "cache_key", None)
    if cache_key is not None:
        out["cache_key"] = cache_key
        cache = getattr(req.session, "_cache", None)
        if cache is not None:
            out["redis_key"] = cache.make_key(cache_key)
    return out


def op_logout(op):
    from django.contrib.auth import get_user, logout

    req = request_with(new_store(op, op["session_key"]))
    req.user = get_user(req)
    logout(req)
    return {"ok": True}


def op_load(op):
    session = new_store(op, op["session_key"])
    return {"session": {k: str(v) for k, v in session.items()}}


OPS = {"login": op_login, "logout": op_logout, "load": op_load}


def main():
    configure(json.loads(sys.stdin.readline()))
    print(json.dumps({"ready": True, "versions": versions()}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            op = json.loads(line)
            out = OPS[op["op"]](op)
        except Exception as e:  # reported to the test, which decides
            out = {"error": "%s: %s" % (type(e).__name__, e)}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
