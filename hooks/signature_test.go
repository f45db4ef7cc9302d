package hooks

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const testSecret = "0123456789abcdef-test-secret"

// The expected value was computed with Python's hmac module:
// hmac.new(secret, b"1700000000." + body, hashlib.sha256).hexdigest().
func TestSignMatchesPythonHMAC(t *testing.T) {
	got := Sign([]byte(testSecret), 1700000000, []byte(`{"event":"connect"}`))
	want := "v1=3c0c3df6c71dc89c48e3b71145355e1bb2fb149c749124fe5b0a2850a838bd03"
	if got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestVerifySignature(t *testing.T) {
	body := []byte(`{"event":"receive","frame":{"text":"hi"}}`)
	now := time.Unix(1700000000, 0)
	ts := "1700000000"
	good := Sign([]byte(testSecret), now.Unix(), body)
	secrets := [][]byte{[]byte("another-secret-in-rotation"), []byte(testSecret)}

	cases := []struct {
		name      string
		secrets   [][]byte
		ts, sig   string
		body      []byte
		now       time.Time
		wantErr   error
		wantInMsg string
	}{
		{name: "good, second of two secrets", secrets: secrets, ts: ts, sig: good, body: body, now: now},
		{name: "clock 300 s ahead still inside", secrets: secrets, ts: ts, sig: good, body: body, now: now.Add(300 * time.Second)},
		{name: "clock 300 s behind still inside", secrets: secrets, ts: ts, sig: good, body: body, now: now.Add(-300 * time.Second)},
		{name: "timestamp 301 s old", secrets: secrets, ts: ts, sig: good, body: body, now: now.Add(301 * time.Second), wantErr: ErrStaleTimestamp, wantInMsg: "301 s"},
		{name: "timestamp 301 s ahead", secrets: secrets, ts: ts, sig: good, body: body, now: now.Add(-301 * time.Second), wantErr: ErrStaleTimestamp},
		{name: "missing timestamp", secrets: secrets, ts: "", sig: good, body: body, now: now, wantErr: ErrStaleTimestamp, wantInMsg: "missing"},
		{name: "signed timestamp", secrets: secrets, ts: "+1700000000", sig: good, body: body, now: now, wantErr: ErrStaleTimestamp},
		{name: "fractional timestamp", secrets: secrets, ts: "1700000000.0", sig: good, body: body, now: now, wantErr: ErrStaleTimestamp},
		{name: "huge timestamp", secrets: secrets, ts: strings.Repeat("9", 30), sig: good, body: body, now: now, wantErr: ErrStaleTimestamp},
		{name: "wrong secret", secrets: [][]byte{[]byte("not-the-secret-at-all")}, ts: ts, sig: good, body: body, now: now, wantErr: ErrBadSignature, wantInMsg: "no secret"},
		{name: "no secrets", secrets: nil, ts: ts, sig: good, body: body, now: now, wantErr: ErrBadSignature},
		{name: "body changed", secrets: secrets, ts: ts, sig: good, body: append([]byte(nil), append(body, ' ')...), now: now, wantErr: ErrBadSignature},
		{name: "timestamp changed", secrets: secrets, ts: "1700000001", sig: good, body: body, now: now, wantErr: ErrBadSignature},
		{name: "no version", secrets: secrets, ts: ts, sig: strings.TrimPrefix(good, "v1="), body: body, now: now, wantErr: ErrBadSignature},
		{name: "other version", secrets: secrets, ts: ts, sig: "v2=" + strings.TrimPrefix(good, "v1="), body: body, now: now, wantErr: ErrBadSignature},
		{name: "uppercase hex", secrets: secrets, ts: ts, sig: "v1=" + strings.ToUpper(strings.TrimPrefix(good, "v1=")), body: body, now: now, wantErr: ErrBadSignature},
		{name: "short hex", secrets: secrets, ts: ts, sig: good[:len(good)-2], body: body, now: now, wantErr: ErrBadSignature},
		{name: "empty", secrets: secrets, ts: ts, sig: "", body: body, now: now, wantErr: ErrBadSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifySignature(tc.secrets, tc.ts, tc.sig, tc.body, tc.now)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("VerifySignature: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("VerifySignature = %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantInMsg) {
				t.Fatalf("error %q does not mention %q", err, tc.wantInMsg)
			}
		})
	}
}
