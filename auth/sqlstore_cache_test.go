package auth

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestRowCacheAges(t *testing.T) {
	c := newRowCache[string, int](10)
	t0 := time.Unix(1000, 0)
	c.put("a", 1, t0)
	if v, ok := c.get("a", time.Second, t0.Add(999*time.Millisecond)); !ok || v != 1 {
		t.Errorf("fresh entry: %v %v", v, ok)
	}
	if _, ok := c.get("a", time.Second, t0.Add(time.Second)); ok {
		t.Error("an entry exactly maxAge old is stale")
	}
	if _, ok := c.get("a", 0, t0); ok {
		t.Error("maxAge 0 hit")
	}
	if _, ok := c.get("a", time.Hour, t0.Add(-time.Second)); ok {
		t.Error("an entry from the future (clock stepped back) hit")
	}
	c.put("a", 2, t0.Add(time.Minute))
	if v, ok := c.get("a", time.Second, t0.Add(time.Minute)); !ok || v != 2 {
		t.Errorf("replaced entry: %v %v", v, ok)
	}
}

func TestRowCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := newRowCache[string, int](3)
	now := time.Unix(1000, 0)
	for i, k := range []string{"a", "b", "c"} {
		c.put(k, i, now)
	}
	c.get("a", time.Minute, now) // a is now the most recent
	c.put("d", 3, now)
	if _, ok := c.get("b", time.Minute, now); ok {
		t.Error("b should have been evicted")
	}
	for _, k := range []string{"a", "c", "d"} {
		if _, ok := c.get(k, time.Minute, now); !ok {
			t.Errorf("%s evicted", k)
		}
	}
	if c.len() != 3 {
		t.Errorf("len %d", c.len())
	}
}

func TestRowCacheConcurrent(t *testing.T) {
	c := newRowCache[string, int](50)
	now := time.Unix(1000, 0)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				k := fmt.Sprint(i % 80)
				c.put(k, i, now)
				c.get(k, time.Second, now)
			}
		}()
	}
	wg.Wait()
	if c.len() > 50 {
		t.Errorf("cache grew to %d entries", c.len())
	}
}
