import datetime
import json
import time
import unittest
import uuid

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.test.utils import override_settings

from sidecar_hooks import HookError, HookRequest, sidecar_hook, signed_headers
from sidecar_hooks.tests import OLD_SECRET, SECRET


def body_of(**fields):
    data = {
        "event": "receive",
        "route": "/ws/chat/project/{project_id:int}/",
        "path": "/ws/chat/project/7/",
        "params": {"project_id": 7},
        "user": {"id": "42", "authenticated": True},
        "channel": "specific.abc!def",
        "handler": "message",
        "frame": {"type": "message", "message": "hi"},
    }
    data.update(fields)
    return json.dumps(data).encode()


def post(view, body, secret=SECRET, ts=None, headers=None):
    h = signed_headers(body, secret, ts) if headers is None else headers
    request = RequestFactory().post("/hook/", data=body, content_type="application/json", **h)
    return view(request)


def answer_of(response):
    return json.loads(response.content)


class Recorder:
    """A hook view that records what it was given and returns a set answer."""

    def __init__(self, answer=None):
        self.answer = answer
        self.calls = []

    def __call__(self, request, hook, *args, **kwargs):
        self.calls.append((hook, args, kwargs))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class DecoratorTest(unittest.TestCase):
    def test_parses_request_and_sends_answer(self):
        rec = Recorder({"event": {"message_id": 5, "at": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
                                  "uid": uuid.UUID(int=1)}, "reply": [{"type": "ack"}]})
        view = sidecar_hook(rec)
        request = RequestFactory().post("/hook/", data=body_of(), content_type="application/json", **signed_headers(body_of(), SECRET))
        response = view(request, 7, room="x")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Content-Type"], "application/json")
        self.assertEqual(answer_of(response), {
            "event": {"message_id": 5, "at": "2024-01-02T03:04:05Z", "uid": "00000000-0000-0000-0000-000000000001"},
            "reply": [{"type": "ack"}],
        })
        hook, args, kwargs = rec.calls[0]
        self.assertEqual((args, kwargs), ((7,), {"room": "x"}))
        self.assertIsInstance(hook, HookRequest)
        self.assertEqual(hook.event, "receive")
        self.assertEqual(hook.route, "/ws/chat/project/{project_id:int}/")
        self.assertEqual(hook.path, "/ws/chat/project/7/")
        self.assertEqual(hook.params, {"project_id": 7})
        self.assertEqual(hook.user_id, "42")
        self.assertIs(hook.authenticated, True)
        self.assertEqual(hook.channel, "specific.abc!def")
        self.assertEqual(hook.handler, "message")
        self.assertEqual(hook.frame, {"type": "message", "message": "hi"})
        self.assertNotIn("hi", repr(hook))

    def test_defaults_for_missing_keys(self):
        rec = Recorder({"allow": True})
        response = post(sidecar_hook(rec), json.dumps({"event": "authorize", "user": {"id": None, "authenticated": False}}).encode())
        self.assertEqual(answer_of(response), {"allow": True})
        hook = rec.calls[0][0]
        self.assertEqual((hook.route, hook.path, hook.params, hook.user_id, hook.authenticated, hook.channel, hook.handler, hook.frame),
                         ("", "", {}, None, False, "", "", {}))

    def test_old_secret_still_accepted(self):
        self.assertEqual(post(sidecar_hook(Recorder({})), body_of(), secret=OLD_SECRET).status_code, 200)

    def test_refused_signatures(self):
        rec = Recorder({})
        view = sidecar_hook(rec)
        cases = [
            ("bad_signature", signed_headers(body_of(), "some-other-secret")),
            ("bad_signature", {"HTTP_X_SIDECAR_TIMESTAMP": str(int(time.time()))}),
            ("stale_timestamp", signed_headers(body_of(), SECRET, int(time.time()) - 301)),
            ("stale_timestamp", signed_headers(body_of(), SECRET, int(time.time()) + 400)),
            ("stale_timestamp", {}),
        ]
        with self.assertLogs("sidecar_hooks", "WARNING") as logs:
            for code, headers in cases:
                response = post(view, body_of(), headers=headers)
                self.assertEqual(response.status_code, 403, code)
                self.assertEqual(answer_of(response)["error"], code)
                self.assertTrue(answer_of(response)["message"])
            # A body changed after signing.
            headers = signed_headers(body_of(), SECRET)
            response = post(view, body_of(channel="specific.other!x"), headers=headers)
            self.assertEqual((response.status_code, answer_of(response)["error"]), (403, "bad_signature"))
        self.assertEqual(rec.calls, [])
        self.assertEqual(len(logs.output), len(cases) + 1)
        for line in logs.output:
            self.assertIn("refused hook call to /hook/", line)
            self.assertNotIn(SECRET, line)

    def test_method(self):
        response = sidecar_hook(Recorder({}))(RequestFactory().get("/hook/"))
        self.assertEqual(response.status_code, 405)
        self.assertEqual(response["Allow"], "POST")
        self.assertEqual(answer_of(response)["error"], "method_not_allowed")

    def test_bad_bodies(self):
        view = sidecar_hook(Recorder({}))
        for body, words in [
            (b"not json", "not valid JSON"),
            (b"\xff\xfe", "not valid JSON"),
            (b"[]", "JSON object"),
            (body_of(event="message"), "'event'"),
            (body_of(event=None), "'event'"),
            (body_of(user={"id": 42, "authenticated": True}), "user.id"),
            (body_of(user={"id": "1", "authenticated": "yes"}), "authenticated"),
            (body_of(user={"id": "1", "authenticated": 1}), "authenticated"),
            (body_of(user=None), "'user'"),
            (body_of(params=[1]), "'params'"),
            (body_of(frame="hi"), "'frame'"),
            (body_of(handler=3), "'handler'"),
            (body_of(route=None), "'route'"),
        ]:
            response = post(view, body)
            self.assertEqual(response.status_code, 400, body)
            self.assertEqual(answer_of(response)["error"], "bad_request")
            self.assertIn(words, answer_of(response)["message"])

    def test_events_filter(self):
        view = sidecar_hook(events=["authorize"])(Recorder({"allow": False}))
        response = post(view, body_of())
        self.assertEqual((response.status_code, answer_of(response)["error"]), (400, "unexpected_event"))
        self.assertEqual(answer_of(post(view, body_of(event="authorize"))), {"allow": False})
        with self.assertRaises(ValueError):
            sidecar_hook(events=["message"])

    def test_hook_error(self):
        response = post(sidecar_hook(Recorder(HookError("not_member", "join the project first"))), body_of())
        self.assertEqual(response.status_code, 200)
        self.assertEqual(answer_of(response), {"error": {"error": "not_member", "message": "join the project first"}})

    def test_answers(self):
        self.assertEqual(answer_of(post(sidecar_hook(Recorder(None)), body_of())), {})
        passthrough = HttpResponse("custom", status=202)
        self.assertIs(post(sidecar_hook(Recorder(passthrough)), body_of()), passthrough)
        # Mistakes are raised in Django, where the traceback shows them.
        for answer, event in [
            ([1], "receive"),
            ({"alow": True}, "authorize"),
            ({"allow": "yes"}, "receive"),
            (None, "authorize"),
            ({}, "authorize"),
            ({"reply": []}, "authorize"),
        ]:
            with self.assertRaises(TypeError, msg=(answer, event)):
                post(sidecar_hook(Recorder(answer)), body_of(event=event))

    def test_csrf_exempt_through_middleware(self):
        # CsrfViewMiddleware would refuse an unmarked POST without a token.
        client = Client(enforce_csrf_checks=True)
        body = body_of(event="connect")
        response = client.post("/hook/9/", data=body, content_type="application/json", **signed_headers(body, SECRET))
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(answer_of(response), {"reply": [{"type": "seen", "project_id": 9, "event": "connect"}]})


class SettingsTest(unittest.TestCase):
    def test_single_secret(self):
        with override_settings(SIDECAR_HOOK_SECRETS=None, SIDECAR_HOOK_SECRET="a-single-secret-value"):
            self.assertEqual(post(sidecar_hook(Recorder({})), body_of(), secret="a-single-secret-value").status_code, 200)

    def test_misconfigured(self):
        for kwargs in [
            {"SIDECAR_HOOK_SECRETS": []},
            {"SIDECAR_HOOK_SECRETS": "one-string-not-a-list"},
            {"SIDECAR_HOOK_SECRETS": [SECRET, ""]},
            {"SIDECAR_HOOK_SECRETS": None, "SIDECAR_HOOK_SECRET": None},
        ]:
            with override_settings(**kwargs), self.assertRaises(ImproperlyConfigured, msg=kwargs):
                post(sidecar_hook(Recorder({})), body_of())


class GetUserTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)

    def test_get_user(self):
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.create_user("alice", password="x")
        self.assertEqual(HookRequest("connect", user_id=str(user.pk), authenticated=True).get_user(), user)
        for hook in [
            HookRequest("connect", user_id=str(user.pk), authenticated=False),
            HookRequest("connect", user_id=None, authenticated=True),
            HookRequest("connect", user_id="999999", authenticated=True),
            HookRequest("connect", user_id="not-a-number", authenticated=True),
        ]:
            self.assertFalse(hook.get_user().is_authenticated, hook)


if __name__ == "__main__":
    unittest.main()
