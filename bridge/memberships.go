package bridge

import "sync"

// membership is one (group, channel) pair.
type membership struct {
	group, channel string
}

// memberships remembers which local channels joined which groups, so they
// can be re-added before they expire and after Redis loses them.
type memberships struct {
	mu     sync.Mutex
	groups map[string]map[string]struct{}
	count  int
}

func (m *memberships) add(group, channel string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.groups == nil {
		m.groups = make(map[string]map[string]struct{})
	}
	chans := m.groups[group]
	if chans == nil {
		chans = make(map[string]struct{})
		m.groups[group] = chans
	}
	if _, ok := chans[channel]; !ok {
		chans[channel] = struct{}{}
		m.count++
	}
}

func (m *memberships) remove(group, channel string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	chans := m.groups[group]
	if _, ok := chans[channel]; !ok {
		return
	}
	delete(chans, channel)
	m.count--
	if len(chans) == 0 {
		delete(m.groups, group)
	}
}

func (m *memberships) has(group, channel string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.groups[group][channel]
	return ok
}

// snapshot returns every membership, grouped by group.
func (m *memberships) snapshot() []membership {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]membership, 0, m.count)
	for g, chans := range m.groups {
		for ch := range chans {
			out = append(out, membership{group: g, channel: ch})
		}
	}
	return out
}
