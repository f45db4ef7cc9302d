"""Models the realtime layer reads and writes.

They follow the shape of Kibray's models (chat channels and messages,
notifications, user status) without their inconsistencies: project access is an explicit membership
table rather than free text, and a chat channel has an optional global
slug so that the React client's /ws/chat/<channel_id>/ can name it.
"""
from django.conf import settings
from django.db import models


class Project(models.Model):
    """A construction project; the dashboard snapshot is computed from it."""

    name = models.CharField(max_length=200)
    client = models.CharField(max_length=200, blank=True, default="")
    budget_total = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    total_expenses = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    contract_value = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    percent_complete = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    planned_percent = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    status_date = models.DateField(null=True, blank=True)

    def __str__(self):
        return self.name


class ProjectAccess(models.Model):
    """Grants a non-staff user access to one project while active."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="access")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="project_access")
    is_active = models.BooleanField(default=True)

    class Meta:
        unique_together = [("project", "user")]


class ChatChannel(models.Model):
    """A chat channel of a project."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="chat_channels")
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120, unique=True, null=True, blank=True)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        unique_together = [("project", "name")]


class ChatMessage(models.Model):
    """A chat message; read_by holds the users who sent a read receipt."""

    channel = models.ForeignKey(ChatChannel, on_delete=models.CASCADE, related_name="messages")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="chat_messages")
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    read_by = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="read_chat_messages")


class DirectMessage(models.Model):
    """A message between two users, outside any project."""

    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="direct_sent")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="direct_received")
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)


class Notification(models.Model):
    """A notification for one user."""

    PRIORITIES = [("low", "low"), ("normal", "normal"), ("high", "high"), ("urgent", "urgent")]

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL)
    notification_type = models.CharField(max_length=40, default="system")
    title = models.CharField(max_length=200)
    message = models.TextField(blank=True, default="")
    link_url = models.CharField(max_length=500, blank=True, default="")
    priority = models.CharField(max_length=10, choices=PRIORITIES, default="normal")
    is_read = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)


class UserStatus(models.Model):
    """Presence: connection_count counts the user's open /ws/status/
    sockets, and the user is online while it is above zero."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="status")
    is_online = models.BooleanField(default=False)
    last_seen = models.DateTimeField(auto_now=True)
    last_heartbeat = models.DateTimeField(null=True, blank=True)
    connection_count = models.IntegerField(default=0)
