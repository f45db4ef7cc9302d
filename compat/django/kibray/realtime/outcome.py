"""Outcome: what a realtime step asks the server to do."""


class Outcome:
    """Actions for one step, in the vocabulary of the hook protocol.

    allow is None (no verdict), True or False; reply holds frames for this
    socket; group_send holds (group, event) pairs; join and leave hold group
    names; error is an (error, message) pair reported to this socket, which
    stays open; close is a (code, reason) pair.
    """

    __slots__ = ("allow", "reply", "group_send", "join", "leave", "error", "close")

    def __init__(self, allow=None, reply=None, group_send=None, join=None, leave=None, error=None, close=None):
        self.allow = allow
        self.reply = list(reply or [])
        self.group_send = list(group_send or [])
        self.join = list(join or [])
        self.leave = list(leave or [])
        self.error = error
        self.close = close

    @classmethod
    def deny(cls):
        """Refuse the socket."""
        return cls(allow=False)

    @classmethod
    def fail(cls, error, message):
        """Report an error to the socket and do nothing else."""
        return cls(error=(error, message))

    @classmethod
    def closing(cls, code, reason):
        """Close the socket."""
        return cls(close=(code, reason))

    def send(self, group, event):
        """Add a group_send and return self, for chaining."""
        self.group_send.append((group, event))
        return self

    def to_hook_answer(self, merge_event=False):
        """Render the answer of a hook view.

        With merge_event, a single group_send is returned as "event" (its
        fields minus "type"), for a route that declares the group_send
        itself and lets the hook fill in the fields only Django knows.
        """
        answer = {}
        if self.allow is not None:
            answer["allow"] = self.allow
        if self.reply:
            answer["reply"] = self.reply
        sends = self.group_send
        if merge_event and len(sends) == 1:
            answer["event"] = {k: v for k, v in sends[0][1].items() if k != "type"}
            sends = []
        if sends:
            answer["group_send"] = [{"group": g, "event": e} for g, e in sends]
        if self.join:
            answer["join"] = self.join
        if self.leave:
            answer["leave"] = self.leave
        if self.error is not None:
            answer["error"] = {"error": self.error[0], "message": self.error[1]}
        if self.close is not None:
            answer["close"] = {"code": self.close[0], "reason": self.close[1]}
        return answer
