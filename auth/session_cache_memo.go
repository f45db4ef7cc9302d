package auth

import (
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// verdictMemo remembers recent answers about credentials for a short time,
// so that a burst of critical frames or reconnects costs one store read
// or one callback. It holds at most max entries and is keyed by a SHA-256
// of the credential, never the credential itself.
type verdictMemo struct {
	mu      sync.Mutex
	max     int
	maxAge  time.Duration // no entry is used past this age
	entries map[[sha256.Size]byte]verdict
}

// verdict is one remembered answer: an identity, or a refusal's reason
// and detail. A *Failure is rebuilt on every use, since callers set its
// Source.
type verdict struct {
	at     time.Time
	id     *Identity
	reason string
	detail string
}

func newVerdictMemo(max int, maxAge time.Duration) *verdictMemo {
	return &verdictMemo{max: max, maxAge: maxAge, entries: map[[sha256.Size]byte]verdict{}}
}

func credentialHash(credential string) [sha256.Size]byte {
	return sha256.Sum256([]byte(credential))
}

// get returns the answer for key if it was stored at most maxAge before
// now (and not after now).
func (m *verdictMemo) get(key [sha256.Size]byte, now time.Time, maxAge time.Duration) (verdict, bool) {
	if m == nil || maxAge <= 0 {
		return verdict{}, false
	}
	m.mu.Lock()
	v, ok := m.entries[key]
	m.mu.Unlock()
	if !ok || now.Before(v.at) || now.Sub(v.at) >= maxAge || now.Sub(v.at) >= m.maxAge {
		return verdict{}, false
	}
	return v, true
}

// put stores an answer. When the memo is full it first drops expired
// entries, then, if it is still full, one arbitrary entry.
func (m *verdictMemo) put(key [sha256.Size]byte, v verdict) {
	if m == nil || m.max <= 0 || m.maxAge <= 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.entries[key]; !ok && len(m.entries) >= m.max {
		for k, e := range m.entries {
			if v.at.Sub(e.at) >= m.maxAge || e.at.After(v.at) {
				delete(m.entries, k)
			}
		}
		if len(m.entries) >= m.max {
			for k := range m.entries {
				delete(m.entries, k)
				break
			}
		}
	}
	m.entries[key] = v
}

// forget drops the answer for key.
func (m *verdictMemo) forget(key [sha256.Size]byte) {
	if m == nil {
		return
	}
	m.mu.Lock()
	delete(m.entries, key)
	m.mu.Unlock()
}

// len is the number of entries, for tests.
func (m *verdictMemo) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

// verdictOf turns an engine's answer into a memo entry.
func verdictOf(now time.Time, id *Identity, err error) verdict {
	v := verdict{at: now, id: id}
	if err == nil {
		return v
	}
	v.id = nil
	v.reason = ReasonSessionStoreUnavailable // engines return *Failure; this is a safety net
	var f *Failure
	if errors.As(err, &f) {
		v.reason = f.Reason
		if f.Err != nil {
			v.detail = f.Err.Error()
		}
	}
	return v
}

// result rebuilds the answer: a copy of the identity, or a new *Failure.
func (v verdict) result() (*Identity, error) {
	if v.reason != "" {
		return nil, refuse(v.reason, v.detail)
	}
	if v.id == nil {
		return nil, nil
	}
	id := *v.id
	return &id, nil
}
