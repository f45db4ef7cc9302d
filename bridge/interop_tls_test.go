package bridge

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// TestInteropTLS: a redis-server that only speaks TLS, reached by the Go
// layer and by channels_redis through rediss:// with the same
// ssl_ca_certs setting, in the URL and in a connection mapping.
func TestInteropTLS(t *testing.T) {
	forEachCoreStack(t, func(t *testing.T, stack testenv.PyStack) {
		ctx := context.Background()
		ca, cert, key := writeTestCerts(t, t.TempDir(), "127.0.0.1")
		r := testenv.StartRedisTLS(t, cert, key, ca)
		address := r.URL() + "?ssl_ca_certs=" + url.QueryEscape(ca)
		py := newStackPeer(t, stack, []string{address}, nil)

		for name, host := range map[string]Host{
			"url":     address,
			"mapping": map[string]any{"host": "127.0.0.1", "port": r.Port, "ssl": true, "ssl_ca_certs": ca},
		} {
			t.Run(name, func(t *testing.T) {
				rec := newRecorder()
				g := newRingLayer(t, HostList{host}, Config{}, rec.handle, 0)
				ch := g.NewChannel()
				group := "tls_" + name
				if err := g.GroupAdd(ctx, group, ch); err != nil {
					t.Fatal(err)
				}
				runLayer(t, g)
				py.run("group_send", group, taggedJSON(t, interopMessage()))
				got := rec.waitFor(t, 1, 15*time.Second)
				if got[0].channel != ch || !equalValues(map[string]any(got[0].msg), map[string]any(interopExpected())) {
					t.Fatalf("Go received on %q:\n%#v", got[0].channel, got[0].msg)
				}
				rcv := py.start("receive-group", group, "1", "30")
				if err := g.GroupSend(ctx, group, Message{"type": "over.tls"}); err != nil {
					t.Fatal(err)
				}
				if _, m := rcv.next(t); m["type"] != "over.tls" {
					t.Fatalf("Python received %v", m)
				}
			})
		}

		// Without the CA the server's certificate is refused; with
		// ssl_cert_reqs=none it is not checked.
		unverified := newRingLayer(t, HostList{r.URL()}, Config{}, nopHandler, 0)
		if err := unverified.Ready(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("Ready without the CA: %v", err)
		}
		unchecked := newRingLayer(t, HostList{r.URL() + "?ssl_cert_reqs=none"}, Config{}, nopHandler, 0)
		if err := unchecked.Ready(ctx); err != nil {
			t.Fatalf("Ready with ssl_cert_reqs=none: %v", err)
		}
	})
}

// TestRedisTLSHostnameCheck: a certificate for another name is refused
// unless ssl_check_hostname is false, which still checks the chain.
func TestRedisTLSHostnameCheck(t *testing.T) {
	ctx := context.Background()
	ca, cert, key := writeTestCerts(t, t.TempDir(), "redis.internal")
	r := testenv.StartRedisTLS(t, cert, key, ca)
	otherCA, _, _ := writeTestCerts(t, t.TempDir(), "redis.internal")
	q := "?ssl_ca_certs=" + url.QueryEscape(ca)
	for _, tc := range []struct {
		query, want string
	}{
		{q, "127.0.0.1"},
		{q + "&ssl_check_hostname=false", ""},
		{"?ssl_check_hostname=false&ssl_ca_certs=" + url.QueryEscape(otherCA), "certificate"},
	} {
		l := newRingLayer(t, HostList{r.URL() + tc.query}, Config{}, nopHandler, 0)
		err := l.Ready(ctx)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Ready = %v, want %q", tc.query, err, tc.want)
		}
	}
}
