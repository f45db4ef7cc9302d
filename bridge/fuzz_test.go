package bridge

import (
	"testing"
	"time"
)

// fuzzKey is the key of the encrypted fuzz codec.
const fuzzKey = "fuzz-key"

// FuzzDecodeMember feeds arbitrary members to a plain and an encrypted
// codec. Decoding must never panic, and whatever decodes must re-encode
// and decode to the same message.
func FuzzDecodeMember(f *testing.F) {
	now := time.Unix(fernetFixedTS, 0)
	plain, _ := NewCodec(CodecOptions{Now: func() time.Time { return now }})
	enc, _ := NewCodec(CodecOptions{SymmetricEncryptionKeys: []string{fuzzKey}, Now: func() time.Time { return now }})
	for _, h := range []string{pyIntegersMember, pyFloatsMember, pyGroupMember, pySpecificMember, pyBytesKeyMember} {
		f.Add(mustHex(f, h))
	}
	for _, c := range []*Codec{plain, enc} {
		m, _ := c.AppendMember(nil, sampleMessage(), "specific.a!b")
		f.Add(m)
		m, _ = c.AppendGroupMember(nil, Message{"type": "x", "n": -5}, []string{"a!1", "a!2"})
		f.Add(m)
	}
	f.Add([]byte("short"))
	// __asgi_channel__ as an empty list, and as a list holding a non-string.
	f.Add(append(make([]byte, 12), mustHex(f, "82a474797065a178b05f5f617367695f6368616e6e656c5f5f90")...))
	f.Add(append(make([]byte, 12), mustHex(f, "81b05f5f617367695f6368616e6e656c5f5f92a1610c")...))
	f.Add(append(make([]byte, 12), 0xdd, 0xff, 0xff, 0xff, 0xff))
	f.Fuzz(func(t *testing.T, member []byte) {
		for _, c := range []*Codec{plain, enc} {
			msg, chans, err := c.DecodeMember(member)
			if err != nil {
				continue
			}
			var again []byte
			switch {
			case len(chans) == 0:
				again, err = c.AppendMember(nil, msg, "")
			default:
				again, err = c.AppendGroupMember(nil, msg, chans)
			}
			if err != nil {
				t.Fatalf("decoded message does not re-encode: %v", err)
			}
			msg2, chans2, err := c.DecodeMember(again)
			if err != nil {
				t.Fatalf("re-encoded message does not decode: %v", err)
			}
			if !equalValues(map[string]any(msg), map[string]any(msg2)) || len(chans) != len(chans2) {
				t.Fatalf("round trip changed the message:\n%#v\n%#v", msg, msg2)
			}
		}
	})
}

// FuzzFernetDecrypt feeds arbitrary tokens to MultiFernet. It must never
// panic, and an accepted plaintext must survive an encrypt/decrypt round
// trip.
func FuzzFernetDecrypt(f *testing.F) {
	mf, _ := newMultiFernet([]string{fuzzKey, "second"})
	now := time.Unix(fernetFixedTS, 0)
	for _, v := range fernetFixedVectors {
		f.Add([]byte(v.token))
	}
	tok, _ := mf.appendEncryptAt(nil, nil, []byte("hello"), fernetFixedTS, fernetFixedIV)
	f.Add(tok)
	f.Add([]byte("gAAAAA"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, token []byte) {
		plain, err := mf.decrypt(nil, token, 70*time.Second, now)
		if err != nil {
			return
		}
		again, _ := mf.appendEncrypt(nil, nil, plain, now)
		back, err := mf.decrypt(nil, again, 70*time.Second, now)
		if err != nil || string(back) != string(plain) {
			t.Fatalf("re-encrypt round trip failed: %v", err)
		}
	})
}
