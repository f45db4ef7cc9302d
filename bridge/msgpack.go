package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// maxDepth bounds nesting on both sides: encoding refuses cycles and
// decoding refuses hostile inputs that would recurse without end.
const maxDepth = 512

// appendWriter is an io.Writer and io.ByteWriter appending to a slice, so
// the msgpack encoder writes straight into a pooled buffer.
type appendWriter struct {
	buf []byte
}

func (w *appendWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	return len(p), nil
}

func (w *appendWriter) WriteByte(c byte) error {
	w.buf = append(w.buf, c)
	return nil
}

// msgpackWriter encodes Message values with the profile Python's msgpack
// writes: str for strings, bin for []byte, the smallest integer form with
// unsigned types for non-negative numbers, float64 for every float, and
// string map keys only.
type msgpackWriter struct {
	w   appendWriter
	enc *msgpack.Encoder
}

func newMsgpackWriter() *msgpackWriter {
	mw := &msgpackWriter{}
	mw.enc = msgpack.NewEncoder(&mw.w)
	return mw
}

// writeMessage writes msg as a map. extra > 0 reserves that many more
// entries in the map header, written by the caller afterwards.
func (mw *msgpackWriter) writeMessage(msg Message, extra int) error {
	if _, ok := msg[asgiChannelKey]; ok {
		return fmt.Errorf("message must not contain the reserved key %q", asgiChannelKey)
	}
	if err := mw.enc.EncodeMapLen(len(msg) + extra); err != nil {
		return err
	}
	for k, v := range msg {
		if err := mw.writeString(k); err != nil {
			return fmt.Errorf("key: %w", err)
		}
		if err := mw.writeValue(v, 1); err != nil {
			return fmt.Errorf("%q: %w", k, err)
		}
	}
	return nil
}

func (mw *msgpackWriter) writeString(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("string is not valid UTF-8")
	}
	return mw.enc.EncodeString(s)
}

func (mw *msgpackWriter) writeValue(v any, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("nested deeper than %d levels (a cycle?)", maxDepth)
	}
	e := mw.enc
	switch x := v.(type) {
	case nil:
		return e.EncodeNil()
	case bool:
		return e.EncodeBool(x)
	case string:
		return mw.writeString(x)
	case []byte:
		if x == nil {
			x = []byte{}
		}
		return e.EncodeBytes(x)
	case int:
		return e.EncodeInt(int64(x))
	case int8:
		return e.EncodeInt(int64(x))
	case int16:
		return e.EncodeInt(int64(x))
	case int32:
		return e.EncodeInt(int64(x))
	case int64:
		return e.EncodeInt(x)
	case uint:
		return e.EncodeUint(uint64(x))
	case uint8:
		return e.EncodeUint(uint64(x))
	case uint16:
		return e.EncodeUint(uint64(x))
	case uint32:
		return e.EncodeUint(uint64(x))
	case uint64:
		return e.EncodeUint(x)
	case float32:
		return e.EncodeFloat64(float64(x))
	case float64:
		return e.EncodeFloat64(x)
	case []any:
		if err := e.EncodeArrayLen(len(x)); err != nil {
			return err
		}
		for i, item := range x {
			if err := mw.writeValue(item, depth+1); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return nil
	case []string:
		if err := e.EncodeArrayLen(len(x)); err != nil {
			return err
		}
		for i, item := range x {
			if err := mw.writeString(item); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return nil
	case map[string]any:
		if err := e.EncodeMapLen(len(x)); err != nil {
			return err
		}
		for k, item := range x {
			if err := mw.writeString(k); err != nil {
				return fmt.Errorf("key: %w", err)
			}
			if err := mw.writeValue(item, depth+1); err != nil {
				return fmt.Errorf("%q: %w", k, err)
			}
		}
		return nil
	case map[string]string:
		if err := e.EncodeMapLen(len(x)); err != nil {
			return err
		}
		for k, item := range x {
			if err := mw.writeString(k); err != nil {
				return fmt.Errorf("key: %w", err)
			}
			if err := mw.writeString(item); err != nil {
				return fmt.Errorf("%q: %w", k, err)
			}
		}
		return nil
	default:
		return fmt.Errorf("unsupported type %T (use nil, bool, integers, floats, string, []byte, []any, []string, map[string]any)", v)
	}
}

// msgpackReader decodes the msgpack of one message leniently (any integer
// width, float32 or float64, every str form) but refuses what Python's
// receiver would refuse: non-map top level, non-string map keys, invalid
// UTF-8, ext types and trailing bytes.
type msgpackReader struct {
	r   bytes.Reader
	dec *msgpack.Decoder
	buf []byte
	// names holds map keys and channel names already seen, which repeat
	// from message to message, so that decoding them allocates nothing.
	names map[string]string
}

// Bounds of the per-reader name cache: it is emptied when full, so a
// stream of distinct names costs no more than plain decoding.
const (
	maxCachedNames   = 1024
	maxCachedNameLen = 128
)

func newMsgpackReader() *msgpackReader {
	mr := &msgpackReader{names: make(map[string]string)}
	mr.dec = msgpack.NewDecoder(&mr.r)
	return mr
}

// readMessage decodes data, which must be one map and nothing else.
func (mr *msgpackReader) readMessage(data []byte) (Message, error) {
	mr.r.Reset(data)
	mr.dec.ResetReader(&mr.r)
	code, err := mr.dec.PeekCode()
	if err != nil {
		return nil, fmt.Errorf("empty payload: %w", err)
	}
	if !isMapCode(code) {
		return nil, fmt.Errorf("top level is msgpack type 0x%02x, not a map", code)
	}
	v, err := mr.readValue(0)
	if err != nil {
		return nil, err
	}
	if mr.r.Len() != 0 {
		return nil, fmt.Errorf("%d bytes of extra data after the message", mr.r.Len())
	}
	return v.(Message), nil
}

// readMember decodes a stored message like readMessage, but takes the
// top-level __asgi_channel__ out as the list of target channels (nil when
// absent): a str after send(), an array of str after group_send().
func (mr *msgpackReader) readMember(data []byte) (Message, []string, error) {
	mr.r.Reset(data)
	mr.dec.ResetReader(&mr.r)
	code, err := mr.dec.PeekCode()
	if err != nil {
		return nil, nil, fmt.Errorf("empty payload: %w", err)
	}
	if !isMapCode(code) {
		return nil, nil, fmt.Errorf("top level is msgpack type 0x%02x, not a map", code)
	}
	n, err := mr.dec.DecodeMapLen()
	if err != nil {
		return nil, nil, truncated(err)
	}
	if 2*n > mr.r.Len() {
		return nil, nil, fmt.Errorf("map of %d entries but only %d bytes left", n, mr.r.Len())
	}
	m := make(Message, n)
	var chans []string
	for range n {
		k, err := mr.readKey()
		if err != nil {
			return nil, nil, err
		}
		if k == asgiChannelKey {
			if chans, err = mr.readTarget(); err != nil {
				return nil, nil, err
			}
			if chans == nil {
				chans = []string{}
			}
			continue
		}
		if m[k], err = mr.readValue(1); err != nil {
			return nil, nil, fmt.Errorf("%q: %w", k, err)
		}
	}
	if mr.r.Len() != 0 {
		return nil, nil, fmt.Errorf("%d bytes of extra data after the message", mr.r.Len())
	}
	return m, chans, nil
}

// readTarget reads the value of __asgi_channel__.
func (mr *msgpackReader) readTarget() ([]string, error) {
	c, err := mr.dec.PeekCode()
	if err != nil {
		return nil, truncated(err)
	}
	switch {
	case msgpcode.IsString(c):
		s, err := mr.readName()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", asgiChannelKey, err)
		}
		return []string{s}, nil
	case isArrayCode(c):
		n, err := mr.dec.DecodeArrayLen()
		if err != nil {
			return nil, truncated(err)
		}
		if n > mr.r.Len() {
			return nil, fmt.Errorf("array of %d items but only %d bytes left", n, mr.r.Len())
		}
		out := make([]string, n)
		for i := range out {
			ic, err := mr.dec.PeekCode()
			if err != nil {
				return nil, truncated(err)
			}
			if !msgpcode.IsString(ic) {
				v, err := mr.readValue(2)
				if err != nil {
					return nil, fmt.Errorf("%s[%d]: %w", asgiChannelKey, i, err)
				}
				return nil, fmt.Errorf("%s[%d] is %T, not a string", asgiChannelKey, i, v)
			}
			if out[i], err = mr.readName(); err != nil {
				return nil, fmt.Errorf("%s[%d]: %w", asgiChannelKey, i, err)
			}
		}
		return out, nil
	}
	v, err := mr.readValue(1)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", asgiChannelKey, err)
	}
	return nil, fmt.Errorf("%s is %T, not a string or a list", asgiChannelKey, v)
}

// readKey reads a map key, which must be a str.
func (mr *msgpackReader) readKey() (string, error) {
	kc, err := mr.dec.PeekCode()
	if err != nil {
		return "", truncated(err)
	}
	if !msgpcode.IsString(kc) {
		return "", fmt.Errorf("map key has msgpack type 0x%02x; only string keys are allowed", kc)
	}
	k, err := mr.readName()
	if err != nil {
		return "", fmt.Errorf("map key: %w", err)
	}
	return k, nil
}

func isMapCode(c byte) bool {
	return msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32
}

func isArrayCode(c byte) bool {
	return msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32
}

func (mr *msgpackReader) readValue(depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxDepth)
	}
	d := mr.dec
	c, err := d.PeekCode()
	if err != nil {
		return nil, truncated(err)
	}
	switch {
	case c == msgpcode.Nil:
		return nil, d.DecodeNil()
	case c == msgpcode.True || c == msgpcode.False:
		return d.DecodeBool()
	case c <= msgpcode.PosFixedNumHigh || c == msgpcode.Uint8 || c == msgpcode.Uint16 ||
		c == msgpcode.Uint32 || c == msgpcode.Uint64:
		n, err := d.DecodeUint64()
		if err != nil {
			return nil, truncated(err)
		}
		if n <= 1<<63-1 {
			return int64(n), nil
		}
		return n, nil
	case c >= msgpcode.NegFixedNumLow || c == msgpcode.Int8 || c == msgpcode.Int16 ||
		c == msgpcode.Int32 || c == msgpcode.Int64:
		n, err := d.DecodeInt64()
		return n, truncated(err)
	case c == msgpcode.Float || c == msgpcode.Double:
		f, err := d.DecodeFloat64()
		return f, truncated(err)
	case msgpcode.IsString(c):
		return mr.readString()
	case msgpcode.IsBin(c):
		n, err := d.DecodeBytesLen()
		if err != nil {
			return nil, truncated(err)
		}
		if n > mr.r.Len() {
			return nil, fmt.Errorf("bin of %d bytes but only %d left", n, mr.r.Len())
		}
		b := make([]byte, n)
		if _, err := mr.r.Read(b); err != nil && n > 0 {
			return nil, truncated(err)
		}
		return b, nil
	case isArrayCode(c):
		n, err := d.DecodeArrayLen()
		if err != nil {
			return nil, truncated(err)
		}
		if n > mr.r.Len() {
			return nil, fmt.Errorf("array of %d items but only %d bytes left", n, mr.r.Len())
		}
		arr := make([]any, n)
		for i := range arr {
			if arr[i], err = mr.readValue(depth + 1); err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return arr, nil
	case isMapCode(c):
		n, err := d.DecodeMapLen()
		if err != nil {
			return nil, truncated(err)
		}
		if 2*n > mr.r.Len() {
			return nil, fmt.Errorf("map of %d entries but only %d bytes left", n, mr.r.Len())
		}
		m := make(map[string]any, n)
		for range n {
			k, err := mr.readKey()
			if err != nil {
				return nil, err
			}
			if m[k], err = mr.readValue(depth + 1); err != nil {
				return nil, fmt.Errorf("%q: %w", k, err)
			}
		}
		return m, nil
	case msgpcode.IsExt(c):
		return nil, fmt.Errorf("msgpack ext type 0x%02x is not supported", c)
	default:
		return nil, fmt.Errorf("msgpack type 0x%02x is not valid", c)
	}
}

// readString reads a str of any width, checking that it is UTF-8.
func (mr *msgpackReader) readString() (string, error) {
	b, err := mr.readStringBytes()
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// readName reads a str that tends to repeat across messages (a map key, a
// channel name) and returns the cached copy when there is one.
func (mr *msgpackReader) readName() (string, error) {
	b, err := mr.readStringBytes()
	if err != nil {
		return "", err
	}
	if len(b) > maxCachedNameLen {
		return string(b), nil
	}
	if s, ok := mr.names[string(b)]; ok {
		return s, nil
	}
	if len(mr.names) >= maxCachedNames {
		clear(mr.names)
	}
	s := string(b)
	mr.names[s] = s
	return s, nil
}

// readStringBytes reads a str of any width into the reader's buffer,
// checking that it is UTF-8. The bytes are valid until the next read.
func (mr *msgpackReader) readStringBytes() ([]byte, error) {
	n, err := mr.dec.DecodeBytesLen()
	if err != nil {
		return nil, truncated(err)
	}
	if n > mr.r.Len() {
		return nil, fmt.Errorf("string of %d bytes but only %d left", n, mr.r.Len())
	}
	if n < 0 {
		n = 0
	}
	if cap(mr.buf) < n {
		mr.buf = make([]byte, n)
	}
	b := mr.buf[:n]
	if _, err := mr.r.Read(b); err != nil && n > 0 {
		return nil, truncated(err)
	}
	if !utf8.Valid(b) {
		return nil, errors.New("string is not valid UTF-8")
	}
	return b, nil
}

// truncated turns the decoder's EOF errors into a readable message.
func truncated(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("truncated msgpack: %w", err)
}
