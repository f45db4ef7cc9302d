"""The sidecar's hooks: the realtime logic that needs Django, as signed
internal HTTP views (protocol: X-Sidecar-Timestamp/X-Sidecar-Signature,
a JSON call {"event", "route", "path", "params", "user", "channel",
"handler", "frame"}, a JSON answer {"allow", "reply", "event",
"group_send", "join", "leave", "error", "close"}). The sidecar_hooks
helper (compat/python/sidecar_hooks) checks the signature against
settings.SIDECAR_HOOK_SECRETS and refuses bad calls (403, 400, 405).

Each view serves one route family and answers every event it is given;
an event it has nothing to do for gets {}. The answers are computed by the
same kibray.realtime functions that Daphne's consumers run, so both servers
follow one set of rules.

By default a receive answer carries the whole group_send (group and event,
Django having computed both). With ?mode=event in the hook's URL, a single
group_send is returned as "event" instead, its fields without "type", for a
route that declares its group_send in the sidecar's configuration and only
needs Django's fields (message_id, cleaned text, username...).
"""
import functools

from django.contrib.auth import get_user_model
from sidecar_hooks import sidecar_hook

from kibray.realtime import chat, dashboards, direct, notifications, status, tasks
from kibray.realtime.frames import CLOSE_AUTH_EXPIRED, CLOSE_FORBIDDEN, as_int
from kibray.realtime.outcome import Outcome


class HookCall:
    """One hook call, as the realtime functions need it."""

    def __init__(self, hook):
        self.event = hook.event
        self.params = hook.params
        self.handler = hook.handler
        self.frame = hook.frame
        self.user_id = as_int(hook.user_id) if hook.authenticated else None
        self._user = None

    def user(self):
        """The call's user, active or not, or None for anonymous or a user
        who no longer exists."""
        if self.user_id is None:
            return None
        if self._user is None:
            self._user = get_user_model().objects.filter(pk=self.user_id).first()
        return self._user

    def active_user(self):
        """The call's user if it is active."""
        user = self.user()
        return user if user is not None and user.is_active else None


def kibray_hook(view):
    """Make view(call) -> Outcome a hook view: the sidecar_hooks helper
    checks the signature (settings.SIDECAR_HOOK_SECRETS) and parses the
    call; the Outcome becomes the answer."""

    @sidecar_hook
    @functools.wraps(view)
    def wrapper(request, hook):
        outcome = view(HookCall(hook))
        if outcome is None:
            outcome = Outcome()
        return outcome.to_hook_answer(merge_event=request.GET.get("mode") == "event")

    return wrapper


def _after_accept(call, found):
    """The answer for a socket whose user or room is gone after the
    handshake: a receive closes 4001 for a user who can no longer log in,
    4003 otherwise; connect refuses (4003)."""
    if call.event == "receive" and call.active_user() is None:
        return Outcome.closing(CLOSE_AUTH_EXPIRED, "user_inactive")
    if call.event in ("connect", "receive") and found is None:
        return Outcome.closing(CLOSE_FORBIDDEN, "forbidden")
    return None


def _chat(call, find, connect):
    if call.event == "authorize":
        return chat.authorize(find(call.active_user(), True))
    room = find(call.user(), False)
    stop = _after_accept(call, room)
    if stop is not None:
        return stop
    if room is None:
        return Outcome()
    if call.event == "connect":
        return connect(room, call.user())
    if call.event == "disconnect":
        return chat.disconnect(room, call.user())
    return chat.receive(room, call.active_user(), call.handler, call.frame)


@kibray_hook
def chat_project(call):
    """/ws/chat/project/{project_id}/: authorize (member or staff; joins
    chat_project_<id>), connect (self user_joined and the room's),
    disconnect (user_left), receive message|chat_message (saved, cleaned,
    broadcast with message_id), typing, read_receipt."""
    return _chat(
        call,
        lambda user, check: chat.project_room(user, call.params.get("project_id"), check),
        chat.connect_project,
    )


@kibray_hook
def chat_channel(call):
    """/ws/chat/{channel_id}/ (channel pk or slug): as chat_project, in
    group chat_channel_<pk>; connect replies connection_established."""
    return _chat(
        call,
        lambda user, check: chat.channel_room(user, call.params.get("channel_id"), check),
        chat.connect_channel,
    )


@kibray_hook
def chat_direct(call):
    """/ws/chat/direct/{user_id}/: authorize (both users active and
    different; joins direct_chat_<low>_<high>), receive message."""
    if call.event == "authorize":
        return direct.authorize(direct.pair(call.active_user(), call.params.get("user_id")))
    p = direct.pair(call.user(), call.params.get("user_id"), check=False)
    stop = _after_accept(call, p)
    if stop is not None:
        return stop
    if call.event != "receive" or p is None:
        return Outcome()
    return direct.receive(p, call.active_user(), call.handler, call.frame)


@kibray_hook
def notifications_hook(call):
    """/ws/notifications/: authorize (joins notifications_<user id>),
    connect (unread_count), receive mark_read|mark_all_read|dismiss (the
    new unread_count to every tab)."""
    if call.event == "authorize":
        return notifications.authorize(call.active_user())
    user = call.active_user()
    stop = _after_accept(call, user)
    if stop is not None:
        return stop
    if call.event == "connect":
        return notifications.connect(user)
    if call.event == "receive":
        return notifications.receive(user, call.handler, call.frame)
    return Outcome()


@kibray_hook
def dashboard_project(call):
    """/ws/dashboard/project/{project_id}/: authorize (member or staff;
    joins dashboard_project_<id>), connect (the dashboard_data snapshot)."""
    if call.event == "authorize":
        return dashboards.authorize_project(dashboards.project_dashboard(call.active_user(), call.params.get("project_id")))
    project = dashboards.project_dashboard(call.user(), call.params.get("project_id"), check=False)
    stop = _after_accept(call, project)
    if stop is not None:
        return stop
    if call.event == "connect":
        return dashboards.connect_project(project)
    return Outcome()


@kibray_hook
def dashboard_admin(call):
    """/ws/dashboard/admin/: authorize staff and superusers (joins
    dashboard_admin)."""
    if call.event == "authorize":
        return dashboards.authorize_admin(call.active_user())
    return Outcome()


@kibray_hook
def daily_plan(call):
    """/ws/daily-plan/{date}/: authorize active users (joins
    daily_plan_<date>)."""
    if call.event == "authorize":
        return dashboards.authorize_daily_plan(call.active_user(), call.params.get("date"))
    return Outcome()


@kibray_hook
def quality_inspection(call):
    """/ws/quality/inspection/{inspection_id}/: authorize active users
    (joins quality_inspection_<id>)."""
    if call.event == "authorize":
        return dashboards.authorize_inspection(call.active_user(), call.params.get("inspection_id"))
    return Outcome()


@kibray_hook
def tasks_hook(call):
    """/ws/tasks/{project_id}/: authorize (member or staff; joins
    tasks_project_<id>), connect (connection_established), receive
    subscribe_task (task_subscribed)."""
    if call.event == "authorize":
        return tasks.authorize(tasks.project(call.active_user(), call.params.get("project_id")))
    if call.event == "connect":
        return tasks.connect(call.params.get("project_id"))
    if call.event == "receive":
        return tasks.receive(call.handler, call.frame)
    return Outcome()


@kibray_hook
def status_hook(call):
    """/ws/status/: authorize (joins user_status), connect (counts the
    socket; online to the group for the first one; connection_established
    with the online users), disconnect (offline after the last one),
    receive heartbeat (heartbeat_ack)."""
    if call.event == "authorize":
        return status.authorize(call.active_user())
    if call.event == "disconnect":
        user = call.user()
        return status.disconnect(user) if user is not None else Outcome()
    user = call.active_user()
    stop = _after_accept(call, user)
    if stop is not None:
        return stop
    if call.event == "connect":
        return status.connect(user)
    return status.receive(user, call.handler, call.frame)


@kibray_hook
def authorize_project(call):
    """Project access alone, for any route with a project_id parameter:
    allow when the user is a member or staff."""
    from kibray.access import accessible_project

    return Outcome(allow=accessible_project(call.active_user(), call.params.get("project_id")) is not None)
