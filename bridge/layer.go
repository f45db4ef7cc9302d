// Package bridge is the channel layer: the sidecar's seat in a Django
// Channels deployment. It speaks the channels_redis wire protocol so that
// Django's channel_layer.group_send reaches the sidecar's sockets, and
// sidecar frames reach Django consumers.
package bridge

import (
	"context"
	"errors"
)

// Message is one channel-layer message as Channels sees it: a dict with a
// "type" key. Values are nil, bool, int64, uint64, float64, string, []byte,
// []any and map[string]any. Layers remove the internal "__asgi_channel__"
// key before delivery.
type Message = map[string]any

// Handler receives a message addressed to one local channel. It must not
// block: the receive loops of the layer call it inline. It must be safe
// for concurrent use: the Redis layer runs one receive loop per host.
type Handler func(channel string, msg Message)

// ErrChannelFull is returned by Send when the target channel is at capacity,
// as channels_redis raises ChannelFull.
var ErrChannelFull = errors.New("channel full")

// Layer is a channel layer shared with Django. Implementations are safe for
// concurrent use.
type Layer interface {
	// NewChannel returns a new process-local channel name on which
	// messages are delivered to the Handler given to the layer.
	NewChannel() string
	// Send sends a message to one channel, local or remote.
	Send(ctx context.Context, channel string, msg Message) error
	// GroupAdd adds a channel to a group.
	GroupAdd(ctx context.Context, group, channel string) error
	// GroupDiscard removes a channel from a group.
	GroupDiscard(ctx context.Context, group, channel string) error
	// GroupSend sends a message to every channel of a group.
	GroupSend(ctx context.Context, group string, msg Message) error
	// Run receives messages for local channels and passes them to the
	// Handler until ctx is cancelled.
	Run(ctx context.Context) error
	// Ready reports whether the layer can currently reach its backend.
	Ready(ctx context.Context) error
	// Close releases connections. Run must have returned.
	Close() error
}

// ChannelCloser is implemented by layers that hold resources for each local
// channel, such as the pub/sub layer's subscriptions. The hub calls
// CloseChannel when a channel from NewChannel is no longer used.
type ChannelCloser interface {
	CloseChannel(channel string)
}
