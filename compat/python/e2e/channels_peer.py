"""A Django-side peer for the black-box tests: the real channels_redis layer.

    channels_peer.py group_send GROUP JSON [N] publish like Django's group_send
                                               (N times, with "seq" set to 0..N-1)
    channels_peer.py expect GROUP JSON SECONDS join GROUP, print READY, and check
                                               that the next message equals JSON
                                               with the same Python types
    channels_peer.py send CHANNEL JSON         send() to one channel
    channels_peer.py expect_channel JSON SECONDS
                                               print READY <new channel> and check
                                               the next message sent to it

The layer is configured from the environment: REDIS_URL, LAYER_KEYS (comma
separated symmetric_encryption_keys), LAYER_PREFIX, and LAYER_BACKEND
("pubsub" for channels_redis.pubsub.RedisPubSubChannelLayer; the core
RedisChannelLayer otherwise).
"""

import asyncio
import json
import os
import sys

from channels_redis.core import RedisChannelLayer


def make_layer():
    kwargs = {"hosts": [os.environ["REDIS_URL"]], "prefix": os.environ.get("LAYER_PREFIX", "asgi")}
    keys = os.environ.get("LAYER_KEYS")
    if keys:
        kwargs["symmetric_encryption_keys"] = keys.split(",")
    if os.environ.get("LAYER_BACKEND") == "pubsub":
        from channels_redis.pubsub import RedisPubSubChannelLayer

        return RedisPubSubChannelLayer(**kwargs)
    return RedisChannelLayer(**kwargs)


async def close(layer):
    """Releases the layer's connections, whichever layer it is."""
    for name in ("close_pools", "flush"):
        fn = getattr(layer, name, None)
        if fn is not None:
            await fn()
            return


def same(a, b, path="$"):
    """Returns a description of the first difference, with types, or None."""
    if type(a) is not type(b):
        return f"{path}: {a!r} ({type(a).__name__}) != {b!r} ({type(b).__name__})"
    if isinstance(a, dict):
        if set(a) != set(b):
            return f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            d = same(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = same(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{path}: {a!r} != {b!r}"


async def group_send(group, payload, count=None):
    layer = make_layer()
    if count is None:
        await layer.group_send(group, json.loads(payload))
    else:
        for i in range(int(count)):
            await layer.group_send(group, dict(json.loads(payload), seq=i))
    await close(layer)


async def send(channel, payload):
    layer = make_layer()
    await layer.send(channel, json.loads(payload))
    await close(layer)


async def expect(group, payload, seconds):
    layer = make_layer()
    channel = await layer.new_channel()
    if group:
        await layer.group_add(group, channel)
    print("READY", channel, flush=True)
    try:
        msg = await asyncio.wait_for(layer.receive(channel), float(seconds))
    except asyncio.TimeoutError:
        print("TIMEOUT", flush=True)
        return 1
    finally:
        if group:
            await layer.group_discard(group, channel)
    # The expected message may name the new channel as "CHANNEL".
    diff = same(msg, json.loads(payload.replace('"CHANNEL"', json.dumps(channel))))
    print("MATCH" if diff is None else "MISMATCH " + diff, flush=True)
    await close(layer)
    return 0 if diff is None else 1


def main(argv):
    if len(argv) >= 3 and argv[0] == "group_send":
        asyncio.run(group_send(argv[1], argv[2], argv[3] if len(argv) > 3 else None))
        return 0
    if len(argv) >= 4 and argv[0] == "expect":
        return asyncio.run(expect(argv[1], argv[2], argv[3]))
    if len(argv) >= 3 and argv[0] == "send":
        asyncio.run(send(argv[1], argv[2]))
        return 0
    if len(argv) >= 3 and argv[0] == "expect_channel":
        return asyncio.run(expect(None, argv[1], argv[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
