package bridge

// Observer receives measurements as they happen, so that a metrics
// package can feed histograms and gauges without this package depending on
// one. Implementations must be safe for concurrent use and fast: the
// receive loops call them inline, one loop per Redis host.
type Observer interface {
	// ObserveLag records, for one received message, the seconds between
	// its publication (its score: the publisher's clock) and its receipt
	// here. Clock skew between hosts can make it slightly negative; it is
	// reported as 0 then.
	ObserveLag(seconds float64)
	// SetQueueDepth records how many messages wait in this process's key
	// on the host at ring index host, sampled about once a second by that
	// host's receive loop.
	SetQueueDepth(host int, n int)
}
