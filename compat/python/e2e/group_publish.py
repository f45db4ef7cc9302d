"""Publish numbered events to a group with the real channels_redis layer.

    group_publish.py GROUP COUNT TAG

sends COUNT events {"type": "room.message", "tag": TAG, "n": i} for i in
0..COUNT-1, in order, from one layer instance, as a Django process that
publishes in a loop would. The layer is configured from the environment as
in channels_peer.py: REDIS_URL, LAYER_KEYS (comma separated
symmetric_encryption_keys) and LAYER_PREFIX.
"""

import asyncio
import os
import sys

from channels_redis.core import RedisChannelLayer


def make_layer():
    kwargs = {"hosts": [os.environ["REDIS_URL"]], "prefix": os.environ.get("LAYER_PREFIX", "asgi")}
    keys = os.environ.get("LAYER_KEYS")
    if keys:
        kwargs["symmetric_encryption_keys"] = keys.split(",")
    return RedisChannelLayer(**kwargs)


async def publish(group, count, tag):
    layer = make_layer()
    try:
        for i in range(count):
            await layer.group_send(group, {"type": "room.message", "tag": tag, "n": i})
    finally:
        await layer.close_pools()


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        count = int(argv[1])
    except ValueError:
        print(f"COUNT must be an integer, got {argv[1]!r}", file=sys.stderr)
        return 2
    if count < 0:
        print(f"COUNT must not be negative, got {count}", file=sys.stderr)
        return 2
    asyncio.run(publish(argv[0], count, argv[2]))
    print("PUBLISHED", count, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
