#!/usr/bin/python3
"""Drive the real channels_redis pub/sub layer from the command line.

The Go bridge tests use this to prove that messages cross between Go and
Python's RedisPubSubChannelLayer with the same values and types. Messages
on the command line and on stdout use the tagged JSON form of peer.py
(beside this file), which keeps str/bytes and int/float apart.

Commands (layer options go before the command):

    version                         prints {"channels_redis": VERSION,
                                    "encryption": BOOL}; encryption tells
                                    whether this release's pub/sub layer
                                    takes symmetric_encryption_keys
    send CHANNEL MESSAGE            prints {"sent": true}
    group_send GROUP MESSAGE        prints {"sent": true}
    receive COUNT TIMEOUT           makes a channel, prints {"ready": CHANNEL}
                                    once Redis has the subscription, then
                                    {"channel": ..., "message": ...} per
                                    message; {"timeout": true} if TIMEOUT
                                    seconds pass first
    receive-group GROUP COUNT TIMEOUT
                                    like receive, but group_adds the channel
                                    to GROUP before the ready line, and
                                    group_discards it at the end

Layer options: --host URL (repeatable: the shard ring, in order), --prefix,
--key KEY (repeatable: symmetric_encryption_keys, first encrypts; refused
by releases whose pub/sub layer would silently ignore it).
"""

import argparse
import asyncio
import inspect
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import channels_redis  # noqa: E402
from channels_redis.pubsub import RedisPubSubChannelLayer  # noqa: E402
from redis import asyncio as aioredis  # noqa: E402

from peer import emit, from_tagged, to_tagged  # noqa: E402

# How long to wait for Redis to show a subscription before giving up.
SUBSCRIBE_WAIT = 10.0


def supports_encryption():
    """Pub/sub encryption came with channels_redis 4.2.1; older releases
    take the keyword through **kwargs and ignore it."""
    params = inspect.signature(RedisPubSubChannelLayer.__init__).parameters
    return "symmetric_encryption_keys" in params


def make_layer(a):
    kwargs = {"hosts": a.host, "prefix": a.prefix}
    if a.key:
        if not supports_encryption():
            raise SystemExit("this channels_redis pub/sub layer has no symmetric_encryption_keys")
        kwargs["symmetric_encryption_keys"] = a.key
    return RedisPubSubChannelLayer(**kwargs)


async def subscribers(hosts, name):
    """Count the subscribers of a pub/sub channel over every host."""
    total = 0
    for url in hosts:
        r = aioredis.from_url(url)
        try:
            for _, n in await r.pubsub_numsub(name):
                total += int(n)
        finally:
            close = getattr(r, "aclose", None) or r.close
            await close()
    return total


async def wait_subscribed(hosts, name, before):
    """The layer only writes SUBSCRIBE; wait until Redis has processed it,
    so that "ready" means a message published now is received."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SUBSCRIBE_WAIT
    while await subscribers(hosts, name) <= before:
        if loop.time() > deadline:
            raise SystemExit(f"redis never showed the subscription to {name}")
        await asyncio.sleep(0.01)


async def receive_some(layer, channel, count, timeout):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for _ in range(count):
        left = deadline - loop.time()
        try:
            msg = await asyncio.wait_for(layer.receive(channel), max(left, 0.001))
        except asyncio.TimeoutError:
            emit({"timeout": True})
            return 1
        emit({"channel": channel, "message": to_tagged(msg)})
    return 0


async def run(a):
    if a.cmd == "version":
        emit({"channels_redis": channels_redis.__version__, "encryption": supports_encryption()})
        return 0
    layer = make_layer(a)
    rc = 0
    try:
        if a.cmd == "send":
            await layer.send(a.channel, from_tagged(json.loads(a.message)))
            emit({"sent": True})
        elif a.cmd == "group_send":
            await layer.group_send(a.group, from_tagged(json.loads(a.message)))
            emit({"sent": True})
        elif a.cmd == "receive":
            channel = await layer.new_channel()
            await wait_subscribed(a.host, channel, 0)
            emit({"ready": channel})
            rc = await receive_some(layer, channel, a.count, a.timeout)
        elif a.cmd == "receive-group":
            channel = await layer.new_channel()
            await wait_subscribed(a.host, channel, 0)
            group_channel = f"{a.prefix}__group__{a.group}"
            before = await subscribers(a.host, group_channel)
            await layer.group_add(a.group, channel)
            await wait_subscribed(a.host, group_channel, before)
            emit({"ready": channel})
            try:
                rc = await receive_some(layer, channel, a.count, a.timeout)
            finally:
                await layer.group_discard(a.group, channel)
    finally:
        await layer.flush()
    return rc


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", action="append", default=None)
    p.add_argument("--prefix", default="asgi")
    p.add_argument("--key", action="append", default=None)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("version")
    s = sub.add_parser("send")
    s.add_argument("channel")
    s.add_argument("message")
    s = sub.add_parser("group_send")
    s.add_argument("group")
    s.add_argument("message")
    s = sub.add_parser("receive")
    s.add_argument("count", type=int)
    s.add_argument("timeout", type=float)
    s = sub.add_parser("receive-group")
    s.add_argument("group")
    s.add_argument("count", type=int)
    s.add_argument("timeout", type=float)
    a = p.parse_args(argv)
    if not a.host:
        a.host = ["redis://localhost:6379/0"]
    return asyncio.run(run(a))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
