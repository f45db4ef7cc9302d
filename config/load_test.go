package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func envOf(m map[string]string) LookupEnv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaultConfigIsValid(t *testing.T) {
	cfg, err := Load("", envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Demo || cfg.ChannelLayer.Backend != "memory" || len(cfg.Routes) != 1 {
		t.Fatalf("unexpected default: demo=%v backend=%q routes=%d", cfg.Demo, cfg.ChannelLayer.Backend, len(cfg.Routes))
	}
	if cfg.Listen != "127.0.0.1:8080" {
		t.Fatalf("listen %q", cfg.Listen)
	}
}

func TestShippedExamplesAreValid(t *testing.T) {
	files, _ := filepath.Glob("../docs/examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no example configs found")
	}
	env := envOf(map[string]string{
		"SIDECAR_REDIS_URL": "redis://127.0.0.1:6379/0", "SIDECAR_LISTEN": "127.0.0.1:9999",
		"SIDECAR_UPSTREAM": "http://127.0.0.1:8000", "SIDECAR_HOOKS_URL": "http://127.0.0.1:8000",
		"SIDECAR_HOOK_SECRET": "hook-secret-0123456789abcdef", "DJANGO_SECRET_KEY": "django-insecure-example",
	})
	for _, f := range files {
		cfg, err := Load(f, env)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if filepath.Base(f) == "interop.yaml" {
			if cfg.Listen != "127.0.0.1:9999" || cfg.ChannelLayer.Hosts[0] != "redis://127.0.0.1:6379/0" {
				t.Errorf("interop.yaml ignores the environment: listen=%q hosts=%v", cfg.Listen, cfg.ChannelLayer.Hosts)
			}
		}
	}
}

func TestEnvExpansionKeepsStructure(t *testing.T) {
	src := "listen: ${ADDR}\nauth:\n  secret_key: ${KEY}\n  session_engine: django.contrib.sessions.backends.signed_cookies\nwebsocket:\n  send_queue: ${Q:-32}\n"
	cfg, err := Parse("t.yaml", []byte(src), envOf(map[string]string{"ADDR": "127.0.0.1:1", "KEY": "a: b # not a comment"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Auth.SecretKey != "a: b # not a comment" {
		t.Fatalf("secret %q", cfg.Auth.SecretKey)
	}
	if cfg.WebSocket.SendQueue != 32 {
		t.Fatalf("send_queue %d", cfg.WebSocket.SendQueue)
	}
	if cfg.Listen != "127.0.0.1:1" {
		t.Fatalf("listen %q", cfg.Listen)
	}
}

func TestOverrides(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte("listen: 1.2.3.4:5\n"), envOf(map[string]string{
		EnvListen: "127.0.0.1:7", EnvUpstream: "http://127.0.0.1:8000", EnvRedisURL: "redis://127.0.0.1:6390/2",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:7" || cfg.Upstream.URL != "http://127.0.0.1:8000" ||
		cfg.ChannelLayer.Backend != "redis" || cfg.ChannelLayer.Hosts[0] != "redis://127.0.0.1:6390/2" {
		t.Fatalf("overrides not applied: %+v", cfg)
	}
}

func TestRedisURLKeepsPubSubBackend(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte("channel_layer:\n  backend: channels_redis.pubsub.RedisPubSubChannelLayer\n"),
		envOf(map[string]string{EnvRedisURL: "redis://127.0.0.1:6390/0"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ChannelLayer.Backend != "pubsub" {
		t.Fatalf("backend %q, want pubsub", cfg.ChannelLayer.Backend)
	}
}

func TestErrorsNameLineAndKey(t *testing.T) {
	cases := []struct {
		name, src string
		env       map[string]string
		want      []string
	}{
		{"unknown key", "listen: x\nroutes:\n  - path: /ws/a/\n    grups: [a]\n", nil, []string{"t.yaml:4:", "routes[0].grups", "unknown key"}},
		{"bad type", "websocket:\n  send_queue: lots\n", nil, []string{"t.yaml:2:", "websocket.send_queue", "lots"}},
		{"missing env", "listen: x\nupstream:\n  url: ${NOPE}\n", nil, []string{"t.yaml:3:", "NOPE"}},
		{"bad route", "routes:\n  - path: /ws/a/\n  - path: /ws/{id:float}/\n", nil, []string{"t.yaml:3:", "routes[1].path", "float"}},
		{"bad placeholder", "routes:\n  - path: /ws/{a}/\n    auth: none\n    groups:\n      - ok\n      - \"g_{b}\"\n", nil, []string{"t.yaml:6:", "routes[0].groups[1]", "{b}"}},
		{"auth without secret", "routes:\n  - path: /ws/a/\n    auth: required\n", nil, []string{"t.yaml:3:", "routes[0].auth", "secret_key"}},
		{"syntax", "listen: [\n", nil, []string{"t.yaml:"}},
		{"log level", "log:\n  level: loud\n", nil, []string{"t.yaml:2:", "log.level"}},
	}
	for _, c := range cases {
		_, err := Parse("t.yaml", []byte(c.src), envOf(c.env))
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", c.name, err, w)
			}
		}
	}
}

func TestEffectiveRedactsSecrets(t *testing.T) {
	src := "hooks:\n  base_url: http://127.0.0.1:8000\n  secret: hook-secret-0123456789\nauth:\n  secret_key: s3cret-value\n  session_engine: django.contrib.sessions.backends.signed_cookies\nchannel_layer:\n  backend: redis\n  hosts: [\"redis://:pw123@127.0.0.1:6379/0\"]\n  symmetric_encryption_keys: [k1-value]\nroutes:\n  - path: /ws/a/\n"
	cfg, err := Parse("t.yaml", []byte(src), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Effective(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, secret := range []string{"s3cret-value", "pw123", "k1-value", "hook-secret-0123456789"} {
		if strings.Contains(s, secret) {
			t.Errorf("effective config leaks %q:\n%s", secret, s)
		}
	}
	for _, want := range []string{"ping_interval: 25s", "auth: optional", "listen: 127.0.0.1:8080"} {
		if !strings.Contains(s, want) {
			t.Errorf("effective config lacks %q:\n%s", want, s)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(Default))
	f.Add([]byte("listen: ${X:-a}\nroutes:\n  - path: /ws/{a:int}/\n    groups: [\"g_{a}\"]\n"))
	f.Add([]byte("routes: [{path: /ws/x/, receive: {handlers: {m: {send: {type: x}}}}}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("f.yaml", data, envOf(map[string]string{"X": "1"}))
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
	})
}
