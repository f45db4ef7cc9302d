package auth

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
)

// This file is a restricted pickle decoder for what Django's cache
// backends store for a session: pickle.dumps(session_dict) with protocol 2
// to 5. It reads dicts, lists, tuples, sets, str, bytes, int, float, bool
// and None, and a short whitelist of globals (datetime and time zone
// types, which Django 3.2 stores in _session_expiry) that are only named,
// never called. Every other opcode, including the text opcodes of
// protocols 0 and 1 and anything that builds or mutates objects (BUILD,
// NEWOBJ, INST, OBJ, EXT*, PERSID), is refused.
//
// Everything is bounded by the input: lengths are checked against the
// bytes left before any allocation, the memo is a map, and the decoder
// never recurses.

// maxPickleBytes bounds a stored session. Django sessions are a few
// hundred bytes; a megabyte leaves room for application data.
const maxPickleBytes = 1 << 20

// highestPickleProtocol is the newest protocol (Python 3.8+).
const highestPickleProtocol = 5

// errPickle marks every decoding failure, for errors.Is.
var errPickle = errors.New("pickle")

// pickleWhitelist names the globals a session pickle may refer to. They
// become pickleGlobal values; REDUCE on them makes an opaque pickleObject.
var pickleWhitelist = map[string]bool{
	"datetime.datetime":           true,
	"datetime.date":               true,
	"datetime.time":               true,
	"datetime.timedelta":          true,
	"datetime.timezone":           true,
	"pytz._UTC":                   true, // pytz.utc, Django 3.2's timezone.utc
	"pytz._p":                     true, // other pytz zones
	"zoneinfo.ZoneInfo":           true,
	"zoneinfo.ZoneInfo._unpickle": true, // reached through getattr, below
	"decimal.Decimal":             true,
	// Protocol 2 spells sets, bytearrays and bytes as calls (and names
	// the builtins module __builtin__, as Python 2 did).
	"builtins.set":       true,
	"builtins.frozenset": true,
	"builtins.bytearray": true,
	"_codecs.encode":     true,
	// Only ever reduced to look up a whitelisted attribute (ZoneInfo
	// pickles as getattr(ZoneInfo, "_unpickle")(key, 1)).
	"builtins.getattr": true,
}

// Pickle opcodes (Python's Lib/pickle.py), the ones this decoder reads.
const (
	opMark           = '('
	opStop           = '.'
	opPop            = '0'
	opPopMark        = '1'
	opDup            = '2'
	opBinFloat       = 'G'
	opBinInt         = 'J'
	opBinInt1        = 'K'
	opBinInt2        = 'M'
	opNone           = 'N'
	opReduce         = 'R'
	opBinUnicode     = 'X'
	opAppend         = 'a'
	opGlobal         = 'c'
	opDict           = 'd'
	opEmptyDict      = '}'
	opAppends        = 'e'
	opBinGet         = 'h'
	opLongBinGet     = 'j'
	opList           = 'l'
	opEmptyList      = ']'
	opBinPut         = 'q'
	opLongBinPut     = 'r'
	opSetItem        = 's'
	opTuple          = 't'
	opEmptyTuple     = ')'
	opSetItems       = 'u'
	opBinBytes       = 'B'
	opShortBinBytes  = 'C'
	opProto          = 0x80
	opTuple1         = 0x85
	opTuple2         = 0x86
	opTuple3         = 0x87
	opNewTrue        = 0x88
	opNewFalse       = 0x89
	opLong1          = 0x8a
	opLong4          = 0x8b
	opShortBinUni    = 0x8c
	opBinUnicode8    = 0x8d
	opBinBytes8      = 0x8e
	opEmptySet       = 0x8f
	opAddItems       = 0x90
	opFrozenSet      = 0x91
	opStackGlobal    = 0x93
	opMemoize        = 0x94
	opFrame          = 0x95
	opByteArray8     = 0x96
	maxGlobalNameLen = 256
)

// pickleDecoder is the state of one decode.
type pickleDecoder struct {
	data  []byte
	pos   int
	stack []any
	marks []int // stack heights at each MARK
	memo  map[uint32]any
}

// decodeSessionPickle decodes a pickled session and requires a dict at
// the top.
func decodeSessionPickle(data []byte) (*pickleDict, error) {
	v, err := decodePickle(data)
	if err != nil {
		return nil, err
	}
	d, ok := v.(*pickleDict)
	if !ok {
		return nil, fmt.Errorf("%w: top-level value is %s, not a dict", errPickle, pickleTypeName(v))
	}
	return d, nil
}

// decodePickle decodes one pickle made only of allowed opcodes.
func decodePickle(data []byte) (any, error) {
	if len(data) > maxPickleBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", errPickle, len(data), maxPickleBytes)
	}
	d := &pickleDecoder{data: data, memo: map[uint32]any{}}
	v, err := d.run()
	if err != nil {
		return nil, fmt.Errorf("%w at byte %d: %v", errPickle, d.pos, err)
	}
	return v, nil
}

func (d *pickleDecoder) run() (any, error) {
	for {
		if d.pos >= len(d.data) {
			return nil, errors.New("truncated: no STOP opcode")
		}
		op := d.data[d.pos]
		d.pos++
		if op == opStop {
			return d.pop()
		}
		if err := d.step(op); err != nil {
			return nil, err
		}
	}
}

// step executes one opcode other than STOP.
func (d *pickleDecoder) step(op byte) error {
	switch op {
	case opProto:
		b, err := d.read(1)
		if err != nil {
			return err
		}
		if b[0] > highestPickleProtocol {
			return fmt.Errorf("unsupported protocol %d", b[0])
		}
	case opFrame:
		n, err := d.readUint(8)
		if err != nil {
			return err
		}
		if n > uint64(len(d.data)-d.pos) {
			return errors.New("frame longer than the data")
		}
	case opMark:
		d.marks = append(d.marks, len(d.stack))
	case opPop:
		if len(d.stack) > d.topMark() {
			d.stack = d.stack[:len(d.stack)-1]
		} else if _, err := d.popMark(); err != nil {
			return err
		}
	case opPopMark:
		if _, err := d.popMark(); err != nil {
			return err
		}
	case opDup:
		v, err := d.peek()
		if err != nil {
			return err
		}
		d.push(v)

	case opNone:
		d.push(nil)
	case opNewTrue:
		d.push(true)
	case opNewFalse:
		d.push(false)
	case opBinInt:
		b, err := d.read(4)
		if err != nil {
			return err
		}
		d.push(int64(int32(binary.LittleEndian.Uint32(b))))
	case opBinInt1:
		n, err := d.readUint(1)
		if err != nil {
			return err
		}
		d.push(int64(n))
	case opBinInt2:
		n, err := d.readUint(2)
		if err != nil {
			return err
		}
		d.push(int64(n))
	case opLong1, opLong4:
		width := 1
		if op == opLong4 {
			width = 4
		}
		n, err := d.readUint(width)
		if err != nil {
			return err
		}
		if op == opLong4 && int32(n) < 0 {
			return errors.New("LONG4 with a negative length")
		}
		b, err := d.readN(n)
		if err != nil {
			return err
		}
		d.push(decodeLong(b))
	case opBinFloat:
		b, err := d.read(8)
		if err != nil {
			return err
		}
		d.push(math.Float64frombits(binary.BigEndian.Uint64(b)))

	case opShortBinUni, opBinUnicode, opBinUnicode8:
		b, err := d.readCounted(countWidth(op))
		if err != nil {
			return err
		}
		// Python decodes with "surrogatepass"; the bytes are kept as
		// they are and the session checks validate what they read.
		d.push(string(b))
	case opShortBinBytes, opBinBytes, opBinBytes8, opByteArray8:
		b, err := d.readCounted(countWidth(op))
		if err != nil {
			return err
		}
		d.push(append([]byte(nil), b...))

	case opEmptyDict:
		d.push(newPickleDict())
	case opEmptyList:
		d.push(&pickleList{})
	case opEmptyTuple:
		d.push(pickleTuple{})
	case opEmptySet:
		d.push(&pickleSet{})
	case opDict:
		items, err := d.popMark()
		if err != nil {
			return err
		}
		dict, err := dictFrom(items)
		if err != nil {
			return err
		}
		d.push(dict)
	case opList:
		items, err := d.popMark()
		if err != nil {
			return err
		}
		d.push(&pickleList{items: items})
	case opTuple:
		items, err := d.popMark()
		if err != nil {
			return err
		}
		d.push(pickleTuple(items))
	case opTuple1, opTuple2, opTuple3:
		n := int(op-opTuple1) + 1
		if len(d.stack)-d.topMark() < n {
			return fmt.Errorf("TUPLE%d needs %d items", n, n)
		}
		items := append(pickleTuple(nil), d.stack[len(d.stack)-n:]...)
		d.stack = d.stack[:len(d.stack)-n]
		d.push(items)
	case opFrozenSet:
		items, err := d.popMark()
		if err != nil {
			return err
		}
		d.push(&pickleSet{items: items, frozen: true})

	case opSetItem:
		if len(d.stack)-d.topMark() < 3 {
			return errors.New("SETITEM needs a dict, a key and a value")
		}
		n := len(d.stack)
		dict, ok := d.stack[n-3].(*pickleDict)
		if !ok {
			return fmt.Errorf("SETITEM on a %s", pickleTypeName(d.stack[n-3]))
		}
		if err := dictSet(dict, d.stack[n-2], d.stack[n-1]); err != nil {
			return err
		}
		d.stack = d.stack[:n-2]
	case opSetItems:
		items, err := d.popMark()
		if err != nil {
			return err
		}
		target, err := d.peek()
		if err != nil {
			return err
		}
		dict, ok := target.(*pickleDict)
		if !ok {
			return fmt.Errorf("SETITEMS on a %s", pickleTypeName(target))
		}
		if len(items)%2 != 0 {
			return errors.New("SETITEMS with an odd number of items")
		}
		for i := 0; i < len(items); i += 2 {
			if err := dictSet(dict, items[i], items[i+1]); err != nil {
				return err
			}
		}
	case opAppend:
		if len(d.stack)-d.topMark() < 2 {
			return errors.New("APPEND needs a list and a value")
		}
		n := len(d.stack)
		list, ok := d.stack[n-2].(*pickleList)
		if !ok {
			return fmt.Errorf("APPEND on a %s", pickleTypeName(d.stack[n-2]))
		}
		list.items = append(list.items, d.stack[n-1])
		d.stack = d.stack[:n-1]
	case opAppends:
		items, err := d.popMark()
		if err != nil {
			return err
		}
		target, err := d.peek()
		if err != nil {
			return err
		}
		list, ok := target.(*pickleList)
		if !ok {
			return fmt.Errorf("APPENDS on a %s", pickleTypeName(target))
		}
		list.items = append(list.items, items...)
	case opAddItems:
		items, err := d.popMark()
		if err != nil {
			return err
		}
		target, err := d.peek()
		if err != nil {
			return err
		}
		set, ok := target.(*pickleSet)
		if !ok || set.frozen {
			return fmt.Errorf("ADDITEMS on a %s", pickleTypeName(target))
		}
		set.items = append(set.items, items...)

	case opBinPut, opLongBinPut, opMemoize:
		v, err := d.peek()
		if err != nil {
			return err
		}
		var idx uint64
		switch op {
		case opBinPut:
			idx, err = d.readUint(1)
		case opLongBinPut:
			idx, err = d.readUint(4)
		default:
			idx = uint64(len(d.memo))
		}
		if err != nil {
			return err
		}
		if idx > math.MaxUint32 {
			return errors.New("memo full")
		}
		d.memo[uint32(idx)] = v
	case opBinGet, opLongBinGet:
		width := 1
		if op == opLongBinGet {
			width = 4
		}
		idx, err := d.readUint(width)
		if err != nil {
			return err
		}
		v, ok := d.memo[uint32(idx)]
		if !ok {
			return fmt.Errorf("memo entry %d is not set", idx)
		}
		d.push(v)

	case opGlobal:
		module, err := d.readLine()
		if err != nil {
			return err
		}
		name, err := d.readLine()
		if err != nil {
			return err
		}
		g, err := whitelistedGlobal(module, name)
		if err != nil {
			return err
		}
		d.push(g)
	case opStackGlobal:
		if len(d.stack)-d.topMark() < 2 {
			return errors.New("STACK_GLOBAL needs a module and a name")
		}
		n := len(d.stack)
		module, ok1 := d.stack[n-2].(string)
		name, ok2 := d.stack[n-1].(string)
		if !ok1 || !ok2 {
			return errors.New("STACK_GLOBAL needs two str values")
		}
		g, err := whitelistedGlobal(module, name)
		if err != nil {
			return err
		}
		d.stack = d.stack[:n-2]
		d.push(g)
	case opReduce:
		if len(d.stack)-d.topMark() < 2 {
			return errors.New("REDUCE needs a callable and arguments")
		}
		n := len(d.stack)
		callable, ok := d.stack[n-2].(pickleGlobal)
		if !ok {
			return fmt.Errorf("REDUCE on a %s", pickleTypeName(d.stack[n-2]))
		}
		args, ok := d.stack[n-1].(pickleTuple)
		if !ok {
			return fmt.Errorf("REDUCE with %s arguments", pickleTypeName(d.stack[n-1]))
		}
		d.stack = d.stack[:n-2]
		if callable.module == "builtins" && callable.name == "getattr" {
			g, err := whitelistedAttr(args)
			if err != nil {
				return err
			}
			d.push(g)
			return nil
		}
		d.push(pickleObject{callable: callable, args: args})

	default:
		return fmt.Errorf("opcode 0x%02x is not allowed", op)
	}
	return nil
}

func (d *pickleDecoder) push(v any) { d.stack = append(d.stack, v) }

// topMark is the stack height at the innermost MARK, or 0.
func (d *pickleDecoder) topMark() int {
	if len(d.marks) == 0 {
		return 0
	}
	return d.marks[len(d.marks)-1]
}

// pop removes the top value above the innermost MARK.
func (d *pickleDecoder) pop() (any, error) {
	if len(d.stack) <= d.topMark() {
		return nil, errors.New("stack underflow")
	}
	v := d.stack[len(d.stack)-1]
	d.stack = d.stack[:len(d.stack)-1]
	return v, nil
}

// peek returns the top value above the innermost MARK.
func (d *pickleDecoder) peek() (any, error) {
	if len(d.stack) <= d.topMark() {
		return nil, errors.New("stack underflow")
	}
	return d.stack[len(d.stack)-1], nil
}

// popMark removes the innermost MARK and returns a copy of the values
// pushed since.
func (d *pickleDecoder) popMark() ([]any, error) {
	if len(d.marks) == 0 {
		return nil, errors.New("no MARK")
	}
	m := d.marks[len(d.marks)-1]
	d.marks = d.marks[:len(d.marks)-1]
	items := append([]any(nil), d.stack[m:]...)
	d.stack = d.stack[:m]
	return items, nil
}

// read returns the next n bytes, n small and fixed.
func (d *pickleDecoder) read(n int) ([]byte, error) {
	if n > len(d.data)-d.pos {
		return nil, errors.New("truncated")
	}
	b := d.data[d.pos : d.pos+n]
	d.pos += n
	return b, nil
}

// readN returns the next n bytes for a length read from the data, which
// must fit in what is left.
func (d *pickleDecoder) readN(n uint64) ([]byte, error) {
	if n > uint64(len(d.data)-d.pos) {
		return nil, fmt.Errorf("length %d past the end of the data", n)
	}
	return d.read(int(n))
}

// readUint reads a little-endian unsigned integer of width bytes.
func (d *pickleDecoder) readUint(width int) (uint64, error) {
	b, err := d.read(width)
	if err != nil {
		return 0, err
	}
	var n uint64
	for i := width - 1; i >= 0; i-- {
		n = n<<8 | uint64(b[i])
	}
	return n, nil
}

// countWidth is the size of the length before a str or bytes body.
func countWidth(op byte) int {
	switch op {
	case opShortBinUni, opShortBinBytes:
		return 1
	case opBinUnicode, opBinBytes:
		return 4
	}
	return 8
}

// readCounted reads a body after its little-endian length of width bytes.
func (d *pickleDecoder) readCounted(width int) ([]byte, error) {
	n, err := d.readUint(width)
	if err != nil {
		return nil, err
	}
	return d.readN(n)
}

// readLine reads a GLOBAL argument up to its newline.
func (d *pickleDecoder) readLine() (string, error) {
	rest := d.data[d.pos:]
	if len(rest) > maxGlobalNameLen+1 {
		rest = rest[:maxGlobalNameLen+1]
	}
	for i, c := range rest {
		if c == '\n' {
			d.pos += i + 1
			return string(rest[:i]), nil
		}
	}
	return "", errors.New("GLOBAL name without a newline")
}

func whitelistedGlobal(module, name string) (pickleGlobal, error) {
	if module == "__builtin__" { // Python's fix_imports mapping
		module = "builtins"
	}
	full := module + "." + name
	if !pickleWhitelist[full] {
		if len(full) > maxGlobalNameLen {
			full = full[:maxGlobalNameLen] + "..."
		}
		return pickleGlobal{}, fmt.Errorf("global %q is not allowed", strings.ToValidUTF8(full, "?"))
	}
	return pickleGlobal{module: module, name: name}, nil
}

// whitelistedAttr stands for getattr(global, name): it is a global too,
// and only allowed when the dotted result is whitelisted.
func whitelistedAttr(args pickleTuple) (pickleGlobal, error) {
	if len(args) != 2 {
		return pickleGlobal{}, errors.New("getattr needs two arguments")
	}
	owner, ok1 := args[0].(pickleGlobal)
	name, ok2 := args[1].(string)
	if !ok1 || !ok2 || owner.module == "builtins" && owner.name == "getattr" {
		return pickleGlobal{}, errors.New("getattr is only allowed on a whitelisted global")
	}
	return whitelistedGlobal(owner.module, owner.name+"."+name)
}

// decodeLong reads Python's two's-complement little-endian long.
func decodeLong(b []byte) any {
	if len(b) == 0 {
		return int64(0)
	}
	if len(b) <= 8 {
		var n uint64
		for i := len(b) - 1; i >= 0; i-- {
			n = n<<8 | uint64(b[i])
		}
		shift := uint(64 - 8*len(b))
		return int64(n<<shift) >> shift // sign-extend
	}
	be := make([]byte, len(b))
	for i, c := range b {
		be[len(b)-1-i] = c
	}
	v := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	if v.IsInt64() {
		return v.Int64()
	}
	return v
}

// dictFrom builds a dict from DICT's alternating keys and values.
func dictFrom(items []any) (*pickleDict, error) {
	if len(items)%2 != 0 {
		return nil, errors.New("DICT with an odd number of items")
	}
	dict := newPickleDict()
	for i := 0; i < len(items); i += 2 {
		if err := dictSet(dict, items[i], items[i+1]); err != nil {
			return nil, err
		}
	}
	return dict, nil
}

// dictSet refuses the keys Python could not hash.
func dictSet(dict *pickleDict, key, value any) error {
	switch key.(type) {
	case *pickleDict, *pickleList, *pickleSet:
		return fmt.Errorf("unhashable dict key: %s", pickleTypeName(key))
	}
	dict.set(key, value)
	return nil
}

// pickleTypeName names a decoded value's Python type, for errors.
func pickleTypeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case *pickleDict:
		return "dict"
	case *pickleList:
		return "list"
	case pickleTuple:
		return "tuple"
	case *pickleSet:
		if x.frozen {
			return "frozenset"
		}
		return "set"
	case pickleGlobal:
		return "global " + x.module + "." + x.name
	case pickleObject:
		return x.callable.module + "." + x.callable.name + " object"
	}
	return fmt.Sprintf("%T", v)
}
