package bridge

import (
	"errors"
	"strings"
	"testing"
)

func TestChannelAndGroupNames(t *testing.T) {
	long99 := strings.Repeat("x", 99)
	long100 := strings.Repeat("x", 100)
	cases := []struct {
		name           string
		channel, group bool
	}{
		{"abc", true, true},
		{"a.b-c_d", true, true},
		{"specific.x!y", true, false},
		{"specific.x!", true, false},
		{"specific.x!é", true, false},
		{"specific.x!a.b-c_d9", true, false},
		{"a:b", false, false},
		{"a b", false, false},
		{"spécial", false, false},
		{"x!y!z", false, false},
		{"!abc", false, false},
		{"abc\n", false, false},
		{"", false, false},
		{"\xff", false, false},
		{long99, true, true},
		{long100, false, false},
		{"specific." + strings.Repeat("é", 88) + "!", false, false},
		{"a!" + strings.Repeat("é", 97), true, false},
		{"a!" + strings.Repeat("é", 98), false, false},
	}
	for _, tc := range cases {
		if err := validateChannelName(tc.name); (err == nil) != tc.channel || err != nil && !errors.Is(err, ErrInvalidName) {
			t.Errorf("channel %q: err = %v, want valid=%v", tc.name, err, tc.channel)
		}
		if err := validateGroupName(tc.name); (err == nil) != tc.group {
			t.Errorf("group %q: err = %v, want valid=%v", tc.name, err, tc.group)
		}
	}
}

func TestNonLocalName(t *testing.T) {
	for in, want := range map[string]string{
		"specific.abc!def": "specific.abc!",
		"specific.abc!":    "specific.abc!",
		"plain.name":       "plain.name",
	} {
		if got := nonLocalName(in); got != want {
			t.Errorf("nonLocalName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestChannelNamer(t *testing.T) {
	a, b := newChannelNamer(), newChannelNamer()
	if a.processName == b.processName {
		t.Fatal("two layers share a client id")
	}
	if len(a.processName) != len("specific.")+32+1 {
		t.Fatalf("process name %q", a.processName)
	}
	seen := map[string]bool{}
	for i := uint64(1); i < 1000; i++ {
		n := a.name(i)
		if seen[n] {
			t.Fatalf("duplicate name %q", n)
		}
		seen[n] = true
		if err := validateChannelName(n); err != nil {
			t.Fatal(err)
		}
		if !a.isLocal(n) || b.isLocal(n) {
			t.Fatalf("isLocal(%q) wrong", n)
		}
	}
	if n := a.name(^uint64(0)); len(n) >= maxNameLength || validateChannelName(n) != nil {
		t.Fatalf("largest name %q is not valid", n)
	}
	if a.isLocal(a.processName) || a.isLocal("specific.other!x") {
		t.Fatal("isLocal accepted a foreign or bare name")
	}
}
