"""The dashboard's own rows: the explicit link from a Medic user to a Slack user."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class SlackUserLink(models.Model):
    """A Slack user acts as this Medic user when clicking an approval button, whatever e-mail
    address the Slack profile has. Set by an admin in the portal; checked before the verified
    e-mail lookup. One Slack user per Medic user and one Medic user per Slack user."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="slack_link"
    )
    slack_user_id = models.CharField(max_length=32, unique=True)
    linked_by = models.CharField(max_length=150)
    linked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return f"{self.slack_user_id} -> {self.user_id}"
