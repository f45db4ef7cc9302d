package bridge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

// Fernet vectors made by cryptography 38 (as used by channels_redis 4.0)
// with the timestamp and IV pinned.
var fernetFixedVectors = []struct {
	name      string
	userKey   []byte
	fernetKey string
	plainHex  string
	token     string
}{
	{
		name:      "chat_message/str key",
		userKey:   []byte("correct-horse-battery-staple-0123456789-abcdef"),
		fernetKey: "UTPKvwKKybsVQ7_OZYJ-QDMzok2TnWzyk3K3pYGpAec=",
		plainHex:  "82a474797065ac636861742e6d657373616765a474657874a568656c6c6f",
		token:     "gAAAAABlU_EAAAECAwQFBgcICQoLDA0OD5oW70wXkfxxuS9PUUnxMN95ymD3hrMzrXZMYlQ5YHIlFULbY9oUPhm-5r2-5AVH6XjOvIH3xQhLhgZWbDXIIIk=",
	},
	{
		name:      "websocket_send_bytes/str key",
		userKey:   []byte("correct-horse-battery-staple-0123456789-abcdef"),
		fernetKey: "UTPKvwKKybsVQ7_OZYJ-QDMzok2TnWzyk3K3pYGpAec=",
		plainHex:  "82a474797065ae776562736f636b65742e73656e64a56279746573c404000102ff",
		token:     "gAAAAABlU_EAAAECAwQFBgcICQoLDA0OD1Gw0NaJnAAXWuWgY-sl5CdYPDWBSt9tCYnuEvmNV6BaWz1wBPRYLflgZiCM8jAkhj-tYpqb04H18vXVz4Bc4Zc8TDl6H8ZnyRLKjNLOrIa5",
	},
	{
		name: "chat_message/bytes key",
		userKey: []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
			16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31},
		fernetKey: "Yw3NKWbEM2aRElRIu7JbT_QSpJxzLbLIq8G4WBvXEN0=",
		plainHex:  "82a474797065ac636861742e6d657373616765a474657874a568656c6c6f",
		token:     "gAAAAABlU_EAAAECAwQFBgcICQoLDA0ODxGQmhMsCP4oll-TTpZCCYhSZnaujhVFPLabm_-aZIggISmeWOu3DLy3ablzG3ZaXTxvhWKPkkawm4UbUSNCFMk=",
	},
}

const fernetFixedTS = 1_700_000_000

var fernetFixedIV = []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}

func TestFernetFixedVectors(t *testing.T) {
	for _, v := range fernetFixedVectors {
		t.Run(v.name, func(t *testing.T) {
			k, digest := deriveFernetKey(v.userKey)
			if got := base64.URLEncoding.EncodeToString(digest); got != v.fernetKey {
				t.Fatalf("derived key %s, want %s", got, v.fernetKey)
			}
			f := &multiFernet{keys: []fernetKey{k}}
			plain := mustHex(t, v.plainHex)
			tok, _ := f.appendEncryptAt(nil, nil, plain, fernetFixedTS, fernetFixedIV)
			if string(tok) != v.token {
				t.Fatalf("token\n%s\nwant\n%s", tok, v.token)
			}
			got, err := f.decrypt(nil, []byte(v.token), 70*time.Second, time.Unix(fernetFixedTS+5, 0))
			if err != nil || string(got) != string(plain) {
				t.Fatalf("decrypt: %x, %v", got, err)
			}
			// The same through the codec: member = prefix ‖ token.
			c, err := NewCodec(CodecOptions{Now: func() time.Time { return time.Unix(fernetFixedTS+5, 0) }})
			if err != nil {
				t.Fatal(err)
			}
			c.fernet = f
			msg, _, err := c.DecodeMember(append(mustHex(t, "00112233445566778899aabb"), v.token...))
			if err != nil || msg["type"] == nil {
				t.Fatalf("codec decode: %v %v", msg, err)
			}
		})
	}
}

func TestFernetRotation(t *testing.T) {
	k1, k2 := "rotated-old-key", "rotated-new-key-9876543210-zyxwvu"
	mf := func(keys ...string) *multiFernet {
		f, err := newMultiFernet(keys)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	now := time.Unix(fernetFixedTS, 0)
	tok, _ := mf(k2, k1).appendEncrypt(nil, nil, []byte("payload"), now)
	for _, tc := range []struct {
		keys []string
		ok   bool
	}{
		{[]string{k2}, true},
		{[]string{k1, k2}, true},
		{[]string{k2, k1}, true},
		{[]string{k1}, false},
	} {
		got, err := mf(tc.keys...).decrypt(nil, tok, 70*time.Second, now)
		if tc.ok && (err != nil || string(got) != "payload") {
			t.Errorf("keys %q: %q, %v", tc.keys, got, err)
		}
		if !tc.ok && !errors.Is(err, errFernetSignature) {
			t.Errorf("keys %q: want a signature error, got %v", tc.keys, err)
		}
	}
	if _, err := newMultiFernet(nil); err == nil {
		t.Error("no keys accepted")
	}
	if _, err := newMultiFernet([]string{"a", ""}); err == nil {
		t.Error("empty key accepted")
	}
}

// TestFernetTimeLimits checks the limits Python enforces with expiry 60:
// up to 70 s old and up to 60 s in the future.
func TestFernetTimeLimits(t *testing.T) {
	f, _ := newMultiFernet([]string{"k"})
	base := time.Unix(fernetFixedTS, 0)
	tok, _ := f.appendEncryptAt(nil, nil, []byte("x"), fernetFixedTS, fernetFixedIV)
	for _, tc := range []struct {
		offset int64
		ok     bool
		want   string
	}{
		{0, true, ""}, {70, true, ""}, {71, false, "expired"},
		{-60, true, ""}, {-61, false, "future"},
	} {
		_, err := f.decrypt(nil, tok, 70*time.Second, base.Add(time.Duration(tc.offset)*time.Second))
		if tc.ok != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("now %+d s: err = %v", tc.offset, err)
		}
	}
	// A stamp beyond int64 is "in the future", not an overflow.
	far, _ := f.appendEncryptAt(nil, nil, []byte("x"), 1<<63+5, fernetFixedIV)
	if _, err := f.decrypt(nil, far, 70*time.Second, base); err == nil {
		t.Error("token from year 292 billion accepted")
	}
	// ttl 0 turns the checks off, as Fernet.decrypt(token) without ttl.
	if _, err := f.decrypt(nil, tok, 0, base.Add(1000*time.Hour)); err != nil {
		t.Errorf("no ttl: %v", err)
	}
}

func TestFernetMalformed(t *testing.T) {
	f, _ := newMultiFernet([]string{"k"})
	good, _ := f.appendEncryptAt(nil, nil, []byte("hello"), fernetFixedTS, fernetFixedIV)
	now := time.Unix(fernetFixedTS, 0)
	raw, _ := base64.URLEncoding.DecodeString(string(good))
	flip := func(i int) []byte {
		b := append([]byte(nil), raw...)
		b[i] ^= 1
		return []byte(base64.URLEncoding.EncodeToString(b))
	}
	cases := map[string][]byte{
		"empty":        nil,
		"not base64":   []byte("!!!!"),
		"short":        []byte(base64.URLEncoding.EncodeToString(raw[:40])),
		"version":      flip(0),
		"timestamp":    flip(5),
		"iv":           flip(12),
		"ciphertext":   flip(30),
		"mac":          flip(len(raw) - 1),
		"partial":      []byte(base64.URLEncoding.EncodeToString(raw[:len(raw)-3])),
		"padding gone": []byte(strings.TrimRight(string(good), "=") + "A"),
	}
	for name, tok := range cases {
		if _, err := f.decrypt(nil, tok, 70*time.Second, now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Unpadded base64 of a good token is accepted.
	unpadded := []byte(strings.TrimRight(string(good), "="))
	if got, err := f.decrypt(nil, unpadded, 70*time.Second, now); err != nil || string(got) != "hello" {
		t.Errorf("unpadded: %q %v", got, err)
	}
}

// TestFernetBadPadding feeds a correctly signed token whose decrypted
// PKCS7 padding is wrong, so that only the padding check can refuse it.
func TestFernetBadPadding(t *testing.T) {
	f, _ := newMultiFernet([]string{"k"})
	// 32 zero bytes encrypt to three blocks, the last one pure padding.
	// Dropping that block leaves a last plaintext byte of 0x00.
	tok, _ := f.appendEncryptAt(nil, nil, make([]byte, 32), fernetFixedTS, fernetFixedIV)
	raw, _ := base64.URLEncoding.DecodeString(string(tok))
	body := raw[:len(raw)-fernetMACLen-16]
	mac := hmac.New(sha256.New, f.keys[0].signing)
	mac.Write(body)
	forged := mac.Sum(append([]byte(nil), body...))
	if _, err := f.decrypt(nil, []byte(base64.URLEncoding.EncodeToString(forged)), 0, time.Time{}); !errors.Is(err, errFernetPadding) {
		t.Fatalf("bad padding: %v", err)
	}
}
