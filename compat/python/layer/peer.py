#!/usr/bin/python3
"""Drive the real channels_redis core layer from the command line.

The Go bridge tests use this to prove that messages cross between Go and
Python with the same values and types. Messages on the command line and on
stdout use a tagged JSON form that keeps str/bytes and int/float apart and
keeps 64-bit integers exact:

    {"nil": null}  {"bool": true}  {"int": "-9223372036854775808"}
    {"float": "1.5" | "inf" | "-0.0" | "nan"}  {"str": "text"}  {"bin": "00ff"}
    {"array": [...]}  {"map": [[<key>, <value>], ...]}

Commands (layer options go before the command):

    send CHANNEL MESSAGE            prints {"sent": true} or {"full": true}
    group_send GROUP MESSAGE        prints {"sent": true}
    group_add GROUP CHANNEL         prints {"added": true}
    group_discard GROUP CHANNEL     prints {"discarded": true}
    receive COUNT TIMEOUT [--channel NAME]
                                    makes a channel (or uses NAME), prints
                                    {"ready": CHANNEL}, then {"channel": ...,
                                    "message": ...} per message;
                                    {"timeout": true} if TIMEOUT seconds
                                    pass first
    receive-group GROUP COUNT TIMEOUT
                                    like receive, but group_adds the channel
                                    to GROUP before the ready line, and
                                    group_discards it at the end

Layer options: --host HOST (repeatable: the hosts list, in ring order),
--prefix, --expiry, --group-expiry, --capacity, --key KEY (repeatable:
symmetric_encryption_keys, first encrypts), --client-prefix HEX (the
layer's client_prefix, so that tests can choose the host of its process
key).

A HOST is a Redis URL, or JSON for the other forms channels_redis takes:
a [host, port] list becomes a (host, port) tuple, and a mapping is passed
as is except that its "sentinels" entries become tuples, e.g.
{"sentinels": [["127.0.0.1", 26379]], "master_name": "mymaster"}.
"""

import argparse
import asyncio
import json
import sys

from channels.exceptions import ChannelFull
from channels_redis.core import RedisChannelLayer


def from_tagged(t):
    """Turn a tagged JSON value into the Python value it stands for."""
    if not isinstance(t, dict) or len(t) != 1:
        raise ValueError(f"not a tagged value: {t!r}")
    (kind, v), = t.items()
    if kind == "nil":
        return None
    if kind == "bool":
        return bool(v)
    if kind == "int":
        return int(v)
    if kind == "float":
        return float(v)
    if kind == "str":
        return v
    if kind == "bin":
        return bytes.fromhex(v)
    if kind == "array":
        return [from_tagged(x) for x in v]
    if kind == "map":
        return {from_tagged(k): from_tagged(x) for k, x in v}
    raise ValueError(f"unknown tag {kind!r}")


def to_tagged(v):
    """Turn a Python value into tagged JSON; bool is checked before int."""
    if v is None:
        return {"nil": None}
    if isinstance(v, bool):
        return {"bool": v}
    if isinstance(v, int):
        return {"int": str(v)}
    if isinstance(v, float):
        return {"float": repr(v)}
    if isinstance(v, str):
        return {"str": v}
    if isinstance(v, (bytes, bytearray)):
        return {"bin": bytes(v).hex()}
    if isinstance(v, (list, tuple)):
        return {"array": [to_tagged(x) for x in v]}
    if isinstance(v, dict):
        return {"map": [[to_tagged(k), to_tagged(x)] for k, x in v.items()]}
    raise TypeError(f"cannot tag {type(v).__name__}")


def emit(obj):
    print(json.dumps(obj), flush=True)


def parse_host(text):
    """Turn one --host value into a channels_redis hosts entry."""
    if not text.startswith(("{", "[")):
        return text
    v = json.loads(text)
    if isinstance(v, list):
        return tuple(v)
    if "sentinels" in v:
        v["sentinels"] = [tuple(s) for s in v["sentinels"]]
    return v


def make_layer(a):
    layer = RedisChannelLayer(
        hosts=[parse_host(h) for h in a.host or ["redis://localhost:6379/0"]],
        prefix=a.prefix,
        expiry=a.expiry,
        group_expiry=a.group_expiry,
        capacity=a.capacity,
        symmetric_encryption_keys=a.key or None,
    )
    if a.client_prefix:
        layer.client_prefix = a.client_prefix
    return layer


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
    layer = make_layer(a)
    rc = 0
    try:
        if a.cmd == "send":
            try:
                await layer.send(a.channel, from_tagged(json.loads(a.message)))
                emit({"sent": True})
            except ChannelFull:
                emit({"full": True})
        elif a.cmd == "group_send":
            await layer.group_send(a.group, from_tagged(json.loads(a.message)))
            emit({"sent": True})
        elif a.cmd == "group_add":
            await layer.group_add(a.group, a.channel)
            emit({"added": True})
        elif a.cmd == "group_discard":
            await layer.group_discard(a.group, a.channel)
            emit({"discarded": True})
        elif a.cmd == "receive":
            channel = a.channel or await layer.new_channel()
            emit({"ready": channel})
            rc = await receive_some(layer, channel, a.count, a.timeout)
        elif a.cmd == "receive-group":
            channel = await layer.new_channel()
            await layer.group_add(a.group, channel)
            emit({"ready": channel})
            try:
                rc = await receive_some(layer, channel, a.count, a.timeout)
            finally:
                await layer.group_discard(a.group, channel)
    finally:
        close = getattr(layer, "close_pools", None)
        if close is not None:
            await close()
    return rc


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", action="append", default=None)
    p.add_argument("--client-prefix", default="")
    p.add_argument("--prefix", default="asgi")
    p.add_argument("--expiry", type=int, default=60)
    p.add_argument("--group-expiry", type=int, default=86400)
    p.add_argument("--capacity", type=int, default=100)
    p.add_argument("--key", action="append", default=None)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("channel")
    s.add_argument("message")
    s = sub.add_parser("group_send")
    s.add_argument("group")
    s.add_argument("message")
    for name in ("group_add", "group_discard"):
        s = sub.add_parser(name)
        s.add_argument("group")
        s.add_argument("channel")
    s = sub.add_parser("receive")
    s.add_argument("count", type=int)
    s.add_argument("timeout", type=float)
    s.add_argument("--channel", default="", help="receive on this name (it must use the layer's client_prefix) instead of a new channel")
    s = sub.add_parser("receive-group")
    s.add_argument("group")
    s.add_argument("count", type=int)
    s.add_argument("timeout", type=float)
    a = p.parse_args(argv)
    return asyncio.run(run(a))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
