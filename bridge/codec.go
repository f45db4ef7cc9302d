package bridge

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// fernetTTLGrace is what channels_redis adds to expiry for the Fernet TTL.
const fernetTTLGrace = 10 * time.Second

// CodecOptions configures a Codec.
type CodecOptions struct {
	// SymmetricEncryptionKeys turns on Fernet encryption; see
	// Config.SymmetricEncryptionKeys. Empty means plain msgpack.
	SymmetricEncryptionKeys []string
	// Expiry is the message expiry; encrypted messages older than
	// Expiry + 10 s are refused. Zero means DefaultExpiry seconds.
	Expiry time.Duration
	// RandomPrefixLength is the length of the random member prefix. Zero
	// means DefaultRandomPrefixLength.
	RandomPrefixLength int
	// Now is the clock used for Fernet timestamps. Nil means time.Now.
	Now func() time.Time
}

// Codec turns messages into channels_redis sorted-set members and back:
// member = random prefix ‖ msgpack, or random prefix ‖ Fernet token of the
// msgpack when keys are set. It is safe for concurrent use.
type Codec struct {
	fernet    *multiFernet
	ttl       time.Duration
	prefixLen int
	now       func() time.Time
	writers   sync.Pool // *encodeScratch
	readers   sync.Pool // *decodeScratch
}

// encodeScratch holds the reusable buffers of one encode.
type encodeScratch struct {
	mw    *msgpackWriter
	token []byte
}

// decodeScratch holds the reusable buffers of one decode.
type decodeScratch struct {
	mr    *msgpackReader
	plain []byte
}

// NewCodec returns a codec for the given options.
func NewCodec(opts CodecOptions) (*Codec, error) {
	c := &Codec{
		ttl:       opts.Expiry + fernetTTLGrace,
		prefixLen: opts.RandomPrefixLength,
		now:       opts.Now,
	}
	if opts.Expiry == 0 {
		c.ttl = DefaultExpiry*time.Second + fernetTTLGrace
	}
	if c.prefixLen == 0 {
		c.prefixLen = DefaultRandomPrefixLength
	}
	if c.prefixLen < 0 {
		return nil, fmt.Errorf("random prefix length %d is negative", c.prefixLen)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if len(opts.SymmetricEncryptionKeys) > 0 {
		f, err := newMultiFernet(opts.SymmetricEncryptionKeys)
		if err != nil {
			return nil, fmt.Errorf("symmetric_encryption_keys: %w", err)
		}
		c.fernet = f
	}
	c.writers.New = func() any { return &encodeScratch{mw: newMsgpackWriter()} }
	c.readers.New = func() any { return &decodeScratch{mr: newMsgpackReader()} }
	return c, nil
}

// Encrypted reports whether members are Fernet tokens.
func (c *Codec) Encrypted() bool { return c.fernet != nil }

// AppendMember appends the member for msg to dst. A non-empty channel is
// stored as the string __asgi_channel__, as send() does for names with '!'.
func (c *Codec) AppendMember(dst []byte, msg Message, channel string) ([]byte, error) {
	s := c.writers.Get().(*encodeScratch)
	defer c.putWriter(s)
	if err := c.appendBody(s, msg, channel != ""); err != nil {
		return dst, err
	}
	if channel != "" {
		if err := s.mw.writeString(asgiChannelKey); err != nil {
			return dst, err
		}
		if err := s.mw.writeString(channel); err != nil {
			return dst, fmt.Errorf("channel name: %w", err)
		}
	}
	return c.frame(dst, s), nil
}

// AppendGroupMember appends the member for msg to dst with
// __asgi_channel__ = channels, as group_send() stores it.
func (c *Codec) AppendGroupMember(dst []byte, msg Message, channels []string) ([]byte, error) {
	s := c.writers.Get().(*encodeScratch)
	defer c.putWriter(s)
	if err := c.appendBody(s, msg, true); err != nil {
		return dst, err
	}
	if err := c.writeChannelList(s.mw, channels); err != nil {
		return dst, err
	}
	return c.frame(dst, s), nil
}

// groupEncoder encodes one message for several channel lists, writing the
// message body once.
type groupEncoder struct {
	c    *Codec
	s    *encodeScratch
	body int // length of the encoded body in s.mw.w.buf
}

// newGroupEncoder encodes msg's body for later appendFor calls. release
// must be called when done.
func (c *Codec) newGroupEncoder(msg Message) (*groupEncoder, error) {
	s := c.writers.Get().(*encodeScratch)
	if err := c.appendBody(s, msg, true); err != nil {
		c.putWriter(s)
		return nil, err
	}
	return &groupEncoder{c: c, s: s, body: len(s.mw.w.buf)}, nil
}

// appendFor appends the member carrying channels to dst.
func (g *groupEncoder) appendFor(dst []byte, channels []string) ([]byte, error) {
	g.s.mw.w.buf = g.s.mw.w.buf[:g.body]
	if err := g.c.writeChannelList(g.s.mw, channels); err != nil {
		return dst, err
	}
	return g.c.frame(dst, g.s), nil
}

func (g *groupEncoder) release() {
	g.c.putWriter(g.s)
	g.s = nil
}

// maxScratch is the largest buffer kept for reuse, so that one huge
// message does not pin its buffers for the life of the process.
const maxScratch = 256 << 10

func (c *Codec) putWriter(s *encodeScratch) {
	if cap(s.mw.w.buf) > maxScratch {
		s.mw.w.buf = nil
	}
	if cap(s.token) > maxScratch {
		s.token = nil
	}
	c.writers.Put(s)
}

func (c *Codec) putReader(s *decodeScratch) {
	if cap(s.plain) > maxScratch {
		s.plain = nil
	}
	if cap(s.mr.buf) > maxScratch {
		s.mr.buf = nil
	}
	s.mr.r.Reset(nil) // drop the reference to the member
	c.readers.Put(s)
}

// appendBody resets s and writes msg's map, with room for
// __asgi_channel__ when withChannel is set.
func (c *Codec) appendBody(s *encodeScratch, msg Message, withChannel bool) error {
	s.mw.w.buf = s.mw.w.buf[:0]
	extra := 0
	if withChannel {
		extra = 1
	}
	if msg == nil {
		return errors.New("message is nil")
	}
	if err := s.mw.writeMessage(msg, extra); err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	return nil
}

func (c *Codec) writeChannelList(mw *msgpackWriter, channels []string) error {
	if len(channels) == 0 {
		return errors.New("group member list is empty")
	}
	if err := mw.writeString(asgiChannelKey); err != nil {
		return err
	}
	if err := mw.enc.EncodeArrayLen(len(channels)); err != nil {
		return err
	}
	for _, ch := range channels {
		if err := mw.writeString(ch); err != nil {
			return fmt.Errorf("channel name: %w", err)
		}
	}
	return nil
}

// frame appends prefix ‖ payload for the msgpack now in s to dst.
func (c *Codec) frame(dst []byte, s *encodeScratch) []byte {
	dst = appendRandom(dst, c.prefixLen)
	if c.fernet == nil {
		return append(dst, s.mw.w.buf...)
	}
	dst, s.token = c.fernet.appendEncrypt(dst, s.token, s.mw.w.buf, c.now())
	return dst
}

// appendRandom appends n random bytes. They only keep identical messages
// apart in a sorted set, so a fast non-cryptographic source is enough.
func appendRandom(dst []byte, n int) []byte {
	for n > 0 {
		v := rand.Uint64()
		for i := 0; i < 8 && n > 0; i++ {
			dst = append(dst, byte(v))
			v >>= 8
			n--
		}
	}
	return dst
}

// DecodeMember decodes a member into the message and the channels named by
// __asgi_channel__ (nil when the field is absent). The field is removed
// from the message.
func (c *Codec) DecodeMember(member []byte) (Message, []string, error) {
	if len(member) < c.prefixLen {
		return nil, nil, fmt.Errorf("member of %d bytes is shorter than the %d-byte random prefix", len(member), c.prefixLen)
	}
	payload := member[c.prefixLen:]
	s := c.readers.Get().(*decodeScratch)
	defer c.putReader(s)
	if c.fernet != nil {
		plain, err := c.fernet.decrypt(s.plain[:0], payload, c.ttl, c.now())
		if err != nil {
			return nil, nil, fmt.Errorf("decrypt: %w", err)
		}
		s.plain = plain
		payload = plain
	}
	msg, chans, err := s.mr.readMember(payload)
	if err != nil {
		return nil, nil, fmt.Errorf("decode msgpack: %w", err)
	}
	return msg, chans, nil
}
