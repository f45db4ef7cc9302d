package bridge

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Fernet token layout: version ‖ timestamp ‖ IV ‖ AES-128-CBC ciphertext ‖
// HMAC-SHA256 of everything before it.
const (
	fernetVersion    = 0x80
	fernetHeaderLen  = 1 + 8 + aes.BlockSize
	fernetMACLen     = sha256.Size
	fernetMinLen     = fernetHeaderLen + aes.BlockSize + fernetMACLen
	fernetMaxSkewSec = 60 // tokens stamped further in the future are refused, as in cryptography
)

var (
	errFernetFormat    = errors.New("fernet token is malformed")
	errFernetSignature = errors.New("fernet token signature matches no configured key")
	errFernetPadding   = errors.New("fernet token has bad padding")
)

// fernetKey is one derived key: channels_redis hashes each configured key
// with SHA-256 and uses the digest as a Fernet key.
type fernetKey struct {
	signing []byte // digest[0:16], the HMAC-SHA256 key
	block   cipher.Block
}

// deriveFernetKey derives the key channels_redis uses for a configured key
// given as bytes (a str key is its UTF-8 bytes).
func deriveFernetKey(user []byte) (fernetKey, []byte) {
	digest := sha256.Sum256(user)
	block, err := aes.NewCipher(digest[16:])
	if err != nil {
		// aes.NewCipher only fails on a bad key length; 16 is fixed here.
		panic("aes-128 key: " + err.Error())
	}
	return fernetKey{signing: append([]byte(nil), digest[:16]...), block: block}, digest[:]
}

// multiFernet encrypts with its first key and decrypts with any of them,
// like cryptography's MultiFernet.
type multiFernet struct {
	keys []fernetKey
}

// newMultiFernet derives the keys from configured strings.
func newMultiFernet(keys []string) (*multiFernet, error) {
	if len(keys) == 0 {
		return nil, errors.New("no encryption keys")
	}
	f := &multiFernet{}
	for i, k := range keys {
		if k == "" {
			return nil, fmt.Errorf("encryption key %d is empty", i)
		}
		fk, _ := deriveFernetKey([]byte(k))
		f.keys = append(f.keys, fk)
	}
	return f, nil
}

// appendEncrypt appends the base64url token of plaintext to dst, stamped
// with now and a random IV. scratch is reused for the raw token.
func (f *multiFernet) appendEncrypt(dst, scratch, plaintext []byte, now time.Time) (out, newScratch []byte) {
	var iv [aes.BlockSize]byte
	_, _ = rand.Read(iv[:]) // crypto/rand.Read never fails on supported platforms.
	ts := now.Unix()
	if ts < 0 {
		ts = 0
	}
	return f.appendEncryptAt(dst, scratch, plaintext, uint64(ts), iv[:])
}

// appendEncryptAt is appendEncrypt with a fixed timestamp and IV, for
// byte-exact tests.
func (f *multiFernet) appendEncryptAt(dst, scratch, plaintext []byte, ts uint64, iv []byte) (out, newScratch []byte) {
	k := f.keys[0]
	padded := (len(plaintext)/aes.BlockSize + 1) * aes.BlockSize
	total := fernetHeaderLen + padded + fernetMACLen
	if cap(scratch) < total {
		scratch = make([]byte, total)
	}
	raw := scratch[:total]
	raw[0] = fernetVersion
	binary.BigEndian.PutUint64(raw[1:9], ts)
	copy(raw[9:fernetHeaderLen], iv)
	body := raw[fernetHeaderLen : fernetHeaderLen+padded]
	n := copy(body, plaintext)
	pad := byte(padded - len(plaintext))
	for i := n; i < padded; i++ {
		body[i] = pad
	}
	cipher.NewCBCEncrypter(k.block, iv).CryptBlocks(body, body)
	mac := hmac.New(sha256.New, k.signing)
	mac.Write(raw[:fernetHeaderLen+padded])
	mac.Sum(raw[:fernetHeaderLen+padded])
	return base64.URLEncoding.AppendEncode(dst, raw), scratch
}

// decrypt checks and decrypts a base64url token, appending the plaintext
// to dst. With ttl > 0 a token older than ttl or stamped more than 60 s
// after now is refused, as Fernet.decrypt(token, ttl) does.
func (f *multiFernet) decrypt(dst, token []byte, ttl time.Duration, now time.Time) ([]byte, error) {
	raw, err := decodeFernetBase64(token)
	if err != nil {
		return nil, err
	}
	if len(raw) < fernetMinLen || raw[0] != fernetVersion || (len(raw)-fernetHeaderLen-fernetMACLen)%aes.BlockSize != 0 {
		return nil, errFernetFormat
	}
	signed := raw[:len(raw)-fernetMACLen]
	tag := raw[len(raw)-fernetMACLen:]
	var key *fernetKey
	var sum [fernetMACLen]byte
	for i := range f.keys {
		mac := hmac.New(sha256.New, f.keys[i].signing)
		mac.Write(signed)
		if subtle.ConstantTimeCompare(mac.Sum(sum[:0]), tag) == 1 {
			key = &f.keys[i]
			break
		}
	}
	if key == nil {
		return nil, errFernetSignature
	}
	if ttl > 0 {
		if err := checkFernetTime(binary.BigEndian.Uint64(raw[1:9]), ttl, now); err != nil {
			return nil, err
		}
	}
	body := raw[fernetHeaderLen : len(raw)-fernetMACLen]
	cipher.NewCBCDecrypter(key.block, raw[9:fernetHeaderLen]).CryptBlocks(body, body)
	pad := int(body[len(body)-1])
	if pad < 1 || pad > aes.BlockSize {
		return nil, errFernetPadding
	}
	for _, b := range body[len(body)-pad:] {
		if int(b) != pad {
			return nil, errFernetPadding
		}
	}
	return append(dst, body[:len(body)-pad]...), nil
}

// checkFernetTime applies Fernet's age rules in whole seconds, as Python
// compares int(time.time()) with the stamp.
func checkFernetTime(ts uint64, ttl time.Duration, now time.Time) error {
	nowSec := now.Unix()
	if ts > math.MaxInt64 || int64(ts) > nowSec+fernetMaxSkewSec {
		return fmt.Errorf("fernet token is stamped more than %d s in the future (stamp %d, now %d); check clock sync", fernetMaxSkewSec, ts, nowSec)
	}
	if int64(ts)+int64(ttl/time.Second) < nowSec {
		return fmt.Errorf("fernet token expired: stamped %d s ago, ttl %d s", nowSec-int64(ts), int64(ttl/time.Second))
	}
	return nil
}

// decodeFernetBase64 accepts padded base64url, as Python writes it, and
// unpadded as a courtesy.
func decodeFernetBase64(token []byte) ([]byte, error) {
	enc := base64.URLEncoding
	if len(token)%4 != 0 {
		enc = base64.RawURLEncoding
	}
	raw, err := enc.AppendDecode(nil, token)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errFernetFormat, err)
	}
	return raw, nil
}
