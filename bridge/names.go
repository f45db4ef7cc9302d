package bridge

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidName is wrapped by errors about channel or group names that
// Channels would refuse.
var ErrInvalidName = errors.New("invalid name")

// maxNameLength is Channels' limit: names must be shorter than 100
// characters (code points, as Python counts them).
const maxNameLength = 100

// asgiChannelKey is the reserved message key that carries the target
// channel (send) or channels (group_send) inside a process key.
const asgiChannelKey = "__asgi_channel__"

// isNameByte reports whether b is allowed before the '!' of a channel name
// and anywhere in a group name: [a-zA-Z0-9-_.].
func isNameByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' ||
		b == '-' || b == '_' || b == '.'
}

// isNameDigitRune mirrors Python's Unicode \d, which is allowed before the
// '!' as well.
func isNameDigitRune(r rune) bool {
	return r < utf8.RuneSelf && isNameByte(byte(r)) || unicode.Is(unicode.Nd, r)
}

// isLocalPartRune mirrors Python's Unicode [\d\w\-_.] after the '!'.
func isLocalPartRune(r rune) bool {
	return r == '-' || r == '_' || r == '.' || unicode.IsLetter(r) || unicode.IsNumber(r)
}

// validateChannelName checks a channel name as Channels does:
// ^[a-zA-Z\d\-_.]+(\![\d\w\-_.]*)?$ and shorter than 100 characters.
// Unlike Python's '$' a trailing newline is refused.
func validateChannelName(name string) error {
	if err := checkNameLength("channel", name); err != nil {
		return err
	}
	head, tail, hasBang := strings.Cut(name, "!")
	if head == "" {
		return fmt.Errorf("%w: channel name %q must start with [a-zA-Z0-9-_.]", ErrInvalidName, name)
	}
	for _, r := range head {
		if !isNameDigitRune(r) {
			return fmt.Errorf("%w: channel name %q has %q before '!'; allowed are letters a-z, A-Z, digits, '-', '_', '.'", ErrInvalidName, name, r)
		}
	}
	if hasBang {
		for _, r := range tail {
			if !isLocalPartRune(r) {
				return fmt.Errorf("%w: channel name %q has %q after '!'; allowed are letters, digits, '-', '_', '.'", ErrInvalidName, name, r)
			}
		}
	}
	return nil
}

// validateGroupName checks a group name as Channels does:
// ^[a-zA-Z\d\-_.]+$ and shorter than 100 characters.
func validateGroupName(name string) error {
	if err := checkNameLength("group", name); err != nil {
		return err
	}
	for _, r := range name {
		if !isNameDigitRune(r) {
			return fmt.Errorf("%w: group name %q has %q; allowed are letters a-z, A-Z, digits, '-', '_', '.'", ErrInvalidName, name, r)
		}
	}
	return nil
}

func checkNameLength(kind, name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty %s name", ErrInvalidName, kind)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: %s name is not valid UTF-8", ErrInvalidName, kind)
	}
	if n := utf8.RuneCountInString(name); n >= maxNameLength {
		return fmt.Errorf("%w: %s name has %d characters; the limit is %d", ErrInvalidName, kind, n, maxNameLength-1)
	}
	return nil
}

// nonLocalName returns the part of a channel name up to and including the
// first '!', or the whole name: the part that picks the Redis key.
func nonLocalName(name string) string {
	if i := strings.IndexByte(name, '!'); i >= 0 {
		return name[:i+1]
	}
	return name
}

// newClientID returns 32 random lowercase hex digits, like uuid4().hex,
// identifying one layer instance (one channels "process").
func newClientID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	return hex.EncodeToString(b[:])
}

// channelNamer makes process-local channel names.
type channelNamer struct {
	// processName is "specific.<client id>!", the non-local part shared by
	// every channel of this layer.
	processName string
}

func newChannelNamer() channelNamer {
	return channelNamer{processName: "specific." + newClientID() + "!"}
}

// name returns the channel name for sequence number seq. A counter is
// enough for uniqueness because the client id is random per layer.
func (n channelNamer) name(seq uint64) string {
	return n.processName + strconv.FormatUint(seq, 16)
}

// isLocal reports whether channel belongs to this layer.
func (n channelNamer) isLocal(channel string) bool {
	return len(channel) > len(n.processName) && strings.HasPrefix(channel, n.processName)
}
