package hooks

import "sync/atomic"

// Stats is a snapshot of a Client's counters since it was made.
type Stats struct {
	// Calls counts hook calls, successful or not; authorize answers taken
	// from the cache are not calls.
	Calls uint64
	// Failures counts failed calls by kind; every kind is present.
	Failures map[FailureKind]uint64
	// InFlight is the number of calls holding a slot right now.
	InFlight int
	// CacheHits counts authorize answers served from the cache.
	CacheHits uint64
	// CacheMisses counts authorize calls that the cache could not answer.
	CacheMisses uint64
	// CacheEntries is how many authorize answers the cache holds now,
	// expired ones not yet evicted included.
	CacheEntries int
}

// counters are the Client's live counters.
type counters struct {
	calls       atomic.Uint64
	failures    [numKinds]atomic.Uint64 // indexed by kindIndex
	inFlight    atomic.Int64
	cacheHits   atomic.Uint64
	cacheMisses atomic.Uint64
}

// numKinds is len(FailureKinds()).
const numKinds = 7

// kindIndex is the position of k in FailureKinds().
func kindIndex(k FailureKind) int {
	switch k {
	case KindBusy:
		return 0
	case KindTimeout:
		return 1
	case KindCanceled:
		return 2
	case KindTransport:
		return 3
	case KindStatus:
		return 4
	case KindMalformed:
		return 5
	}
	return 6
}

func (c *counters) fail(k FailureKind) { c.failures[kindIndex(k)].Add(1) }

// Stats returns a snapshot of the counters.
func (c *Client) Stats() Stats {
	s := Stats{
		Calls:       c.stats.calls.Load(),
		Failures:    make(map[FailureKind]uint64, len(c.stats.failures)),
		InFlight:    int(c.stats.inFlight.Load()),
		CacheHits:   c.stats.cacheHits.Load(),
		CacheMisses: c.stats.cacheMisses.Load(),
	}
	for _, kind := range FailureKinds() {
		s.Failures[kind] = c.stats.failures[kindIndex(kind)].Load()
	}
	if c.cache != nil {
		s.CacheEntries = c.cache.len()
	}
	return s
}
