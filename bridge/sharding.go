package bridge

import "unicode/utf8"

// fanout is the plan of one group_send: the members bucketed by Redis key
// in order of first appearance, as channels_redis does, and the keys
// bucketed by the host that holds them.
type fanout struct {
	// keys are the distinct channel keys, prefix + non-local name.
	keys []string
	// channels[i] lists the members that share keys[i].
	channels [][]string
	// byHost[h] lists the indexes into keys of the keys on host h.
	byHost [][]int
}

// planFanout buckets group members for n hosts. The host of a key is the
// hash of the member's non-local name, where its receiver listens. Names
// that are not valid UTF-8 are skipped, as Python could not decode them
// either; skipped counts them.
func planFanout(prefix string, members []string, n int) (plan fanout, skipped int) {
	index := make(map[string]int, len(members))
	plan.byHost = make([][]int, n)
	for _, ch := range members {
		if !utf8.ValidString(ch) {
			skipped++
			continue
		}
		nonLocal := nonLocalName(ch)
		key := prefix + nonLocal
		i, ok := index[key]
		if !ok {
			i = len(plan.keys)
			index[key] = i
			plan.keys = append(plan.keys, key)
			plan.channels = append(plan.channels, nil)
			h := consistentHash(nonLocal, n)
			plan.byHost[h] = append(plan.byHost[h], i)
		}
		plan.channels[i] = append(plan.channels[i], ch)
	}
	return plan, skipped
}
