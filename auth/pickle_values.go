package auth

import "math/big"

// The values a restricted pickle decodes to. Plain Python values map to Go
// values directly:
//
//	None -> nil, bool -> bool, int -> int64 (or *big.Int past 64 bits),
//	float -> float64, str -> string, bytes and bytearray -> []byte,
//
// and containers to the types below. Nothing here ever calls Python code:
// a whitelisted class or function is only named, never run.

// pickleDict is a Python dict. Keys keep their insertion order; a key set
// twice keeps its first position and its last value, as in Python.
type pickleDict struct {
	keys   []any
	values []any
	index  map[any]int // hashable Go keys -> position in keys
}

func newPickleDict() *pickleDict {
	return &pickleDict{index: map[any]int{}}
}

// set adds or replaces key. Keys that are not comparable in Go (a tuple,
// which is a slice here) are appended without de-duplication; sessions
// never use them, and lookups only ask for string keys.
func (d *pickleDict) set(key, value any) {
	if k, ok := dictIndexKey(key); ok {
		if i, found := d.index[k]; found {
			d.values[i] = value
			return
		}
		d.index[k] = len(d.keys)
	}
	d.keys = append(d.keys, key)
	d.values = append(d.values, value)
}

// get returns the value stored under the str key.
func (d *pickleDict) get(key string) (any, bool) {
	i, ok := d.index[key]
	if !ok {
		return nil, false
	}
	return d.values[i], true
}

// len is the number of entries.
func (d *pickleDict) len() int { return len(d.keys) }

// dictIndexKey maps a pickled key to a comparable Go value. Python folds
// 1, 1.0 and True into one key; sessions only use str keys, so the fold is
// kept for ints and bools and other numeric types stay apart.
func dictIndexKey(key any) (any, bool) {
	switch k := key.(type) {
	case string, int64, float64, nil:
		return k, true
	case bool:
		if k {
			return int64(1), true
		}
		return int64(0), true
	case *big.Int:
		return "\x00bigint:" + k.String(), true
	case []byte:
		return "\x00bytes:" + string(k), true
	}
	return nil, false
}

// pickleList is a Python list; a pointer, since a pickle can append to a
// list after another container refers to it.
type pickleList struct {
	items []any
}

// pickleTuple is a Python tuple.
type pickleTuple []any

// pickleSet is a Python set or frozenset.
type pickleSet struct {
	items  []any
	frozen bool
}

// pickleGlobal names a whitelisted class or function (module.name).
type pickleGlobal struct {
	module, name string
}

// pickleObject is what calling a whitelisted global with args would have
// built (a datetime, a timezone, ...). It is kept opaque: the session
// checks never need its value, only that the pickle is well formed.
type pickleObject struct {
	callable pickleGlobal
	args     pickleTuple
}
