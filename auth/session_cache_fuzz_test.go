package auth

import (
	"encoding/hex"
	"testing"
)

// FuzzSessionCacheValue feeds arbitrary Redis values to every serializer
// and compressor: decoding must never panic, and whatever decodes must
// yield only the auth keys, which sessionIdentity then judges without
// panicking either.
func FuzzSessionCacheValue(f *testing.F) {
	for _, h := range []string{sessionP4, sessionP2, richP4, zlibSessionP4, evilP4} {
		b, _ := hex.DecodeString(h)
		f.Add(b, uint8(0))
	}
	f.Add([]byte(`{"_auth_user_id": "42", "_auth_user_backend": "django.contrib.auth.backends.ModelBackend", "_auth_user_hash": "h"}`), uint8(4))
	f.Add([]byte("\x83\xad_auth_user_id\xa242"), uint8(8))
	f.Add([]byte("42"), uint8(1))
	combos := [][2]string{}
	for _, s := range []string{"pickle", "json", "msgpack"} {
		for _, c := range []string{"identity", "zlib", "gzip", "zstd"} {
			combos = append(combos, [2]string{s, c})
		}
	}
	codecs := make([]*sessionCodec, len(combos))
	for i, c := range combos {
		codec, err := newSessionCodec(&SessionCacheOptions{Serializer: c[0], Compressor: c[1]})
		if err != nil {
			f.Fatal(err)
		}
		codecs[i] = codec
	}
	f.Fuzz(func(t *testing.T, value []byte, which uint8) {
		codec := codecs[int(which)%len(codecs)]
		fields, err := codec.decode(value)
		if err != nil {
			return
		}
		for k := range fields {
			if k != sessionUserIDKey && k != sessionBackendKey && k != sessionHashKey {
				t.Fatalf("decoded a non-auth key %q", k)
			}
		}
		_, _ = sessionIdentity(fields, []string{DefaultAuthBackend})
	})
}
