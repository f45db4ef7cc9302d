package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/channels-sidecar/channels-sidecar/internal/testenv"
)

// hashVectors are channels_redis' _consistent_hash results, computed by
// the real library (value -> ring size -> index).
var hashVectors = []struct {
	value string
	index map[int]int
}{
	{"room1", map[int]int{1: 0, 2: 1, 3: 1, 4: 2, 5: 3, 6: 3, 7: 4, 8: 5, 16: 10, 186: 118}},
	{"chat_lobby", map[int]int{1: 0, 2: 1, 3: 1, 4: 2, 5: 2, 6: 3, 7: 3, 8: 4, 16: 8, 186: 97}},
	{"g8", map[int]int{1: 0, 2: 0, 3: 1, 4: 1, 5: 2, 6: 2, 7: 3, 8: 3, 16: 7, 186: 81}},
	{"", map[int]int{1: 0, 2: 0, 3: 0, 8: 0, 16: 0, 186: 0}},
	{"specific.0123456789abcdef0123456789abcdef!", map[int]int{2: 0, 3: 1, 4: 1, 5: 1, 6: 2, 7: 2, 8: 2, 16: 5, 186: 63}},
	{"specific.0123456789abcdef0123456789abcdef!aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", map[int]int{2: 1, 3: 2, 4: 3, 5: 3, 6: 4, 7: 5, 8: 6, 16: 12, 186: 143}},
	{"worker.tasks", map[int]int{2: 1, 3: 2, 4: 3, 5: 4, 6: 5, 7: 6, 8: 7, 16: 15, 186: 176}},
	{"asgispecific.abc", map[int]int{2: 0, 8: 0, 16: 0, 186: 11}},
	{"specific.x!été", map[int]int{2: 1, 3: 1, 4: 2, 5: 3, 6: 3, 7: 4, 8: 5, 16: 10, 186: 122}},
}

func TestShardingHashVectors(t *testing.T) {
	for _, v := range hashVectors {
		for n, want := range v.index {
			if got := consistentHash(v.value, n); got != want {
				t.Errorf("consistentHash(%q, %d) = %d, want %d", v.value, n, got, want)
			}
		}
	}
	if crc := crc32.ChecksumIEEE([]byte("room1")); crc != 3832756778 || crc&0xFFF != 2602 {
		t.Fatalf("crc32(room1) = %d", crc)
	}
}

// TestShardingHashFloatDivision: at low12 = 2048 and ring size 186,
// Python's float division gives 92 where integer arithmetic gives 93.
func TestShardingHashFloatDivision(t *testing.T) {
	value := ""
	for i := 0; value == ""; i++ {
		if s := "k" + strconv.Itoa(i); crc32.ChecksumIEEE([]byte(s))&0xFFF == 2048 {
			value = s
		}
	}
	for n, want := range map[int]int{186: 92, 198: 98, 210: 104, 234: 116, 246: 122, 2: 1} {
		if got := consistentHash(value, n); got != want {
			t.Errorf("consistentHash(%q with low12 2048, %d) = %d, want %d", value, n, got, want)
		}
	}
}

// TestShardingHashMatchesPython compares the hash with the installed
// channels_redis for many names and ring sizes.
func TestShardingHashMatchesPython(t *testing.T) {
	testenv.RequirePython(t, "channels_redis.utils")
	var values []string
	for i := range 300 {
		values = append(values, fmt.Sprintf("group_%d", i), fmt.Sprintf("specific.%032x!", i*7919), fmt.Sprintf("ü-%d-✓", i))
	}
	sizes := []int{1, 2, 3, 5, 7, 16, 186}
	in, _ := json.Marshal(map[string]any{"values": values, "sizes": sizes})
	src := `import json, sys
from channels_redis.utils import _consistent_hash
d = json.load(sys.stdin)
print(json.dumps([[_consistent_hash(v, n) for n in d["sizes"]] for v in d["values"]]))`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := testenv.RunPython(ctx, t, nil, in, "-c", src)
	var want [][]int
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("python printed %q", out)
	}
	for i, v := range values {
		for j, n := range sizes {
			if got := consistentHash(v, n); got != want[i][j] {
				t.Errorf("consistentHash(%q, %d) = %d, Python %d", v, n, got, want[i][j])
			}
		}
	}
}

func TestShardingPlanFanout(t *testing.T) {
	// specific.0123…! hashes to host 0 of 2, worker.tasks and room1 to 1.
	a := "specific.0123456789abcdef0123456789abcdef!"
	members := []string{a + "1", "worker.tasks", a + "2", "room1", "bad\xff", a + "3"}
	plan, skipped := planFanout("asgi", members, 2)
	if skipped != 1 {
		t.Fatalf("skipped %d", skipped)
	}
	wantKeys := []string{"asgi" + a, "asgiworker.tasks", "asgiroom1"}
	wantChans := [][]string{{a + "1", a + "2", a + "3"}, {"worker.tasks"}, {"room1"}}
	wantHosts := [][]int{{0}, {1, 2}}
	if !reflect.DeepEqual(plan.keys, wantKeys) || !reflect.DeepEqual(plan.channels, wantChans) || !reflect.DeepEqual(plan.byHost, wantHosts) {
		t.Fatalf("plan %+v", plan)
	}
	one, _ := planFanout("asgi", members, 1)
	if !reflect.DeepEqual(one.byHost, [][]int{{0, 1, 2}}) {
		t.Fatalf("one host: %+v", one.byHost)
	}
	empty, _ := planFanout("asgi", nil, 3)
	if len(empty.keys) != 0 || len(empty.byHost) != 3 {
		t.Fatalf("empty plan %+v", empty)
	}
}

func TestShardingSendHost(t *testing.T) {
	l, err := newRedisLayer(Config{Prefix: "asgi", Expiry: 60, Capacity: 100, RandomPrefixLength: 12}, nopHandler, nil,
		[]string{"h0", "h1", "h2"})
	if err != nil {
		t.Fatal(err)
	}
	// A '!' name goes to the hash of its non-local part, not of the full
	// name (which is where channels_redis' send() puts it).
	name := "specific.0123456789abcdef0123456789abcdef!aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	if got := l.sendShard(name).index; got != 1 || consistentHash(name, 3) != 2 {
		t.Fatalf("process-local send goes to host %d", got)
	}
	// Plain names take every host in turn.
	var seen []int
	for range 6 {
		seen = append(seen, l.sendShard("worker.tasks").index)
	}
	if !reflect.DeepEqual(seen, []int{0, 1, 2, 0, 1, 2}) {
		t.Fatalf("round robin %v", seen)
	}
	if l.shardOf("room1").index != consistentHash("room1", 3) {
		t.Fatal("group host")
	}
}
