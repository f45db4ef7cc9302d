"""Unit tests of the kibray app's building blocks; the consumers and the
hook views are tested end to end from Go (compat/kibray_*_test.go).

    cd compat/django && /usr/bin/python3 manage.py test kibray
"""
import datetime

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import TestCase, override_settings

from kibray.auth_middleware import credential_problem
from kibray.ratelimit import WINDOW_SECONDS, allow_frame
from kibray.realtime.chat import message_text
from kibray.realtime.frames import as_int, rate_limit_frame
from kibray.realtime.outcome import Outcome
from kibray.sanitize import sanitize_message


class SanitizeTests(TestCase):
    """The examples of Kibray's sanitize_message (spec §2.1)."""

    def test_examples(self):
        cases = {
            "<b>hi</b> & 'x'": "&lt;b&gt;hi&lt;/b&gt; &amp; &#x27;x&#x27;",
            "<script>alert(1)</script>": "&lt;script&gt;&lt;/script&gt;",
            "someone=1": "some1",
            "call alert(boss)": "call ",
            "plain text": "plain text",
            'say "hi"': "say &quot;hi&quot;",
        }
        for text, want in cases.items():
            with self.subTest(text=text):
                self.assertEqual(sanitize_message(text), want)


class MessageTextTests(TestCase):
    def test_unwraps_the_react_clients_double_wrapping(self):
        self.assertEqual(message_text({"message": {"type": "chat_message", "message": "hi"}}), "hi")
        self.assertEqual(message_text({"message": {"message": {"message": "deep"}}}), "deep")

    def test_refuses_what_is_not_text(self):
        nested = "x"
        for _ in range(10):
            nested = {"message": nested}
        for frame in ({}, {"message": ""}, {"message": " \n"}, {"message": 3}, {"message": None},
                      {"message": {"text": "x"}}, {"message": nested}, {"message": "x" * 4001}):
            with self.subTest(frame=str(frame)[:40]):
                out = message_text(frame)
                self.assertIsInstance(out, Outcome)
                self.assertEqual(out.error[0], "invalid_message")


class AsIntTests(TestCase):
    def test_ids(self):
        self.assertEqual(as_int(5), 5)
        self.assertEqual(as_int("0012"), 12)
        for bad in (True, 1.5, "1.5", "", "-3", "١٢", None, [], "9" * 19):
            with self.subTest(bad=bad):
                self.assertIsNone(as_int(bad))


class RateLimitTests(TestCase):
    def setUp(self):
        cache.clear()

    def test_rolling_window(self):
        t0 = 1000.0
        for i in range(3):
            self.assertTrue(allow_frame(1, "C", 3, now=t0 + i))
        # Over the limit: refused, and a refusal is not counted.
        self.assertFalse(allow_frame(1, "C", 3, now=t0 + 10))
        self.assertFalse(allow_frame(1, "C", 3, now=t0 + 20))
        # Once the first frame is a minute old, one more fits; not two.
        self.assertTrue(allow_frame(1, "C", 3, now=t0 + WINDOW_SECONDS + 0.5))
        self.assertFalse(allow_frame(1, "C", 3, now=t0 + WINDOW_SECONDS + 0.6))

    def test_keys_are_per_user_and_consumer(self):
        self.assertTrue(allow_frame(1, "A", 1, now=5.0))
        self.assertFalse(allow_frame(1, "A", 1, now=5.0))
        self.assertTrue(allow_frame(2, "A", 1, now=5.0))
        self.assertTrue(allow_frame(1, "B", 1, now=5.0))

    def test_frame_is_kibrays(self):
        self.assertEqual(
            rate_limit_frame(30),
            {
                "type": "error",
                "error": "rate_limit_exceeded",
                "message": "Rate limit exceeded. Maximum 30 messages per minute.",
                "retry_after": 60,
            },
        )


class OutcomeTests(TestCase):
    def test_hook_answer(self):
        out = Outcome(allow=True, reply=[{"type": "x"}], join=["g"]).send("g", {"type": "e", "a": 1})
        self.assertEqual(
            out.to_hook_answer(),
            {"allow": True, "reply": [{"type": "x"}], "join": ["g"], "group_send": [{"group": "g", "event": {"type": "e", "a": 1}}]},
        )
        self.assertEqual(out.to_hook_answer(merge_event=True)["event"], {"a": 1})
        self.assertNotIn("group_send", out.to_hook_answer(merge_event=True))
        self.assertEqual(Outcome().to_hook_answer(), {})
        self.assertEqual(Outcome.fail("c", "m").to_hook_answer(), {"error": {"error": "c", "message": "m"}})
        self.assertEqual(Outcome.closing(4003, "forbidden").to_hook_answer(), {"close": {"code": 4003, "reason": "forbidden"}})
        two = Outcome().send("a", {"type": "x"}).send("b", {"type": "y"})
        self.assertEqual(len(two.to_hook_answer(merge_event=True)["group_send"]), 2)


class CredentialProblemTests(TestCase):
    def setUp(self):
        self.user = get_user_model().objects.create(username="alice")

    def token(self, seconds):
        from rest_framework_simplejwt.tokens import AccessToken

        token = AccessToken.for_user(self.user)
        token.set_exp(from_time=token.current_time, lifetime=datetime.timedelta(seconds=seconds))
        return str(token)

    def test_tokens(self):
        scope = {"kibray_auth": {"method": "jwt", "token": self.token(60)}}
        self.assertIsNone(credential_problem(scope, self.user))
        scope = {"kibray_auth": {"method": "jwt", "token": self.token(-1)}}
        self.assertEqual(credential_problem(scope, self.user), "jwt_expired")
        self.user.is_active = False
        self.user.save()
        scope = {"kibray_auth": {"method": "jwt", "token": self.token(60)}}
        self.assertEqual(credential_problem(scope, self.user), "jwt_expired")

    def test_sessions(self):
        from django.test import Client

        client = Client()
        client.force_login(self.user)
        key = client.session.session_key
        scope = {"kibray_auth": {"method": "session", "session_key": key}}
        self.assertIsNone(credential_problem(scope, self.user))
        client.logout()
        self.assertEqual(credential_problem(scope, self.user), "session_expired")
        self.assertEqual(credential_problem({"kibray_auth": {"method": "session"}}, self.user), "session_expired")


class TestAPISwitchTests(TestCase):
    @override_settings(KIBRAY_TEST_API=False)
    def test_off_by_default(self):
        for path in ("reset", "fixtures", "credentials", "op", "publish"):
            with self.subTest(path=path):
                response = self.client.post("/internal/kibray/%s/" % path, "{}", content_type="application/json")
                self.assertEqual(response.status_code, 404)

    @override_settings(KIBRAY_TEST_API=True)
    def test_bad_requests_are_400(self):
        response = self.client.post("/internal/kibray/publish/", '{"kind": "nope"}', content_type="application/json")
        self.assertEqual(response.status_code, 400)
        response = self.client.post("/internal/kibray/credentials/", '{"user": "ghost", "kind": "token"}', content_type="application/json")
        self.assertEqual(response.status_code, 400)
        response = self.client.post("/internal/kibray/fixtures/", "[]", content_type="application/json")
        self.assertEqual(response.status_code, 400)
