"""The realtime logic that needs Django, shared by the Channels consumers
(kibray.consumers) and the sidecar's hook views (kibray.hook_views).

Each function takes the socket's user, its typed path parameters and, for
inbound frames, the handler name and the frame, and returns an Outcome: the
same actions a hook answer can ask for (allow, reply, group_send, join,
error, close). The consumers perform them; the hook views send them to the
sidecar, which performs them. One implementation of the rules therefore
serves both servers, which is what the differential tests compare.
"""
