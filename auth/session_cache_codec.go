package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// sessionCodec turns a cached value back into the session's auth fields,
// as the cache backend's get() would: an integer stays an integer (never a
// session), then decompress when that works, then deserialize.
type sessionCodec struct {
	serializer string
	compressor cacheDecompressor
}

func newSessionCodec(o *SessionCacheOptions) (*sessionCodec, error) {
	c, err := newCacheDecompressor(o.Compressor)
	if err != nil {
		return nil, err
	}
	switch o.Serializer {
	case cacheSerializerPickle, cacheSerializerJSON, cacheSerializerMsgpack:
	default:
		c.close()
		return nil, fmt.Errorf("serializer %q is not supported", o.Serializer)
	}
	return &sessionCodec{serializer: o.Serializer, compressor: c}, nil
}

func (c *sessionCodec) close() { c.compressor.close() }

// authKeys are the session keys an identity is made of.
var authKeys = [...]string{sessionUserIDKey, sessionBackendKey, sessionHashKey}

// decode returns the auth fields of a stored session as JSON values, in
// the shape sessionIdentity reads; keys the session lacks are absent. A
// value that is not a dict is an error.
func (c *sessionCodec) decode(raw []byte) (map[string]json.RawMessage, error) {
	if len(raw) > maxPickleBytes {
		return nil, fmt.Errorf("cached value of %d bytes is larger than any session", len(raw))
	}
	// Both backends store Python ints as bare digits, for INCR.
	if isPythonInt(raw) {
		return nil, errors.New("cached value is an integer, not a session")
	}
	data := raw
	out, ok, err := c.compressor.decompress(raw)
	if err != nil {
		return nil, err
	}
	if ok {
		data = out
	}
	switch c.serializer {
	case cacheSerializerJSON:
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil || m == nil {
			return nil, errors.New("cached value is not a JSON object")
		}
		fields := map[string]json.RawMessage{}
		for _, k := range authKeys {
			if v, ok := m[k]; ok {
				fields[k] = v
			}
		}
		return fields, nil
	case cacheSerializerMsgpack:
		return msgpackAuthFields(data)
	default:
		d, err := decodeSessionPickle(data)
		if err != nil {
			return nil, err
		}
		return authFields(d.get), nil
	}
}

// msgpackAuthFields reads the auth keys of a msgpack map with str keys.
// It walks the map itself and skips every other value: the library's
// generic map decoding sizes a map by its declared length, which a
// hostile value sets to billions.
func msgpackAuthFields(data []byte) (map[string]json.RawMessage, error) {
	notMap := errors.New("cached value is not a msgpack map with str keys")
	dec := msgpack.NewDecoder(bytes.NewReader(data))
	n, err := dec.DecodeMapLen()
	if err != nil || n < 0 || n > len(data)/2 {
		return nil, notMap
	}
	fields := map[string]json.RawMessage{}
	for range n {
		k, err := dec.DecodeString()
		if err != nil {
			return nil, notMap
		}
		if !isAuthKey(k) {
			if err := dec.Skip(); err != nil {
				return nil, notMap
			}
			continue
		}
		c, err := dec.PeekCode()
		if err != nil {
			return nil, notMap
		}
		if !msgpcode.IsFixedNum(c) && !msgpcode.IsString(c) && !msgpcode.IsBin(c) && !isMsgpackScalar(c) {
			if err := dec.Skip(); err != nil { // a container or extension: no auth value
				return nil, notMap
			}
			fields[k] = json.RawMessage("[]")
			continue
		}
		v, err := dec.DecodeInterface()
		if err != nil {
			return nil, notMap
		}
		if b, ok := v.([]byte); ok {
			v = string(b)
		}
		fields[k] = scalarJSON(v)
	}
	return fields, nil
}

// isMsgpackScalar reports codes of nil, bools, floats and sized ints.
func isMsgpackScalar(c byte) bool {
	switch c {
	case msgpcode.Nil, msgpcode.False, msgpcode.True, msgpcode.Float, msgpcode.Double,
		msgpcode.Uint8, msgpcode.Uint16, msgpcode.Uint32, msgpcode.Uint64,
		msgpcode.Int8, msgpcode.Int16, msgpcode.Int32, msgpcode.Int64:
		return true
	}
	return false
}

func isAuthKey(k string) bool {
	for _, a := range authKeys {
		if k == a {
			return true
		}
	}
	return false
}

// authFields reads the auth keys of a decoded session as JSON, so that
// every engine applies the same checks (sessionIdentity).
func authFields(get func(string) (any, bool)) map[string]json.RawMessage {
	fields := map[string]json.RawMessage{}
	for _, k := range authKeys {
		if v, ok := get(k); ok {
			fields[k] = scalarJSON(v)
		}
	}
	return fields
}

// scalarJSON writes a decoded scalar as JSON. Containers and objects
// become an empty array, which no auth check accepts.
func scalarJSON(v any) json.RawMessage {
	switch x := v.(type) {
	case nil:
		return json.RawMessage("null")
	case bool:
		return json.RawMessage(strconv.FormatBool(x))
	case string:
		b, _ := json.Marshal(x)
		return b
	case int64:
		return json.RawMessage(strconv.FormatInt(x, 10))
	case *big.Int:
		return json.RawMessage(x.String())
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return json.RawMessage("[]")
		}
		return json.RawMessage(strconv.FormatFloat(x, 'g', -1, 64))
	// msgpack's integer and float types.
	case int8, int16, int32, int, uint8, uint16, uint32, uint64, uint, float32:
		return json.RawMessage(fmt.Sprint(x))
	}
	return json.RawMessage("[]")
}

// isPythonInt reports whether int(value) succeeds in Python for ASCII
// bytes: optional whitespace, an optional sign, digits with single
// underscores between them.
func isPythonInt(b []byte) bool {
	i, j := 0, len(b)
	for i < j && isBytesSpace(b[i]) {
		i++
	}
	for j > i && isBytesSpace(b[j-1]) {
		j--
	}
	if i < j && (b[i] == '+' || b[i] == '-') {
		i++
	}
	if i == j {
		return false
	}
	prevDigit := false
	for k := i; k < j; k++ {
		switch c := b[k]; {
		case c >= '0' && c <= '9':
			prevDigit = true
		case c == '_' && prevDigit && k+1 < j:
			prevDigit = false
		default:
			return false
		}
	}
	return prevDigit
}

// isBytesSpace is Python's bytes whitespace (ASCII only).
func isBytesSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}
