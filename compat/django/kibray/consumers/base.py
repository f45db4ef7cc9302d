"""KibrayConsumer: what every Kibray consumer does the same way.

The product decisions it carries (spec §7.3): malformed input gets an error
frame and the socket stays open (Kibray closed it with 1011); refusals
before accept are HTTP 403 (close() before accept()), while after accept
4001 means the credential expired and 4003 that the user may no longer use
the socket; inbound frames are rate-limited per user and consumer over a
rolling minute with Kibray's counts and error frame; group events of a type
the consumer does not declare are dropped instead of killing the socket.
"""
import json
import logging

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.generic.websocket import WebsocketConsumer

from kibray.auth_middleware import credential_problem
from kibray.ratelimit import LIMITS, allow_frame
from kibray.realtime.frames import CLOSE_AUTH_EXPIRED, error_frame, rate_limit_frame

log = logging.getLogger(__name__)


class KibrayConsumer(WebsocketConsumer):
    """Subclasses set `discriminator` ("type" or "action"; None: the
    socket takes no frames), `critical` (handler names that re-check the
    credential first), `events` (group event type to method name) and
    implement authorize(), and optionally on_connect(), on_disconnect() and
    handle(handler, frame), each returning an Outcome."""

    discriminator = None
    critical = frozenset()
    events = {}

    def connect(self):
        self.accepted = False
        # Set once this side closes an accepted socket: nothing more is
        # sent, but disconnect() still runs its announcements.
        self.closed_here = False
        self.user = self.scope.get("user")
        self.params = self.scope["url_route"]["kwargs"]
        outcome = self.authorize()
        if not outcome.allow:
            self.close()  # before accept: Daphne answers HTTP 403
            return
        self.joined = list(outcome.join)
        for group in self.joined:
            async_to_sync(self.channel_layer.group_add)(group, self.channel_name)
        self.accept()
        self.accepted = True
        self.perform(self.on_connect())

    def disconnect(self, code):
        # A refused socket never joined anything and announces nothing
        # (Kibray broadcast user_left for users who never got in, §6-18).
        if not getattr(self, "accepted", False):
            return
        self.accepted = False
        try:
            self.perform(self.on_disconnect(), closing=True)
        finally:
            for group in self.joined:
                async_to_sync(self.channel_layer.group_discard)(group, self.channel_name)

    # Hooks for subclasses.

    def authorize(self):
        raise NotImplementedError

    def on_connect(self):
        return None

    def on_disconnect(self):
        return None

    def handle(self, handler, frame):
        return None

    # Inbound frames.

    def receive(self, text_data=None, bytes_data=None):
        if self.closed_here:
            return
        limit = LIMITS.get(type(self).__name__)
        if limit is not None and not allow_frame(self.user.pk, type(self).__name__, limit):
            self.send_json(rate_limit_frame(limit))
            return
        frame = self.decode(text_data, bytes_data)
        if frame is None:
            return
        if self.discriminator is None:
            self.send_json(error_frame("not_accepted", "this route does not accept frames"))
            return
        handler = frame.get(self.discriminator)
        if not isinstance(handler, str):
            handler = ""
        if handler in self.critical:
            problem = credential_problem(self.scope, self.user)
            if problem is not None:
                log.info("%s closes a socket: %s", type(self).__name__, problem)
                self.close_here(CLOSE_AUTH_EXPIRED)
                return
        self.perform(self.handle(handler, frame))

    def decode(self, text_data, bytes_data):
        """The frame as a dict, or None after reporting why it is not one.
        Binary frames are read as UTF-8 text (Kibray crashed on them)."""
        if text_data is None:
            try:
                text_data = (bytes_data or b"").decode("utf-8")
            except UnicodeDecodeError:
                self.send_json(error_frame("invalid_json", "frame is not valid JSON"))
                return None
        try:
            frame = json.loads(text_data)
        except ValueError:
            self.send_json(error_frame("invalid_json", "frame is not valid JSON"))
            return None
        if not isinstance(frame, dict):
            self.send_json(error_frame("invalid_json", "frame must be a JSON object"))
            return None
        return frame

    # Performing outcomes.

    def perform(self, outcome, closing=False):
        """Carry out an Outcome's actions on this socket."""
        if outcome is None:
            return
        for group in outcome.join:
            if group not in self.joined:
                async_to_sync(self.channel_layer.group_add)(group, self.channel_name)
                self.joined.append(group)
        for group in outcome.leave:
            if group in self.joined:
                async_to_sync(self.channel_layer.group_discard)(group, self.channel_name)
                self.joined.remove(group)
        if not closing:
            for frame in outcome.reply:
                self.send_json(frame)
        for group, event in outcome.group_send:
            async_to_sync(self.channel_layer.group_send)(group, event)
        if outcome.error is not None and not closing:
            self.send_json(error_frame(*outcome.error))
        if outcome.close is not None and not closing:
            self.close_here(outcome.close[0])

    def close_here(self, code):
        """Close the accepted socket with a code."""
        self.closed_here = True
        self.close(code=code)

    def send_json(self, frame):
        """Send one JSON frame, as Python's json.dumps writes it."""
        self.send(text_data=json.dumps(frame))

    # Group events: only declared types reach a handler.

    @database_sync_to_async
    def dispatch(self, message):
        kind = message.get("type", "")
        if isinstance(kind, str) and kind.startswith("websocket."):
            handler = getattr(self, kind.replace(".", "_"), None)
            if handler is None:
                raise ValueError("No handler for message type %s" % kind)
            handler(message)
            return
        name = self.events.get(kind.replace(".", "_") if isinstance(kind, str) else "")
        if name is None:
            log.warning("%s dropped a group event of undeclared type %r", type(self).__name__, kind)
            return
        if not getattr(self, "accepted", False) or self.closed_here:
            return
        frame = getattr(self, name)(message)
        if frame is not None:
            self.send_json(frame)

    def is_self(self, event):
        """Whether a group event was caused by this socket's user (Kibray
        skips those for every tab of the user)."""
        return event.get("user_id") == self.user.pk
