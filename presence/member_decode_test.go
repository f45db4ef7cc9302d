package presence

import (
	"strconv"
	"strings"
	"testing"
)

// decodeMember is the Go twin of the scripts' split, for tests that
// inspect the keys. ok is false for a malformed member.
func decodeMember(m string) (group, userID, conn string, ok bool) {
	group, rest, ok := cutLenPrefixed(m)
	if !ok {
		return "", "", "", false
	}
	userID, conn, ok = cutLenPrefixed(rest)
	return group, userID, conn, ok
}

// cutLenPrefixed reads "<n>:<n bytes>" from the start of s.
func cutLenPrefixed(s string) (field, rest string, ok bool) {
	i := strings.IndexByte(s, ':')
	if i < 1 || i > 10 {
		return "", "", false
	}
	n, err := strconv.Atoi(s[:i])
	if err != nil || n < 0 || n > len(s)-i-1 {
		return "", "", false
	}
	return s[i+1 : i+1+n], s[i+1+n:], true
}

// FuzzMemberRoundTrip checks that any ids, whatever bytes they hold
// (colons and digits included), are read back from a member unchanged.
func FuzzMemberRoundTrip(f *testing.F) {
	f.Add("chat_project_7", "3", "abc/1")
	f.Add("a:1:b", "12:x", "0:")
	f.Add("", "", "")
	f.Add("9", "99:", "\x00\xff")
	f.Fuzz(func(t *testing.T, group, user, conn string) {
		g, u, c, ok := decodeMember(encodeMember(group, user, conn))
		if !ok || g != group || u != user || c != conn {
			t.Fatalf("(%q, %q, %q) read back as (%q, %q, %q, %v)", group, user, conn, g, u, c, ok)
		}
	})
}
