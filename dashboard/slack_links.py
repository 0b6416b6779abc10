"""Explicit Slack user links: which Slack user acts as which Medic user on approval buttons.

Slack user ids look like ``U024BE7LH`` (or ``W...`` on Enterprise Grid): an uppercase letter U or
W followed by uppercase letters and digits. A Slack user is linked to at most one Medic user, and
a Medic user to at most one Slack user. Every change is audited.
"""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from dashboard.models import SlackUserLink
from medic.errors import Conflict, InvalidInput
from medic.models import AuditEvent

SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,31}$")


def slack_link_set(*, user_id: int, slack_user_id: str, actor: str) -> SlackUserLink | None:
    """Link (or, with an empty id, unlink) a Medic user to a Slack user id."""
    slack_user_id = slack_user_id.strip().upper()
    if slack_user_id and not SLACK_USER_ID.match(slack_user_id):
        raise InvalidInput(
            code="invalid_slack_user_id",
            fields={
                "slack_user_id": [
                    "Not a Slack user id: it starts with U or W followed by capital letters and "
                    "digits, like U024BE7LH (in Slack: the profile, ⋮, Copy member ID)."
                ]
            },
        )
    user = get_user_model().objects.get(pk=user_id)
    with transaction.atomic():
        previous = SlackUserLink.objects.select_for_update().filter(user=user).first()
        if not slack_user_id:
            if previous is None:
                return None
            previous.delete()
            link = None
        else:
            taken = SlackUserLink.objects.filter(slack_user_id=slack_user_id).exclude(user=user)
            other = taken.select_related("user").first()
            if other is not None:
                raise Conflict(
                    f"Slack user {slack_user_id} is already linked to {other.user.get_username()}.",
                    code="slack_user_taken",
                    fields={"slack_user_id": ["already linked to another Medic user"]},
                )
            try:
                with transaction.atomic():
                    link, _ = SlackUserLink.objects.update_or_create(
                        user=user, defaults={"slack_user_id": slack_user_id, "linked_by": actor}
                    )
            except IntegrityError:  # linked elsewhere at the same moment
                raise Conflict(
                    f"Slack user {slack_user_id} is already linked to another Medic user.",
                    code="slack_user_taken",
                    fields={"slack_user_id": ["already linked to another Medic user"]},
                ) from None
        AuditEvent.objects.create(
            actor=actor,
            event="slack_link.set" if slack_user_id else "slack_link.removed",
            object_type="user",
            object_id=user.get_username(),
            details={
                "slack_user_id": slack_user_id,
                "previous": previous.slack_user_id if previous else "",
            },
        )
    return link


def linked_user(slack_user_id: str):
    """The active Medic user an admin linked to this Slack user, or None."""
    link = (
        SlackUserLink.objects.select_related("user")
        .filter(slack_user_id=slack_user_id, user__is_active=True)
        .first()
    )
    return link.user if link else None
