package auth

import (
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"
)

// Pickles made by CPython 3.11's pickle.dumps, copied here as fixed
// vectors. sessionP* hold Django's logged-in session dict (user 42).
const (
	sessionP2 = "80027d710028580d0000005f617574685f757365725f6964710158020000003432710258120000005f617574685f757365725f6261636b656e6471035829000000646a616e676f2e636f6e747269622e617574682e6261636b656e64732e4d6f64656c4261636b656e647104580f0000005f617574685f757365725f6861736871055840000000616230306435366638303461376636336461396133393736356334643664373462626532393362373933346664316461383231326438363732643031333631377106752e"
	sessionP4 = "800495b0000000000000007d94288c0d5f617574685f757365725f6964948c023432948c125f617574685f757365725f6261636b656e64948c29646a616e676f2e636f6e747269622e617574682e6261636b656e64732e4d6f64656c4261636b656e64948c0f5f617574685f757365725f68617368948c406162303064353666383034613766363364613961333937363563346436643734626265323933623739333466643164613832313264383637326430313336313794752e"
	sessionP5 = "800595b0000000000000007d94288c0d5f617574685f757365725f6964948c023432948c125f617574685f757365725f6261636b656e64948c29646a616e676f2e636f6e747269622e617574682e6261636b656e64732e4d6f64656c4261636b656e64948c0f5f617574685f757365725f68617368948c406162303064353666383034613766363364613961333937363563346436643734626265323933623739333466643164613832313264383637326430313336313794752e"

	// richP* pickle {"_auth_user_id": "7", "cart": [1, 2.5, None, True,
	// False, "x", b"\x00\xff", (1, "a"), {"n": -300000, "big": 2**70,
	// "neg": -2**70}], "_session_expiry": datetime(2026, 1, 15, 12,
	// tzinfo=pytz.utc), "s": {1, 2}, "fs": frozenset(["a"]), "ba":
	// bytearray(b"ab"), "u": "é✓", "d": date(2026, 1, 1), "td":
	// timedelta(seconds=5), "z": a datetime in ZoneInfo("Europe/Paris"),
	// "tz": timezone.utc, "dec": Decimal("1.5"), "paris":
	// pytz.timezone("Europe/Paris")}.
	richP2 = "80027d710028580d0000005f617574685f757365725f69647101580100000037710258040000006361727471035d7104284b014740040000000000004e88895801000000787105635f636f646563730a656e636f64650a7106580300000000c3bf710758060000006c6174696e31710886710952710a4b01580100000061710b86710c7d710d2858010000006e710e4a206cfbff5803000000626967710f8a0900000000000000004058030000006e656771108a090000000000000000c07565580f0000005f73657373696f6e5f6578706972797111636461746574696d650a6461746574696d650a71126806580b00000007c3aa010f0c000000000071136808867114527115637079747a0a5f5554430a711629527117867118527119580100000073711a635f5f6275696c74696e5f5f0a7365740a711b5d711c284b014b026585711d52711e58020000006673711f635f5f6275696c74696e5f5f0a66726f7a656e7365740a71205d7121680b61857122527123580200000062617124635f5f6275696c74696e5f5f0a6279746561727261790a71256806580200000061627126680886712752712885712952712a580100000075712b5805000000c3a9e29c93712c580100000064712d636461746574696d650a646174650a712e6806580500000007c3aa0101712f6808867130527131857132527133580200000074647134636461746574696d650a74696d6564656c74610a71354b004b054b0087713652713758010000007a713868126806580b00000007c3aa01010000000000007139680886713a52713b635f5f6275696c74696e5f5f0a676574617474720a713c637a6f6e65696e666f0a5a6f6e65496e666f0a713d58090000005f756e7069636b6c65713e86713f527140580c0000004575726f70652f506172697371414b018671425271438671445271455802000000747a7146636461746574696d650a74696d657a6f6e650a714768354b004b004b0087714852714985714a52714b5803000000646563714c63646563696d616c0a446563696d616c0a714d5803000000312e35714e85714f527150580500000070617269737151637079747a0a5f700a715228580c0000004575726f70652f506172697371534d1c024b0058030000004c4d547154747155527156752e"
	richP4 = "80049527020000000000007d94288c0d5f617574685f757365725f6964948c0137948c0463617274945d94284b014740040000000000004e88898c017894430200ff944b018c01619486947d94288c016e944a206cfbff8c03626967948a090000000000000000408c036e6567948a090000000000000000c075658c0f5f73657373696f6e5f657870697279948c086461746574696d65948c086461746574696d65949394430a07ea010f0c0000000000948c047079747a948c045f555443949394295294869452948c0173948f94284b014b02908c0266739428680791948c026261948c086275696c74696e73948c096279746561727261799493944302616294859452948c0175948c05c3a9e29c93948c016494680e8c0464617465949394430407ea010194859452948c02746494680e8c0974696d6564656c74619493944b004b054b00879452948c017a946810430a07ea0101000000000000948c086275696c74696e73948c07676574617474729493948c087a6f6e65696e666f948c085a6f6e65496e666f9493948c095f756e7069636b6c6594869452948c0c4575726f70652f5061726973944b0186945294869452948c02747a94680e8c0874696d657a6f6e65949394682d4b004b004b0087945294859452948c03646563948c07646563696d616c948c07446563696d616c9493948c03312e3594859452948c0570617269739468128c025f70949394288c0c4575726f70652f5061726973944d1c024b008c034c4d549474945294752e"
	richP5 = "80059511020000000000007d94288c0d5f617574685f757365725f6964948c0137948c0463617274945d94284b014740040000000000004e88898c017894430200ff944b018c01619486947d94288c016e944a206cfbff8c03626967948a090000000000000000408c036e6567948a090000000000000000c075658c0f5f73657373696f6e5f657870697279948c086461746574696d65948c086461746574696d65949394430a07ea010f0c0000000000948c047079747a948c045f555443949394295294869452948c0173948f94284b014b02908c0266739428680791948c026261949602000000000000006162948c0175948c05c3a9e29c93948c016494680e8c0464617465949394430407ea010194859452948c02746494680e8c0974696d6564656c74619493944b004b054b00879452948c017a946810430a07ea0101000000000000948c086275696c74696e73948c07676574617474729493948c087a6f6e65696e666f948c085a6f6e65496e666f9493948c095f756e7069636b6c6594869452948c0c4575726f70652f5061726973944b0186945294869452948c02747a94680e8c0874696d657a6f6e6594939468284b004b004b0087945294859452948c03646563948c07646563696d616c948c07446563696d616c9493948c03312e3594859452948c0570617269739468128c025f70949394288c0c4575726f70652f5061726973944d1c024b008c034c4d549474945294752e"

	// Refused: a REDUCE of os.system (the classic pickle exploit), the
	// text protocol 0, an OrderedDict, a uuid.UUID (NEWOBJ and BUILD).
	evilP4        = "8004953b000000000000007d94288c0d5f617574685f757365725f6964948c0131948c0178948c05706f736978948c0673797374656d9493948c04747275659485945294752e"
	sessionP0     = "286470300a565f617574685f757365725f69640a70310a5634320a70320a73565f617574685f757365725f6261636b656e640a70330a56646a616e676f2e636f6e747269622e617574682e6261636b656e64732e4d6f64656c4261636b656e640a70340a73565f617574685f757365725f686173680a70350a56616230306435366638303461376636336461396133393736356334643664373462626532393362373933346664316461383231326438363732643031333631370a70360a732e"
	orderedDictP4 = "80049530000000000000007d948c016f948c0b636f6c6c656374696f6e73948c0b4f726465726564446963749493942952948c0161944b0173732e"
	uuidP4        = "80049527000000000000007d948c0175948c0475756964948c04555549449493942981947d948c03696e74944b017362732e"
	// {"l": l} where l contains itself.
	recursiveP4 = "8004950d000000000000007d948c016c945d94680261732e"
	// {"_auth_user_id": 42}, an int rather than Django's str.
	intUserIDP4 = "80049516000000000000007d948c0d5f617574685f757365725f6964944b2a732e"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPickleSessionProtocols(t *testing.T) {
	for name, h := range map[string]string{"p2": sessionP2, "p4": sessionP4, "p5": sessionP5} {
		d, err := decodeSessionPickle(unhex(t, h))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d.len() != 3 {
			t.Errorf("%s: %d entries", name, d.len())
		}
		for k, want := range map[string]string{
			sessionUserIDKey:  "42",
			sessionBackendKey: DefaultAuthBackend,
			sessionHashKey:    "ab00d56f804a7f63da9a39765c4d6d74bbe293b7934fd1da8212d8672d013617",
		} {
			if v, _ := d.get(k); v != want {
				t.Errorf("%s: %s = %#v, want %q", name, k, v, want)
			}
		}
		if d.keys[0] != sessionUserIDKey || d.keys[2] != sessionHashKey {
			t.Errorf("%s: insertion order lost: %v", name, d.keys)
		}
	}
}

func TestPickleRichValues(t *testing.T) {
	for name, h := range map[string]string{"p2": richP2, "p4": richP4, "p5": richP5} {
		d, err := decodeSessionPickle(unhex(t, h))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if v, _ := d.get(sessionUserIDKey); v != "7" {
			t.Errorf("%s: user id %#v", name, v)
		}
		cartV, _ := d.get("cart")
		cart, ok := cartV.(*pickleList)
		if !ok || len(cart.items) != 9 {
			t.Fatalf("%s: cart %#v", name, cartV)
		}
		want := []any{int64(1), 2.5, nil, true, false, "x"}
		for i, w := range want {
			if cart.items[i] != w {
				t.Errorf("%s: cart[%d] = %#v, want %#v", name, i, cart.items[i], w)
			}
		}
		if b, ok := cart.items[6].([]byte); name != "p2" && (!ok || string(b) != "\x00\xff") {
			t.Errorf("%s: bytes %#v", name, cart.items[6])
		}
		if tup, ok := cart.items[7].(pickleTuple); !ok || len(tup) != 2 || tup[0] != int64(1) || tup[1] != "a" {
			t.Errorf("%s: tuple %#v", name, cart.items[7])
		}
		inner, ok := cart.items[8].(*pickleDict)
		if !ok {
			t.Fatalf("%s: inner %#v", name, cart.items[8])
		}
		if n, _ := inner.get("n"); n != int64(-300000) {
			t.Errorf("%s: n = %#v", name, n)
		}
		two70 := new(big.Int).Lsh(big.NewInt(1), 70)
		if b, _ := inner.get("big"); b == nil || b.(*big.Int).Cmp(two70) != 0 {
			t.Errorf("%s: big = %v", name, b)
		}
		if b, _ := inner.get("neg"); b == nil || b.(*big.Int).Cmp(new(big.Int).Neg(two70)) != 0 {
			t.Errorf("%s: neg = %v", name, b)
		}
		if u, _ := d.get("u"); u != "é✓" {
			t.Errorf("%s: u = %#v", name, u)
		}
		exp, _ := d.get("_session_expiry")
		if o, ok := exp.(pickleObject); !ok || o.callable != (pickleGlobal{"datetime", "datetime"}) {
			t.Errorf("%s: _session_expiry = %#v", name, exp)
		}
		z, _ := d.get("z")
		if o, ok := z.(pickleObject); !ok || len(o.args) != 2 {
			t.Errorf("%s: z = %#v", name, z)
		} else if tz, ok := o.args[1].(pickleObject); !ok || tz.callable != (pickleGlobal{"zoneinfo", "ZoneInfo._unpickle"}) {
			t.Errorf("%s: z's zone = %#v", name, o.args[1])
		}
		if s, _ := d.get("fs"); pickleTypeName(s) != "frozenset" && pickleTypeName(s) != "builtins.frozenset object" {
			t.Errorf("%s: fs = %#v", name, s)
		}
	}
}

func TestPickleRefuses(t *testing.T) {
	cases := map[string]struct {
		hex, want string
	}{
		"os.system":          {evilP4, `global "posix.system" is not allowed`},
		"protocol 0":         {sessionP0, "opcode 0x70"}, // the text PUT ('p')
		"OrderedDict":        {orderedDictP4, "collections.OrderedDict"},
		"uuid.UUID":          {uuidP4, "uuid.UUID"},
		"no STOP":            {"80047d94", "no STOP"},
		"protocol 6":         {"80067d2e", "unsupported protocol 6"},
		"frame past the end": {"800495ff000000000000007d2e", "frame longer"},
		"str past the end":   {"80048c057a2e", "past the end"},
		"BINUNICODE8 huge":   {"80048dffffffffffffffff2e", "past the end"},
		"LONG4 negative":     {"80048bffffffff2e", "negative length"},
		"LONG4 huge":         {"80048bffffff7f2e", "past the end"},
		"memo unset":         {"8004680a2e", "memo entry 10"},
		"empty stack":        {"80042e", "stack underflow"},
		"SETITEM on a list":  {"80045d4b014b02732e", "SETITEM on a list"},
		"SETITEMS odd":       {"80047d284b01752e", "odd number"},
		"APPEND on a dict":   {"80047d4b01612e", "APPEND on a dict"},
		"dict key is a list": {"80047d5d4b01732e", "unhashable dict key: list"},
		"REDUCE on a str":    {"80048c01612952942e", "REDUCE on a str"},
		"getattr other":      {"80048c086275696c74696e73948c0767657461747472949394" + "8c08646174657469" + "6d65948c086461746574696d65949394" + "8c0673797374656d948694522e", "datetime.datetime.system"},
		"no MARK":            {"80047d752e", "no MARK"},
		"BUILD":              {"80047d7d622e", "opcode 0x62"},
		"GLOBAL junk":        {"8004637b0a7d0a", "global \"{.}\" is not allowed"},
		"NEWOBJ":             {"80048c086461746574696d65948c086461746574696d6594939429812e", "opcode 0x81"},
		"top level not dict": {"80045d942e", "top-level value is list"},
		"GLOBAL without \\n": {"800463646174657469" + "6d65", "without a newline"},
	}
	for name, c := range cases {
		_, err := decodeSessionPickle(unhex(t, c.hex))
		if err == nil {
			t.Errorf("%s: decoded", name)
			continue
		}
		if !errors.Is(err, errPickle) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, c.want)
		}
	}
}

func TestPickleOddButAllowed(t *testing.T) {
	if _, err := decodeSessionPickle(unhex(t, recursiveP4)); err != nil {
		t.Errorf("a list that contains itself: %v", err)
	}
	d, err := decodeSessionPickle(unhex(t, intUserIDP4))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := d.get(sessionUserIDKey); v != int64(42) {
		t.Errorf("int user id: %#v", v)
	}
	// {1: "a", True: "b"}: Python folds True into 1, keeping the first key.
	d, err = decodeSessionPickle(unhex(t, "80047d28"+"4b018c0161"+"888c0162"+"752e"))
	if err != nil {
		t.Fatal(err)
	}
	if d.len() != 1 || d.values[0] != "b" || d.keys[0] != int64(1) {
		t.Errorf("folded keys: %v %v", d.keys, d.values)
	}
}

func TestPickleEveryPrefixIsRefused(t *testing.T) {
	full := unhex(t, richP4)
	for n := 0; n < len(full); n++ {
		if _, err := decodePickle(full[:n]); err == nil {
			t.Fatalf("a %d-byte prefix of a %d-byte pickle decoded", n, len(full))
		}
	}
}

func TestPickleSizeLimit(t *testing.T) {
	big := make([]byte, maxPickleBytes+1)
	if _, err := decodePickle(big); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("oversized pickle: %v", err)
	}
}

// FuzzPickle feeds arbitrary bytes to the decoder: it must never panic or
// hang, and whatever it accepts must decode the same way twice.
func FuzzPickle(f *testing.F) {
	for _, h := range []string{sessionP2, sessionP4, sessionP5, richP2, richP4, richP5, evilP4, sessionP0,
		orderedDictP4, uuidP4, recursiveP4, intUserIDP4} {
		b, _ := hex.DecodeString(h)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := decodePickle(data)
		if err != nil {
			if !errors.Is(err, errPickle) {
				t.Fatalf("error without errPickle: %v", err)
			}
			return
		}
		v2, err := decodePickle(data)
		if err != nil || pickleTypeName(v) != pickleTypeName(v2) {
			t.Fatalf("second decode: %v (%s vs %s)", err, pickleTypeName(v), pickleTypeName(v2))
		}
	})
}
