package auth

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
)

// This file reads user ids and times out of JSON claim values.

// maxExactFloat is 2^53: above it a JSON float no longer names one integer.
const maxExactFloat = 1 << 53

// userIDFromJSON turns a user id claim or session value into the text of a
// primary key. A JSON string is kept as it is (it may be a UUID); a JSON
// number must be an integer and becomes its decimal form, so 42, 42.0 and
// "42" all give "42". Anything else (null, bool, object, array, empty
// string, fraction) is refused.
func userIDFromJSON(raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		return "", errors.New("missing")
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", errors.New("not a valid JSON string")
		}
		if s == "" {
			return "", errors.New("empty string")
		}
		return s, nil
	case c == '-' || c >= '0' && c <= '9':
		return integerText(string(raw))
	}
	return "", errors.New("neither a string nor a number")
}

// integerText returns the decimal form of an integral JSON number.
func integerText(num string) (string, error) {
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		return strconv.FormatInt(n, 10), nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return "", errors.New("number out of range")
	}
	if f != math.Trunc(f) {
		return "", errors.New("not an integer")
	}
	if math.Abs(f) > maxExactFloat {
		return "", errors.New("number out of range")
	}
	return strconv.FormatInt(int64(f), 10), nil
}

// numericDate reads a JSON number (integer or fraction) and returns its
// floor in seconds, as PyJWT's int() does for the positive times that
// matter. Strings, bools and other types are refused, and so are values
// beyond 2^53 seconds, which no real token carries.
func numericDate(raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return 0, errors.New("not a JSON number")
	}
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		if n > maxExactFloat || n < -maxExactFloat {
			return 0, errors.New("number out of range")
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.Abs(f) > maxExactFloat {
		return 0, errors.New("number out of range")
	}
	return int64(math.Floor(f)), nil
}
