import unittest

from sidecar_hooks import SignatureError, sign, signed_headers, verify
from sidecar_hooks.tests import OLD_SECRET, SECRET

BODY = b'{"event":"connect"}'
TS = 1700000000


class SignTest(unittest.TestCase):
    def test_vector_shared_with_go(self):
        # hooks/signature_test.go checks the same value.
        self.assertEqual(
            sign(BODY, SECRET, TS),
            "v1=3c0c3df6c71dc89c48e3b71145355e1bb2fb149c749124fe5b0a2850a838bd03",
        )

    def test_str_and_bytes_agree(self):
        self.assertEqual(sign(BODY.decode(), SECRET.encode(), TS), sign(BODY, SECRET, TS))

    def test_timestamp_must_be_int(self):
        for ts in ("1700000000", 1700000000.0, True):
            with self.assertRaises(TypeError):
                sign(BODY, SECRET, ts)

    def test_signed_headers(self):
        h = signed_headers(BODY, SECRET, TS)
        self.assertEqual(h, {"HTTP_X_SIDECAR_TIMESTAMP": "1700000000", "HTTP_X_SIDECAR_SIGNATURE": sign(BODY, SECRET, TS)})


class VerifyTest(unittest.TestCase):
    good = sign(BODY, SECRET, TS)

    def refused(self, code, body=BODY, ts=str(TS), sig=None, secrets=(SECRET,), now=TS):
        with self.assertRaises(SignatureError) as cm:
            verify(body, ts, self.good if sig is None else sig, list(secrets), now=now)
        self.assertEqual(cm.exception.code, code)
        for s in secrets:
            self.assertNotIn(s, cm.exception.message)
        return cm.exception

    def test_accepts(self):
        verify(BODY, str(TS), self.good, [SECRET], now=TS)
        verify(BODY, str(TS), self.good, [OLD_SECRET, SECRET], now=TS + 300)
        verify(BODY, str(TS), self.good, [SECRET], now=TS - 300)

    def test_stale_or_malformed_timestamp(self):
        self.assertIn("301 s", self.refused("stale_timestamp", now=TS + 301).message)
        self.refused("stale_timestamp", now=TS - 301)
        for ts in (None, "", "+1700000000", "1700000000.0", " 1700000000", "1_700_000_000",
                   "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660", "9" * 30):
            self.refused("stale_timestamp", ts=ts)

    def test_bad_signature(self):
        self.refused("bad_signature", secrets=("not-the-secret",))
        self.refused("bad_signature", secrets=())
        self.refused("bad_signature", body=BODY + b" ")
        self.refused("bad_signature", ts=str(TS + 1), now=TS + 1)
        for sig in ("", self.good.upper(), "v2=" + self.good[3:], self.good[3:],
                    self.good[:-1], self.good + "0", "v1=" + "\u00e9" * 64):
            self.refused("bad_signature", sig=sig)

    def test_missing_signature(self):
        with self.assertRaises(SignatureError) as cm:
            verify(BODY, str(TS), None, [SECRET], now=TS)
        self.assertEqual(cm.exception.code, "bad_signature")


if __name__ == "__main__":
    unittest.main()
