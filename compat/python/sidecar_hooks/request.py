"""The parsed body of a hook call."""
import json

EVENT_AUTHORIZE = "authorize"
EVENT_CONNECT = "connect"
EVENT_RECEIVE = "receive"
EVENT_DISCONNECT = "disconnect"

EVENTS = (EVENT_AUTHORIZE, EVENT_CONNECT, EVENT_RECEIVE, EVENT_DISCONNECT)


class BadHookRequest(ValueError):
    """A signed body that is not a valid hook request."""


def _field(data, key, kind, default, kind_name):
    value = data.get(key, default)
    # bool is an int in Python; no field here takes a number, but the
    # check keeps "authenticated": 1 from passing as a bool.
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise BadHookRequest("%r must be %s" % (key, kind_name))
    return value


class HookRequest:
    """What the sidecar says about one socket event.

    Attributes: ``event`` (authorize, connect, receive or disconnect),
    ``route`` (the route's path pattern), ``path`` (the socket's request
    path), ``params`` (typed path parameters, a dict), ``user_id`` (the
    user's primary key as text, or None), ``authenticated`` (bool),
    ``channel`` (the socket's channel name; empty before accept),
    ``handler`` (the discriminator value of a received frame, else ""),
    ``frame`` (the received frame, a dict; else {}).
    """

    __slots__ = ("event", "route", "path", "params", "user_id", "authenticated", "channel", "handler", "frame")

    def __init__(self, event, route="", path="", params=None, user_id=None, authenticated=False,
                 channel="", handler="", frame=None):
        self.event = event
        self.route = route
        self.path = path
        self.params = {} if params is None else params
        self.user_id = user_id
        self.authenticated = authenticated
        self.channel = channel
        self.handler = handler
        self.frame = {} if frame is None else frame

    @classmethod
    def from_body(cls, body):
        """Parse a request body (bytes). Raise BadHookRequest with a
        message that names the offending key."""
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadHookRequest("body is not valid JSON: %s" % exc) from None
        if not isinstance(data, dict):
            raise BadHookRequest("body must be a JSON object")
        event = data.get("event")
        if event not in EVENTS:
            raise BadHookRequest("'event' must be one of %s" % ", ".join(EVENTS))
        user = _field(data, "user", dict, {}, "an object")
        user_id = user.get("id")
        if user_id is not None and not isinstance(user_id, str):
            raise BadHookRequest("'user.id' must be a string or null")
        authenticated = _field(user, "authenticated", bool, False, "a boolean")
        return cls(
            event=event,
            route=_field(data, "route", str, "", "a string"),
            path=_field(data, "path", str, "", "a string"),
            params=_field(data, "params", dict, {}, "an object"),
            user_id=user_id,
            authenticated=authenticated,
            channel=_field(data, "channel", str, "", "a string"),
            handler=_field(data, "handler", str, "", "a string"),
            frame=_field(data, "frame", dict, {}, "an object"),
        )

    def get_user(self):
        """Return the user as a model instance, or an AnonymousUser when
        the socket is anonymous or the user no longer exists."""
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import AnonymousUser
        from django.core.exceptions import ValidationError

        if not self.authenticated or self.user_id is None:
            return AnonymousUser()
        model = get_user_model()
        try:
            pk = model._meta.pk.to_python(self.user_id)
            return model._default_manager.get(pk=pk)
        except (model.DoesNotExist, ValidationError, ValueError, TypeError):
            return AnonymousUser()

    def __repr__(self):
        # The frame is left out: it may hold a user's private words.
        return "<HookRequest %s %s user=%s>" % (self.event, self.path, self.user_id)
