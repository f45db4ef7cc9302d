"""Per-user, per-consumer inbound frame limits over a rolling minute.

Kibray counted frames in Django's cache with a TTL reset on every accepted
frame, so a busy user stayed locked out until a whole quiet minute passed
(spec §2.0, §6-13). The counts and the error frame are Kibray's; the window
here is a true rolling one: a frame is accepted when fewer than `limit`
frames were accepted in the last 60 seconds. Rejected frames are not
counted. The key is shared by every socket of the user on that consumer.
"""
import threading
import time

from django.core.cache import cache

WINDOW_SECONDS = 60

# Kibray's limits, per minute.
LIMITS = {
    "ProjectChatConsumer": 30,
    "ChannelChatConsumer": 30,
    "DirectChatConsumer": 30,
    "NotificationConsumer": 100,
    "TaskConsumer": 60,
    "StatusConsumer": 120,
}

# The cache's get/set pair is not atomic; within one process this lock
# makes the check-and-record one step.
_lock = threading.Lock()


def allow_frame(user_id, consumer_name, limit, now=None):
    """Record one inbound frame and report whether it is within limit."""
    if now is None:
        now = time.time()
    key = "websocket_rate_limit:%s:%s" % (user_id, consumer_name)
    with _lock:
        stamps = [t for t in (cache.get(key) or []) if t > now - WINDOW_SECONDS]
        if len(stamps) >= limit:
            cache.set(key, stamps, WINDOW_SECONDS)
            return False
        stamps.append(now)
        cache.set(key, stamps, WINDOW_SECONDS)
        return True
