package presence

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxIDLen is the longest group, user or connection id accepted, in bytes.
const MaxIDLen = 1024

// ErrInvalidID wraps every error about an empty or oversized id.
var ErrInvalidID = errors.New("invalid presence id")

// checkIDs validates the ids of one connection.
func checkIDs(group, userID, connID string) error {
	for _, f := range []struct{ name, v string }{{"group", group}, {"user id", userID}, {"connection id", connID}} {
		if f.v == "" {
			return fmt.Errorf("%w: empty %s", ErrInvalidID, f.name)
		}
		if len(f.v) > MaxIDLen {
			return fmt.Errorf("%w: %s of %d bytes is longer than %d", ErrInvalidID, f.name, len(f.v), MaxIDLen)
		}
	}
	return nil
}

// encodeMember builds the conns member of one connection (see the package
// doc); the scripts' split function reads group and user back from it.
func encodeMember(group, userID, conn string) string {
	var b strings.Builder
	b.Grow(len(group) + len(userID) + len(conn) + 10)
	b.WriteString(strconv.Itoa(len(group)))
	b.WriteByte(':')
	b.WriteString(group)
	b.WriteString(strconv.Itoa(len(userID)))
	b.WriteByte(':')
	b.WriteString(userID)
	b.WriteString(conn)
	return b.String()
}
