package compat

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/channels-sidecar/channels-sidecar/auth"
	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

const auditConfig = `
log: {format: json}
auth:
  secret_key: ${DJANGO_SECRET_KEY}
  session_engine: django.contrib.sessions.backends.signed_cookies
  token_subprotocol: bearer
websocket:
  allowed_origins: ["https://app.example.com"]
channel_layer: {backend: memory}
routes:
  - path: /ws/private/
    auth: required
  - path: /ws/public/
    auth: optional
`

// TestAuditOfRefusals: a hostile Origin, a forged cookie, an alg=none
// token, a refresh token used as an access token and a token signed with
// the wrong key, all made by the real Django and simplejwt, each get their
// own reason in /metrics and in the logs; every refused credential is
// logged exactly once at INFO with its source and the client's address;
// and no credential or secret appears anywhere in the logs.
func TestAuditOfRefusals(t *testing.T) {
	forEachStack(t, auditOfRefusals)
}

func auditOfRefusals(t *testing.T, st testenv.PyStack) {
	now := time.Now().Unix()
	login := map[string]any{"_auth_user_id": "42", "_auth_user_backend": "django.contrib.auth.backends.ModelBackend", "_auth_user_hash": strings.Repeat("a", 64)}
	v := mint(t, st,
		map[string]any{"op": "mint_session", "at": now, "key": "not-the-secret-key", "data": login},
		map[string]any{"op": "mint_token", "at": now, "algorithm": "none", "claims": map[string]any{"user_id": 7}},
		map[string]any{"op": "mint_token", "at": now, "class": "refresh", "claims": map[string]any{"user_id": 7}},
		map[string]any{"op": "mint_token", "at": now, "key": "not-the-secret-key", "claims": map[string]any{"user_id": 7}},
		map[string]any{"op": "mint_token", "at": now - 3600, "lifetime": 300, "claims": map[string]any{"user_id": 7}},
		map[string]any{"op": "mint_token", "at": now, "claims": map[string]any{"user_id": 7}},
	)
	if len(v) != 6 {
		t.Fatalf("mint.py gave %d results", len(v))
	}
	forgedCookie, algNone, refresh, wrongKey, expired, valid := v[0], v[1], v[2], v[3], v[4], v[5]

	s := startSidecar(t, writeConfig(t, auditConfig), "DJANGO_SECRET_KEY="+testSecretKey)
	good := "https://app.example.com"
	hdr := func(pairs ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(pairs); i += 2 {
			h.Add(pairs[i], pairs[i+1])
		}
		return h
	}
	type refusal struct{ source, reason string }
	cases := []struct {
		name      string
		path      string
		header    http.Header
		protocols []string
		status    int
		handshake string    // sidecar_handshakes_rejected_total reason, "" if admitted
		counted   string    // sidecar_auth_failures_total reason, "" if none
		refused   []refusal // credentials refused, in the order tried
	}{
		{"hostile Origin", "/ws/private/?token=" + valid, hdr("Origin", "https://evil.example"), nil, 403, "origin_not_allowed", "", nil},
		{"forged cookie", "/ws/private/", hdr("Origin", good, "Cookie", "sessionid="+forgedCookie), nil, 403,
			"auth_session_bad_signature", auth.ReasonSessionBadSignature, []refusal{{"cookie", auth.ReasonSessionBadSignature}}},
		{"alg=none token", "/ws/private/?token=" + algNone, hdr("Origin", good), nil, 403,
			"auth_jwt_alg_not_allowed", auth.ReasonJWTAlgNotAllowed, []refusal{{"query", auth.ReasonJWTAlgNotAllowed}}},
		{"refresh token as access", "/ws/private/", hdr("Origin", good, "Authorization", "Bearer "+refresh), nil, 403,
			"auth_jwt_wrong_token_type", auth.ReasonJWTWrongTokenType, []refusal{{"header", auth.ReasonJWTWrongTokenType}}},
		{"token signed with the wrong key", "/ws/private/", hdr("Origin", good), []string{"bearer", wrongKey}, 403,
			"auth_jwt_bad_signature", auth.ReasonJWTBadSignature, []refusal{{"subprotocol", auth.ReasonJWTBadSignature}}},
		{"stale token and forged cookie on an optional route", "/ws/public/?token=" + expired,
			hdr("Origin", good, "Cookie", "sessionid="+forgedCookie), nil, 101, "", auth.ReasonJWTExpired,
			[]refusal{{"query", auth.ReasonJWTExpired}, {"cookie", auth.ReasonSessionBadSignature}}},
		{"stale token, then a valid one", "/ws/private/?token=" + expired, hdr("Origin", good, "Authorization", "Bearer "+valid), nil, 101, "", "",
			[]refusal{{"query", auth.ReasonJWTExpired}}},
	}
	var wantLogs []refusal
	wantAuth := map[string]float64{}
	wantHandshake := map[string]float64{}
	for _, c := range cases {
		d := websocket.Dialer{Subprotocols: c.protocols}
		ws, resp, err := d.Dial(s.wsURL(c.path), c.header)
		status := 0
		if err == nil {
			status = http.StatusSwitchingProtocols
			_ = ws.Close()
		} else if resp != nil {
			status = resp.StatusCode
		}
		if status != c.status {
			t.Errorf("%s: status %d (%v), want %d", c.name, status, err, c.status)
		}
		if c.handshake != "" {
			wantHandshake[c.handshake]++
		}
		wantLogs = append(wantLogs, c.refused...)
		if c.counted != "" {
			wantAuth[c.counted]++
		}
	}

	t.Run("each refusal has its own reason in the metrics", func(t *testing.T) {
		body := scrape(t, s)
		distinct := map[string]bool{}
		for _, c := range cases[:5] {
			distinct[c.handshake] = true
		}
		if len(distinct) != 5 {
			t.Fatalf("the five hostile handshakes share reasons: %v", distinct)
		}
		for reason, n := range wantHandshake {
			if got := metricValue(body, "sidecar_handshakes_rejected_total", reason); got != n {
				t.Errorf("sidecar_handshakes_rejected_total{reason=%q} = %v, want %v", reason, got, n)
			}
		}
		for reason, n := range wantAuth {
			if got := metricValue(body, "sidecar_auth_failures_total", reason); got != n {
				t.Errorf("sidecar_auth_failures_total{reason=%q} = %v, want %v", reason, got, n)
			}
		}
		// Labels come only from the stable reason lists.
		for reason := range metricReasons(body, "sidecar_auth_failures_total") {
			if !slices.Contains(auth.Reasons(), reason) {
				t.Errorf("sidecar_auth_failures_total has reason %q, not one of auth.Reasons()", reason)
			}
		}
		for reason := range metricReasons(body, "sidecar_handshakes_rejected_total") {
			r, isAuth := strings.CutPrefix(reason, "auth_")
			if !slices.Contains(auth.OriginReasons(), reason) && !(isAuth && (r == "missing" || slices.Contains(auth.Reasons(), r))) {
				t.Errorf("sidecar_handshakes_rejected_total has reason %q, not an Origin or auth reason", reason)
			}
		}
		if t.Failed() {
			t.Logf("metrics:\n%s", grepLines(body, "sidecar_"))
		}
	})

	t.Run("every refused credential is logged once with source and address", func(t *testing.T) {
		recs := logRecords(t, s, "credential refused")
		var got []refusal
		for _, r := range recs {
			if r["level"] != "INFO" {
				t.Errorf("logged at %v: %v", r["level"], r)
			}
			if !strings.HasPrefix(fmt.Sprint(r["remote"]), "127.0.0.1:") {
				t.Errorf("no client address: %v", r)
			}
			got = append(got, refusal{fmt.Sprint(r["source"]), fmt.Sprint(r["reason"])})
		}
		if !slices.Equal(got, wantLogs) {
			t.Errorf("credential refusals logged:\n%v\nwant, in order:\n%v", got, wantLogs)
		}
		origin := 0
		for _, r := range logRecords(t, s, "websocket handshake refused") {
			if r["reason"] == "origin_not_allowed" && strings.HasPrefix(fmt.Sprint(r["remote"]), "127.0.0.1:") {
				origin++
			}
		}
		if origin != 1 {
			t.Errorf("hostile Origin logged %d times with its address, want once", origin)
		}
	})

	t.Run("no credential or secret in the logs", func(t *testing.T) {
		logs := s.logs.String()
		secrets := []string{testSecretKey, "not-the-secret-key"}
		for _, tok := range []string{algNone, refresh, wrongKey, expired, valid} {
			parts := strings.Split(tok, ".")
			secrets = append(secrets, tok, parts[1])
			if parts[2] != "" {
				secrets = append(secrets, parts[2])
			}
		}
		cookieParts := strings.Split(forgedCookie, ":")
		secrets = append(secrets, forgedCookie, cookieParts[0], cookieParts[len(cookieParts)-1])
		for _, secret := range secrets {
			if strings.Contains(logs, secret) {
				t.Errorf("the logs contain a credential or secret (%.12s...)", secret)
			}
		}
	})
}
