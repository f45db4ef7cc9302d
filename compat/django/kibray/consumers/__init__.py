"""The Channels consumers of the ten Kibray routes (see kibray.routing)."""
from kibray.consumers.chat import ChannelChatConsumer, DirectChatConsumer, ProjectChatConsumer
from kibray.consumers.listeners import (
    AdminDashboardConsumer,
    DailyPlanConsumer,
    DashboardConsumer,
    QualityInspectionConsumer,
)
from kibray.consumers.notifications import NotificationConsumer
from kibray.consumers.status import StatusConsumer
from kibray.consumers.tasks import TaskConsumer

__all__ = [
    "AdminDashboardConsumer",
    "ChannelChatConsumer",
    "DailyPlanConsumer",
    "DashboardConsumer",
    "DirectChatConsumer",
    "NotificationConsumer",
    "ProjectChatConsumer",
    "QualityInspectionConsumer",
    "StatusConsumer",
    "TaskConsumer",
]
