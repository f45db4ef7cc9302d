package hooks

import (
	"errors"
	"strconv"
)

// ErrHookFailed is wrapped by every error of Call and Authorize: the call
// did not produce a usable answer, and the socket should get a
// hook_failed error (or, for authorize, a refused handshake).
var ErrHookFailed = errors.New("hook failed")

// FailureKind says why a hook call failed.
type FailureKind string

// Failure kinds, as counted in Stats.
const (
	// KindBusy: MaxInFlight calls were running and no slot freed up before
	// the call's deadline.
	KindBusy FailureKind = "busy"
	// KindTimeout: Django did not answer within the timeout (or the
	// caller's deadline).
	KindTimeout FailureKind = "timeout"
	// KindCanceled: the caller gave up, usually because the socket closed.
	KindCanceled FailureKind = "canceled"
	// KindTransport: the connection to Django failed.
	KindTransport FailureKind = "transport"
	// KindStatus: Django answered with a status other than 200.
	KindStatus FailureKind = "status"
	// KindMalformed: the answer was not a valid hook response.
	KindMalformed FailureKind = "malformed"
	// KindRequest: the request could not be made (an unknown event, a
	// path that is not absolute, parameters JSON cannot encode).
	KindRequest FailureKind = "request"
)

// FailureKinds lists every FailureKind, in a fixed order, for metrics.
func FailureKinds() []FailureKind {
	return []FailureKind{KindBusy, KindTimeout, KindCanceled, KindTransport, KindStatus, KindMalformed, KindRequest}
}

// Error is a failed hook call. errors.Is(err, ErrHookFailed) holds for
// every Error, and errors.Is/As also reach the cause (such as
// context.DeadlineExceeded).
type Error struct {
	// Kind says why the call failed.
	Kind FailureKind
	// Path is the hook path that was called.
	Path string
	// Status is Django's HTTP status for KindStatus, else 0.
	Status int
	// Err is the cause.
	Err error
}

// Error returns "hook failed: <path>: <kind>: <cause>".
func (e *Error) Error() string {
	s := ErrHookFailed.Error() + ": " + e.Path + ": " + string(e.Kind)
	if e.Status != 0 {
		s += " (HTTP " + strconv.Itoa(e.Status) + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns ErrHookFailed and the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrHookFailed}
	}
	return []error{ErrHookFailed, e.Err}
}

// ClientMessage is text for the socket's hook_failed error frame. It says
// what kind of trouble it was without repeating Django's answer or
// internal addresses to the browser.
func (e *Error) ClientMessage() string {
	switch e.Kind {
	case KindBusy:
		return "the server is busy; try again"
	case KindTimeout:
		return "the server did not answer in time"
	}
	return "the server could not handle this request"
}
