package bridge

import (
	"bytes"
	"encoding/hex"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// sampleMessage has every value kind a channels message can carry.
func sampleMessage() Message {
	return Message{
		"type":    "chat.message",
		"text":    "héllo ✓ 😀",
		"long":    strings.Repeat("x", 40),
		"bytes":   []byte{0, 1, 2, 0xff},
		"empty":   []byte{},
		"int":     42,
		"neg":     int64(-9223372036854775808),
		"big":     uint64(18446744073709551615),
		"maxi64":  int64(math.MaxInt64),
		"u8":      uint8(200),
		"f":       1.5,
		"f32":     float32(0.25),
		"negzero": math.Copysign(0, -1),
		"inf":     math.Inf(1),
		"yes":     true,
		"no":      false,
		"none":    nil,
		"list":    []any{1, "two", 3.0, nil, []any{}},
		"strs":    []string{"a", "b"},
		"nested":  map[string]any{"a": map[string]any{"b": []any{1, map[string]any{"c": "d"}}}},
		"smap":    map[string]string{"k": "v"},
	}
}

// sampleDecoded is sampleMessage as any receiver decodes it.
func sampleDecoded() Message {
	return Message{
		"type":    "chat.message",
		"text":    "héllo ✓ 😀",
		"long":    strings.Repeat("x", 40),
		"bytes":   []byte{0, 1, 2, 0xff},
		"empty":   []byte{},
		"int":     int64(42),
		"neg":     int64(-9223372036854775808),
		"big":     uint64(18446744073709551615),
		"maxi64":  int64(math.MaxInt64),
		"u8":      int64(200),
		"f":       1.5,
		"f32":     0.25,
		"negzero": math.Copysign(0, -1),
		"inf":     math.Inf(1),
		"yes":     true,
		"no":      false,
		"none":    nil,
		"list":    []any{int64(1), "two", 3.0, nil, []any{}},
		"strs":    []any{"a", "b"},
		"nested":  map[string]any{"a": map[string]any{"b": []any{int64(1), map[string]any{"c": "d"}}}},
		"smap":    map[string]any{"k": "v"},
	}
}

// equalValues compares decoded values with their types; floats compare
// by bits so that -0.0 and NaN are checked exactly.
func equalValues(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalValues(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !equalValues(v, w) {
				return false
			}
		}
		return true
	default:
		return a == b
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newTestCodec(t testing.TB, keys ...string) *Codec {
	t.Helper()
	c, err := NewCodec(CodecOptions{SymmetricEncryptionKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCodecRoundTrip(t *testing.T) {
	for _, keys := range [][]string{nil, {"secret-one"}, {"new", "old"}} {
		c := newTestCodec(t, keys...)
		t.Run(strings.Join(keys, ","), func(t *testing.T) {
			member, err := c.AppendMember(nil, sampleMessage(), "specific.abc!def")
			if err != nil {
				t.Fatal(err)
			}
			got, chans, err := c.DecodeMember(member)
			if err != nil {
				t.Fatal(err)
			}
			if len(chans) != 1 || chans[0] != "specific.abc!def" {
				t.Fatalf("channels = %q", chans)
			}
			if !equalValues(map[string]any(got), map[string]any(sampleDecoded())) {
				t.Fatalf("decoded\n%#v\nwant\n%#v", got, sampleDecoded())
			}

			member, err = c.AppendGroupMember(nil, Message{"type": "x"}, []string{"a!1", "a!2"})
			if err != nil {
				t.Fatal(err)
			}
			got, chans, err = c.DecodeMember(member)
			if err != nil {
				t.Fatal(err)
			}
			if len(chans) != 2 || chans[0] != "a!1" || chans[1] != "a!2" || got["type"] != "x" || len(got) != 1 {
				t.Fatalf("group member decoded to %v, %q", got, chans)
			}

			member, err = c.AppendMember(nil, Message{"type": "plain"}, "")
			if err != nil {
				t.Fatal(err)
			}
			if _, chans, err = c.DecodeMember(member); err != nil || chans != nil {
				t.Fatalf("plain send: channels %q, err %v", chans, err)
			}
		})
	}
}

func TestCodecMemberLayout(t *testing.T) {
	c := newTestCodec(t)
	m1, err := c.AppendMember(nil, Message{"type": "a"}, "")
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := c.AppendMember(nil, Message{"type": "a"}, "")
	want := mustHex(t, "81a474797065a161")
	if len(m1) != 12+len(want) || !bytes.Equal(m1[12:], want) {
		t.Fatalf("member = %x, want 12 random bytes + %x", m1, want)
	}
	if bytes.Equal(m1[:12], m2[:12]) {
		t.Fatal("two members got the same random prefix")
	}
	enc := newTestCodec(t, "k")
	m3, _ := enc.AppendMember(nil, Message{"type": "a"}, "")
	if !bytes.HasPrefix(m3[12:], []byte("gAAAAA")) || !bytes.HasSuffix(m3, []byte("=")) && len(m3[12:])%4 != 0 {
		t.Fatalf("encrypted payload is not a padded Fernet token: %q", m3[12:])
	}
}

// TestCodecChannelFieldIsLast checks that __asgi_channel__ is the last map
// entry, after the user's keys, with the right type.
func TestCodecChannelFieldIsLast(t *testing.T) {
	c := newTestCodec(t)
	msg := Message{"type": "t", "a": 1, "b": 2, "c": 3}
	for _, tc := range []struct {
		name   string
		encode func() ([]byte, error)
		list   bool
	}{
		{"send", func() ([]byte, error) { return c.AppendMember(nil, msg, "x!y") }, false},
		{"group", func() ([]byte, error) { return c.AppendGroupMember(nil, msg, []string{"x!y"}) }, true},
	} {
		member, err := tc.encode()
		if err != nil {
			t.Fatal(err)
		}
		d := msgpack.NewDecoder(bytes.NewReader(member[12:]))
		n, err := d.DecodeMapLen()
		if err != nil || n != 5 {
			t.Fatalf("%s: map len %d, %v", tc.name, n, err)
		}
		var lastKey string
		var lastVal any
		for range n {
			lastKey, _ = d.DecodeString()
			lastVal, _ = d.DecodeInterface()
		}
		if lastKey != asgiChannelKey {
			t.Fatalf("%s: last key %q", tc.name, lastKey)
		}
		if _, isList := lastVal.([]any); isList != tc.list {
			t.Fatalf("%s: __asgi_channel__ = %#v", tc.name, lastVal)
		}
	}
}

// TestMsgpackProfile checks the exact bytes Python's msgpack writes for
// each kind of value.
func TestMsgpackProfile(t *testing.T) {
	cases := []struct {
		v    any
		want string
	}{
		{0, "00"}, {127, "7f"}, {128, "cc80"}, {255, "ccff"}, {65535, "cdffff"},
		{uint32(4294967295), "ceffffffff"}, {int64(math.MaxInt64), "cf7fffffffffffffff"},
		{uint64(math.MaxUint64), "cfffffffffffffffff"}, {-1, "ff"}, {-32, "e0"}, {-33, "d0df"},
		{-128, "d080"}, {-32768, "d18000"}, {int32(math.MinInt32), "d280000000"},
		{int64(math.MinInt64), "d38000000000000000"},
		{1.5, "cb3ff8000000000000"}, {float32(1.5), "cb3ff8000000000000"}, {2.0, "cb4000000000000000"},
		{math.Copysign(0, -1), "cb8000000000000000"},
		{"", "a0"}, {"hello", "a568656c6c6f"}, {strings.Repeat("a", 32), "d920" + strings.Repeat("61", 32)},
		{[]byte{1, 2}, "c4020102"}, {[]byte(nil), "c400"}, {nil, "c0"}, {true, "c3"}, {false, "c2"},
		{[]any{1, "a"}, "9201a161"}, {[]string{"a"}, "91a161"}, {map[string]any{"k": 1}, "81a16b01"},
	}
	for _, tc := range cases {
		mw := newMsgpackWriter()
		if err := mw.writeValue(tc.v, 0); err != nil {
			t.Fatalf("%#v: %v", tc.v, err)
		}
		if got := hex.EncodeToString(mw.w.buf); got != tc.want {
			t.Errorf("%#v encoded as %s, want %s", tc.v, got, tc.want)
		}
	}
}

// Members written by the real channels_redis 4.0 (vectors_plain.json).
const (
	pyIntegersMember = "ec64505ba8908e4bb4dda18d8fa474797065a76e756d62657273a47a65726f00ae706f735f666978696e745f6d61787fae6e65675f666978696e745f6d696ee0a575696e7438ccffa4696e7438d080a675696e743136cdffffa5696e743136d18000a675696e743332ceffffffffa5696e743332d280000000aa75696e7436345f6d6178cfffffffffffffffffa9696e7436345f6d696ed38000000000000000a9696e7436345f6d6178cf7fffffffffffffffa56e65673333d0dfa6706f73313238cc80"
	pyFloatsMember   = "b6ba68b3a0934efe8d4cfeae89a474797065a6666c6f617473a468616c66cb3ff8000000000000a27069cb400921fb54442d18a86e65675f7a65726fcb8000000000000000aa696e745f76616c756564cb4000000000000000a474696e79cb0000000000000001a468756765cb7e37e43c8800759ca3696e66cb7ff0000000000000a76e65675f696e66cbfff0000000000000"
	pyGroupMember    = "7ce4c7fd1b1e6081e4502b7183a474797065ac636861742e6d657373616765a474657874a568656c6c6fb05f5f617367695f6368616e6e656c5f5f92d94a73706563696669632e3031323334353637383961626364656630313233343536373839616263646566216161616161616161616161616161616161616161616161616161616161616161d94a73706563696669632e3031323334353637383961626364656630313233343536373839616263646566216262626262626262626262626262626262626262626262626262626262626262"
	pySpecificMember = "bdbcd16999ffae246c0b4de983a474797065ac636861742e6d657373616765a474657874a568656c6c6fb05f5f617367695f6368616e6e656c5f5fd94a73706563696669632e3031323334353637383961626364656630313233343536373839616263646566216161616161616161616161616161616161616161616161616161616161616161"
	pyBytesKeyMember = "500f69d8633eaecafd57260782a474797065a36f6464c40662696e6b6579d9206279746573206b65797320737572766976652028507974686f6e206f6e6c7929"
)

func TestDecodePythonMembers(t *testing.T) {
	c := newTestCodec(t)
	msg, chans, err := c.DecodeMember(mustHex(t, pyIntegersMember))
	if err != nil {
		t.Fatal(err)
	}
	wantInts := Message{
		"type": "numbers", "zero": int64(0), "pos_fixint_max": int64(127), "neg_fixint_min": int64(-32),
		"uint8": int64(255), "int8": int64(-128), "uint16": int64(65535), "int16": int64(-32768),
		"uint32": int64(4294967295), "int32": int64(-2147483648), "uint64_max": uint64(math.MaxUint64),
		"int64_min": int64(math.MinInt64), "int64_max": int64(math.MaxInt64), "neg33": int64(-33), "pos128": int64(128),
	}
	if chans != nil || !equalValues(map[string]any(msg), map[string]any(wantInts)) {
		t.Fatalf("integers: %#v %q", msg, chans)
	}

	msg, _, err = c.DecodeMember(mustHex(t, pyFloatsMember))
	if err != nil {
		t.Fatal(err)
	}
	wantFloats := Message{
		"type": "floats", "half": 1.5, "pi": math.Pi, "neg_zero": math.Copysign(0, -1), "int_valued": 2.0,
		"tiny": 5e-324, "huge": 1e300, "inf": math.Inf(1), "neg_inf": math.Inf(-1),
	}
	if !equalValues(map[string]any(msg), map[string]any(wantFloats)) {
		t.Fatalf("floats: %#v", msg)
	}

	const a = "specific.0123456789abcdef0123456789abcdef!aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	const b = "specific.0123456789abcdef0123456789abcdef!bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	msg, chans, err = c.DecodeMember(mustHex(t, pyGroupMember))
	if err != nil || len(chans) != 2 || chans[0] != a || chans[1] != b || len(msg) != 2 || msg["text"] != "hello" {
		t.Fatalf("group member: %v %q %v", msg, chans, err)
	}
	msg, chans, err = c.DecodeMember(mustHex(t, pySpecificMember))
	if err != nil || len(chans) != 1 || chans[0] != a || msg["type"] != "chat.message" {
		t.Fatalf("specific member: %v %q %v", msg, chans, err)
	}

	// Our encoder writes the same bytes as Python for a one-key-at-a-time
	// message (map order is the only freedom).
	enc, err := c.AppendMember(nil, Message{"type": "numbers"}, "")
	if err != nil || hex.EncodeToString(enc[12:]) != "81a474797065a76e756d62657273" {
		t.Fatalf("encode: %x %v", enc, err)
	}
}

func TestDecodeMemberErrors(t *testing.T) {
	plain := newTestCodec(t)
	pre := strings.Repeat("00", 12)
	cases := []struct {
		name, hex, want string
	}{
		{"short", "0011", "shorter than"},
		{"empty payload", pre, "empty payload"},
		{"not a map", pre + "92a161a162", "not a map"},
		{"truncated", pre + "82a474797065", "truncated"},
		{"int key", pre + "82a474797065a16101a178", "only string keys"},
		{"bytes key", pyBytesKeyMember, "only string keys"},
		{"bad utf8 value", pre + "81a474797065a2c328", "UTF-8"},
		{"bad utf8 key", pre + "81a2c328a161", "UTF-8"},
		{"trailing", pre + "80c0", "extra data"},
		{"ext", pre + "81a161d40102", "ext type"},
		{"reserved 0xc1", pre + "81a161c1", "not valid"},
		{"huge array", pre + "81a161dd7fffffff", "bytes left"},
		{"huge str", pre + "81a161db7fffffff", "left"},
		{"huge map", pre + "df7fffffff", "bytes left"},
		{"bad channel type", pre + "81b05f5f617367695f6368616e6e656c5f5f01", "not a string or a list"},
		{"bad channel item", pre + "81b05f5f617367695f6368616e6e656c5f5f9101", "not a string"},
		{"deep", pre + "81a161" + strings.Repeat("91", 600) + "c0", "deeper"},
	}
	for _, tc := range cases {
		_, _, err := plain.DecodeMember(mustHex(t, tc.hex))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}

	enc := newTestCodec(t, "right")
	wrong := newTestCodec(t, "wrong")
	member, err := wrong.AppendMember(nil, Message{"type": "x"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := enc.DecodeMember(member); err == nil || !strings.Contains(err.Error(), "no configured key") {
		t.Errorf("wrong key: %v", err)
	}
	plainMember, _ := plain.AppendMember(nil, Message{"type": "x"}, "")
	if _, _, err := enc.DecodeMember(plainMember); err == nil || !strings.Contains(err.Error(), "decrypt") {
		t.Errorf("plain member to encrypted codec: %v", err)
	}
}

func TestEncodeErrors(t *testing.T) {
	c := newTestCodec(t)
	cyc := []any{nil}
	cyc[0] = cyc
	cases := []struct {
		name string
		msg  Message
		want string
	}{
		{"reserved", Message{"type": "x", asgiChannelKey: "y"}, "reserved"},
		{"type", Message{"type": struct{}{}}, "unsupported type"},
		{"utf8 value", Message{"type": "\xff"}, "UTF-8"},
		{"utf8 key", Message{"\xff": 1}, "UTF-8"},
		{"nested utf8", Message{"a": []any{map[string]any{"b": "\xc3"}}}, "UTF-8"},
		{"cycle", Message{"a": cyc}, "deeper"},
		{"nil", nil, "nil"},
	}
	for _, tc := range cases {
		if _, err := c.AppendMember(nil, tc.msg, ""); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := c.AppendGroupMember(nil, Message{"type": "x"}, nil); err == nil {
		t.Error("group member with no channels encoded")
	}
}

func TestGroupEncoderReusesBody(t *testing.T) {
	for _, keys := range [][]string{nil, {"k"}} {
		c := newTestCodec(t, keys...)
		g, err := c.newGroupEncoder(sampleMessage())
		if err != nil {
			t.Fatal(err)
		}
		lists := [][]string{{"a!1", "a!2"}, {"b!1"}, {"plain.name"}}
		var members [][]byte
		for _, l := range lists {
			m, err := g.appendFor(nil, l)
			if err != nil {
				t.Fatal(err)
			}
			members = append(members, m)
		}
		g.release()
		for i, m := range members {
			msg, chans, err := c.DecodeMember(m)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(chans, ",") != strings.Join(lists[i], ",") || !equalValues(map[string]any(msg), map[string]any(sampleDecoded())) {
				t.Fatalf("member %d: %q %#v", i, chans, msg)
			}
		}
	}
}

func TestCodecClockAndTTL(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	c, err := NewCodec(CodecOptions{SymmetricEncryptionKeys: []string{"k"}, Expiry: 5 * time.Second, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	member, _ := c.AppendMember(nil, Message{"type": "x"}, "")
	now = now.Add(15 * time.Second) // TTL is expiry + 10 s
	if _, _, err := c.DecodeMember(member); err != nil {
		t.Fatalf("at the TTL: %v", err)
	}
	now = now.Add(time.Second)
	if _, _, err := c.DecodeMember(member); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("past the TTL: %v", err)
	}
}

func BenchmarkAppendMember(b *testing.B) {
	c := newTestCodec(b)
	msg := Message{"type": "chat.message", "message": strings.Repeat("m", 150), "user_id": 42, "username": "alice"}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = c.AppendMember(buf[:0], msg, "")
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeMember(b *testing.B) {
	c := newTestCodec(b)
	msg := Message{"type": "chat.message", "message": strings.Repeat("m", 150), "user_id": 42, "username": "alice"}
	member, _ := c.AppendGroupMember(nil, msg, []string{"specific.abc!1"})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.DecodeMember(member); err != nil {
			b.Fatal(err)
		}
	}
}
