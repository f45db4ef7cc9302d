package auth

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// Fixed inputs of the reference vectors made with Django 3.2 (see
// the django_auth spec); the literals below were produced by the library.
const (
	vecSecret    = "vectors-secret-key-2f6c1d0e9b8a7f6e5d4c3b2a1f0e9d8c"
	vecOldSecret = "vectors-OLD-secret-key-rotated-out-0123456789abcdef"
	vecNow       = 1767225600 // 2026-01-01T00:00:00Z
)

func TestSaltedHMACMatchesDjango(t *testing.T) {
	cases := []struct {
		salt, value, hmacHex string
		sha1                 bool
	}{
		{"django.core.signing.Signersigner", "hello", "1ee34589cfa51ebf75cf05fc9ee29bf05e34e73480174eaa8f93936f7a965fc3", false},
		{"django.contrib.sessions.backends.signed_cookiessigner", "payload:ts", "0dca1cb9d9b79f61a002115bdbbaa336eaaf1ae918e4d60e513837948017b1c9", false},
		{"django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash", "pbkdf2_sha256$1$x$y", "9c23b5b89761b2fc433a2845acdcfbd76acea6ab31397788ac4eae36ff96443b", false},
	}
	for _, c := range cases {
		got := hex.EncodeToString(SaltedHMAC(sha256.New, c.salt, c.value, vecSecret))
		if got != c.hmacHex {
			t.Errorf("SaltedHMAC(%q, %q) = %s, want %s", c.salt, c.value, got, c.hmacHex)
		}
	}
	// The derived key is a plain hash of salt || secret.
	if got := hex.EncodeToString(deriveKey(sha256.New, "django.contrib.sessions.backends.signed_cookiessigner", vecSecret)); got != "3e1f4a525fa71c0ff3188e2739d62528959e4c0927b7cd3109c4a0ceb15c917d" {
		t.Errorf("derived key = %s", got)
	}
	if len(SaltedHMAC(sha1.New, "s", "v", "k")) != sha1.Size {
		t.Error("SaltedHMAC ignores the hash function")
	}
}

func TestBase62(t *testing.T) {
	samples := map[int64]string{0: "0", 1: "1", 61: "z", 62: "10", 3843: "zz", 3844: "100",
		1767225600: "1vb66i", 1766016000: "1vW1R2", 2147483647: "2LKcb1", 4294967296: "4gfFC4", -62: "-10"}
	for n, s := range samples {
		if got := base62Encode(n); got != s {
			t.Errorf("base62Encode(%d) = %q, want %q", n, got, s)
		}
		if got, err := base62Decode(s); err != nil || got != n {
			t.Errorf("base62Decode(%q) = %d, %v; want %d", s, got, err, n)
		}
	}
	for _, n := range []int64{math.MaxInt64, math.MinInt64, math.MinInt64 + 1} {
		if got, err := base62Decode(base62Encode(n)); err != nil || got != n {
			t.Errorf("round trip %d: %d, %v", n, got, err)
		}
	}
	if got, err := base62Decode("-"); err != nil || got != 0 {
		t.Errorf(`base62Decode("-") = %d, %v; Django reads it as 0`, got, err)
	}
	if got, err := base62Decode("001"); err != nil || got != 1 {
		t.Errorf("leading zeros: %d, %v", got, err)
	}
	for _, bad := range []string{"", "1.5", "zzzzzzzzzzzz", "-zzzzzzzzzzzz", "a b"} {
		if _, err := base62Decode(bad); err == nil {
			t.Errorf("base62Decode(%q) accepted", bad)
		}
	}
}

func TestSignerMatchesDjango(t *testing.T) {
	s, err := NewSigner(vecSecret, nil, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Sign("hello"); got != "hello:HuNFic-lHr91zwX8nuKb8F405zSAF06qj5OTb3qWX8M" {
		t.Errorf("Sign = %q", got)
	}
	salted, _ := NewSigner(vecSecret, nil, "my.salt", ":")
	signed := "a:b:c:d3VtFOnXyxsxK6FVCZH51Pw3JjxFGPFsY3tkcnOLo0A"
	if got := salted.Sign("a:b:c"); got != signed {
		t.Errorf("Sign(a:b:c) = %q", got)
	}
	if v, err := salted.Unsign(signed); err != nil || v != "a:b:c" {
		t.Errorf("Unsign splits on the last separator: %q, %v", v, err)
	}
	for _, bad := range []string{"hello", "hello:", "hello:HuNFic-lHr91zwX8nuKb8F405zSAF06qj5OTb3qWX8m", "hellO:HuNFic-lHr91zwX8nuKb8F405zSAF06qj5OTb3qWX8M"} {
		if _, err := s.Unsign(bad); !errors.Is(err, ErrBadSignature) {
			t.Errorf("Unsign(%q) = %v, want ErrBadSignature", bad, err)
		}
	}
	if _, err := salted.Unsign("hello:HuNFic-lHr91zwX8nuKb8F405zSAF06qj5OTb3qWX8M"); !errors.Is(err, ErrBadSignature) {
		t.Error("a signature made with another salt was accepted")
	}
}

func TestSignerSeparator(t *testing.T) {
	for _, sep := range []string{"a", "-", "=", "_", "^", "Az09"} {
		if _, err := NewSigner("k", nil, "", sep); err == nil {
			t.Errorf("separator %q accepted; Django refuses it", sep)
		}
	}
	s, err := NewSigner("k", nil, "", "/")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.Unsign(s.Sign("x:y")); err != nil || v != "x:y" {
		t.Errorf("custom separator round trip: %q, %v", v, err)
	}
}

func TestSignerFallbackKeys(t *testing.T) {
	old, _ := NewSigner(vecOldSecret, nil, "s", "")
	rotated, _ := NewSigner(vecSecret, []string{"other", vecOldSecret}, "s", "")
	plain, _ := NewSigner(vecSecret, nil, "s", "")
	signed := old.Sign("v")
	if v, err := rotated.Unsign(signed); err != nil || v != "v" {
		t.Errorf("fallback key not accepted: %q, %v", v, err)
	}
	if _, err := plain.Unsign(signed); !errors.Is(err, ErrBadSignature) {
		t.Error("old key accepted without fallbacks")
	}
	// Fallbacks verify but never sign.
	if rotated.Sign("v") != plain.Sign("v") {
		t.Error("a signer with fallbacks signs with another key than the primary")
	}
}

func TestTimestampSignerMaxAge(t *testing.T) {
	s, _ := NewTimestampSigner(vecSecret, nil, "django.core.signing")
	now := time.Unix(vecNow, 0)
	cases := []struct {
		token   string
		ok      bool
		expired bool
	}{
		{"eyJ1IjoxfQ:1vb61s:cxfDuRZ8pe9WGGjTn4soCWM6-I4aCNMCVIb_tBGFCjQ", true, false}, // age == max_age
		{"eyJ1IjoxfQ:1vb61r:8p7_nnLmnj509Rc0di1b-6k_RldTj1s-pHeGsakHAnk", false, true}, // age == max_age+1
		{"eyJ1IjoxfQ:1vb72m:m2Ya-fSjnSwO4FBzu9lQ7N7TewaVYyHgGh_h0mBZV0A", true, false}, // signed in the future
	}
	for _, c := range cases {
		data, _, err := s.LoadsJSON(c.token, 300*time.Second, now)
		if c.ok && (err != nil || string(data) != `{"u":1}`) {
			t.Errorf("%s: %s, %v; want accepted", c.token, data, err)
		}
		if c.expired && !errors.Is(err, ErrSignatureExpired) {
			t.Errorf("%s: %v, want ErrSignatureExpired", c.token, err)
		}
	}
	// Half a second past max_age is expired: Django compares with a float now.
	if _, _, err := s.LoadsJSON(cases[0].token, 300*time.Second, now.Add(500*time.Millisecond)); !errors.Is(err, ErrSignatureExpired) {
		t.Errorf("fractional age past max_age: %v", err)
	}
	// A negative max age disables the check, like max_age=None.
	if _, _, err := s.LoadsJSON(cases[1].token, -1, now.Add(1000*time.Hour)); err != nil {
		t.Errorf("no max age: %v", err)
	}
	ts, _ := NewTimestampSigner(vecSecret, nil, "")
	if got := ts.Sign("hello", now); got != "hello:1vb66i:AQVTjFRVrbwC1EJxZ8-BCZFpUsPQnXhns_g1Cv0fpPQ" {
		t.Errorf("TimestampSigner.Sign = %q", got)
	}
	v, at, err := ts.Unsign("hello:1vb66i:AQVTjFRVrbwC1EJxZ8-BCZFpUsPQnXhns_g1Cv0fpPQ", 10*time.Second, now)
	if err != nil || v != "hello" || !at.Equal(now) {
		t.Errorf("Unsign = %q, %v, %v", v, at, err)
	}
}

func TestLoadsJSONMatchesDjango(t *testing.T) {
	s, _ := NewTimestampSigner(vecSecret, nil, "django.core.signing")
	now := time.Unix(vecNow, 0)
	cases := map[string]string{
		"eyJhIjoxfQ:1vb66i:nAJNxsP713i5Tfrvnu1Q5b24NzRXHdAitWywiFaqk0k": `{"a":1}`,
		"WzEsMl0:1vb66i:UJkUcN1dDIoAeiy4Q83bVYsuRw8MoZhiis-1jp93sV8":    `[1,2]`,
		".eJytjLsNwzAUxHZRzUL3Tl-vEqR04SJVVBgIsns0RFgSID_pWufrnY5HRgSmUGl0BhNtKRTIqKCKGupooElkYjdBmChEJRrRiUFMnLHwXhoXXHHDHQ88n6R13isd6f4z6fsD7cdBSA:1vb66i:_fG0l9znBzt-iDRDCn3NqLN5ukFYVolYKtkQT6CJ47Y": `{"items":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39],"text":"` + strings.Repeat("x", 80) + `"}`,
	}
	for token, want := range cases {
		data, at, err := s.LoadsJSON(token, -1, now)
		if err != nil || string(data) != want || at.Unix() != vecNow {
			t.Errorf("LoadsJSON(%.20s…) = %s, %v, %v; want %s", token, data, at, err, want)
		}
	}
	// Django 3.2 has no fallbacks and rejects this; >= 4.1 accepts it.
	fallbackSigned := "eyJ1IjoxfQ:1vb66i:jKwdtu4dWAdO464ncSdMA-dMbxax-2YfsGpRstG-pas"
	if _, _, err := s.LoadsJSON(fallbackSigned, -1, now); !errors.Is(err, ErrBadSignature) {
		t.Errorf("old-key signature without fallbacks: %v", err)
	}
	rotated, _ := NewTimestampSigner(vecSecret, []string{vecOldSecret}, "django.core.signing")
	if data, _, err := rotated.LoadsJSON(fallbackSigned, -1, now); err != nil || string(data) != `{"u":1}` {
		t.Errorf("old-key signature with fallbacks: %s, %v", data, err)
	}
}

func TestLoadsJSONBadPayloads(t *testing.T) {
	s, _ := NewTimestampSigner("k", nil, "salt")
	now := time.Unix(vecNow, 0)
	bomb := strings.Repeat(" ", maxSignedObjectBytes+10) + "1"
	cases := map[string]string{
		"not base64":         s.Sign("e!JhIjoxfQ", now),
		"newline in base64":  s.Sign("eyJh\nIjoxfQ", now),
		"padding":            s.Sign("eyJhIjoxfQ==", now),
		"not JSON":           s.Sign(b64Encode([]byte("{nope")), now),
		"not zlib":           s.Sign("."+b64Encode([]byte(`{"a":1}`)), now),
		"zlib bomb":          s.DumpsJSON([]byte(bomb), true, now),
		"trailing JSON data": s.Sign(b64Encode([]byte(`{"a":1} x`)), now),
		"bad timestamp":      s.Signer.Sign("eyJhIjoxfQ:1v!66i"),
		"no timestamp":       s.Signer.Sign("eyJhIjoxfQ"),
	}
	for name, signed := range cases {
		if _, _, err := s.LoadsJSON(signed, -1, now); !errors.Is(err, ErrBadPayload) {
			t.Errorf("%s: %v, want ErrBadPayload", name, err)
		}
	}
}

func TestDumpsJSONRoundTrip(t *testing.T) {
	s, _ := NewTimestampSigner("k", nil, "salt")
	now := time.Unix(vecNow, 0)
	big := []byte(`{"text":"` + strings.Repeat("ab", 200) + `"}`)
	for _, c := range []struct {
		data       []byte
		compress   bool
		compressed bool
	}{
		{[]byte(`{"a":1}`), false, false},
		{[]byte(`[1,2]`), true, false}, // zlib would not be shorter
		{big, true, true},
	} {
		signed := s.DumpsJSON(c.data, c.compress, now)
		if strings.HasPrefix(signed, ".") != c.compressed {
			t.Errorf("%.20s: compressed = %v, want %v", c.data, !c.compressed, c.compressed)
		}
		got, _, err := s.LoadsJSON(signed, time.Second, now)
		if err != nil || string(got) != string(c.data) {
			t.Errorf("round trip of %.20s: %.20s, %v", c.data, got, err)
		}
	}
}

func TestLoadsJSONLatin1(t *testing.T) {
	s, _ := NewTimestampSigner("k", nil, "salt")
	now := time.Unix(vecNow, 0)
	// Django decodes the JSON bytes as latin-1: byte 0xE9 is "é".
	signed := s.Sign(b64Encode([]byte("\"caf\xe9\"")), now)
	data, _, err := s.LoadsJSON(signed, -1, now)
	if err != nil || string(data) != `"café"` {
		t.Errorf("latin-1 payload: %q, %v", data, err)
	}
}

// FuzzSigningLoads checks that no input makes LoadsJSON panic, that what it
// accepts is valid JSON, and that DumpsJSON output always loads back.
func FuzzSigningLoads(f *testing.F) {
	f.Add("eyJhIjoxfQ:1vb66i:nAJNxsP713i5Tfrvnu1Q5b24NzRXHdAitWywiFaqk0k", []byte(`{"a":1}`))
	f.Add(".eJytjLsNwzAUxHZRzUL3Tl-vEqR04SJVVBgIsns0RFgSID_pWufrnY5HRgSmUGl0BhNtKRTIqKCKGupooElkYjdBmChEJRrRiUFMnLHwXhoXXHHDHQ88n6R13isd6f4z6fsD7cdBSA:1vb66i:_fG0l9znBzt-iDRDCn3NqLN5ukFYVolYKtkQT6CJ47Y", []byte(`[1,2]`))
	f.Add("a:b:c", []byte("\"\xff\""))
	f.Add(":::", []byte(`{"_auth_user_id":"42"}`))
	f.Add("", []byte(strings.Repeat("x", 300)))
	s, _ := NewTimestampSigner(vecSecret, []string{vecOldSecret}, "django.core.signing")
	now := time.Unix(vecNow, 0)
	f.Fuzz(func(t *testing.T, signed string, payload []byte) {
		if data, _, err := s.LoadsJSON(signed, 300*time.Second, now); err == nil {
			if !json.Valid(data) {
				t.Fatalf("accepted invalid JSON %q", data)
			}
		}
		// Signing with the key itself: anything signed must load again.
		for _, compress := range []bool{false, true} {
			out := s.DumpsJSON(payload, compress, now)
			data, _, err := s.LoadsJSON(out, 0, now)
			if json.Valid(latin1ToUTF8(payload)) {
				if err != nil || string(data) != string(latin1ToUTF8(payload)) {
					t.Fatalf("DumpsJSON(%q) did not load back: %q, %v", payload, data, err)
				}
			} else if !errors.Is(err, ErrBadPayload) {
				t.Fatalf("non-JSON payload %q: %v", payload, err)
			}
		}
	})
}
