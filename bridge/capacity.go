package bridge

import (
	"fmt"
	"regexp"
	"strings"
)

// capacities answers "how many messages may this channel key hold", with
// the per-channel overrides of channel_capacity.
type capacities struct {
	def      int
	patterns []capacityPattern
}

type capacityPattern struct {
	glob     string
	re       *regexp.Regexp
	capacity int
}

// newCapacities compiles the channel_capacity globs.
func newCapacities(def int, overrides []ChannelCapacity) (*capacities, error) {
	c := &capacities{def: def}
	for i, o := range overrides {
		re, err := compileGlob(o.Pattern)
		if err != nil {
			return nil, fmt.Errorf("channel_capacity[%d] %q: %w", i, o.Pattern, err)
		}
		c.patterns = append(c.patterns, capacityPattern{glob: o.Pattern, re: re, capacity: o.Capacity})
	}
	return c, nil
}

// forChannel returns the capacity of a channel: the first matching
// pattern's, or the default.
func (c *capacities) forChannel(channel string) int {
	for _, p := range c.patterns {
		if p.re.MatchString(channel) {
			return p.capacity
		}
	}
	return c.def
}

// compileGlob translates a Python fnmatch pattern into an anchored regular
// expression with the same meaning as fnmatch.translate followed by
// re.match: '*' is any run of characters (newlines included), '?' one
// character, [seq] / [!seq] a set with ranges, anything else literal, and
// the whole name must match.
func compileGlob(glob string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	rs := []rune(glob)
	for i := 0; i < len(rs); {
		switch c := rs[i]; c {
		case '*':
			for i < len(rs) && rs[i] == '*' {
				i++
			}
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
			i++
		case '[':
			end := bracketEnd(rs, i+1)
			if end < 0 {
				// An unclosed '[' is a literal, as in fnmatch.
				b.WriteString(regexp.QuoteMeta("["))
				i++
				continue
			}
			writeBracket(&b, rs[i+1:end])
			i = end + 1
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
			i++
		}
	}
	b.WriteString(`$`)
	return regexp.Compile(b.String())
}

// bracketEnd returns the index of the ']' closing a set whose content
// starts at j, or -1. A leading '!' and then a leading ']' are part of the
// content, as in fnmatch.
func bracketEnd(rs []rune, j int) int {
	if j < len(rs) && rs[j] == '!' {
		j++
	}
	if j < len(rs) && rs[j] == ']' {
		j++
	}
	for j < len(rs) && rs[j] != ']' {
		j++
	}
	if j >= len(rs) {
		return -1
	}
	return j
}

// writeBracket writes the class for the content of one [..] set. Every
// character is written as \x{..} so nothing in it is special to Go. A
// reversed range such as z-a is empty, as Python drops it; an empty set
// never matches and an empty negated set matches any character.
func writeBracket(b *strings.Builder, content []rune) {
	negate := len(content) > 0 && content[0] == '!'
	if negate {
		content = content[1:]
	}
	var class strings.Builder
	for i := 0; i < len(content); {
		lo := content[i]
		if i+2 < len(content) && content[i+1] == '-' {
			hi := content[i+2]
			if lo <= hi {
				fmt.Fprintf(&class, `\x{%x}-\x{%x}`, lo, hi)
			}
			i += 3
			continue
		}
		fmt.Fprintf(&class, `\x{%x}`, lo)
		i++
	}
	switch {
	case class.Len() == 0 && negate:
		b.WriteString(`.`)
	case class.Len() == 0:
		b.WriteString(`[^\x00-\x{10ffff}]`)
	case negate:
		b.WriteString(`[^` + class.String() + `]`)
	default:
		b.WriteString(`[` + class.String() + `]`)
	}
}
