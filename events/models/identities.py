"""Who a user is and which account they belong to: identify traits and group membership."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class UserProfile(models.Model):
    """What the product said about a user (identify calls, ``$set``/``$set_once``).

    ``email_domain`` feeds the internal-user rule: an internal domain here excludes
    the user's events, past (a reclassification) and future (``classify_batch``).
    """

    user_id = models.CharField(primary_key=True, max_length=255)
    email = models.CharField(max_length=320, blank=True)
    # Lower-cased part of the email after the last @, compared with the internal domains.
    email_domain = models.CharField(max_length=255, blank=True)
    name = models.CharField(max_length=255, blank=True)
    traits = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "ops_user_profiles"
        indexes = [
            # The rules fingerprint joins the internal domains to the profiles that carry them.
            models.Index(fields=["email_domain"], name="ops_user_profiles_domain", condition=~models.Q(email_domain=""))
        ]

    def __str__(self) -> str:
        return f"{self.user_id} <{self.email}>"


class UserAccount(models.Model):
    """A user's account (tenant), remembered from group calls, ``$groups`` and
    ``$groupidentify``, so a later event of that user with no group is attributed to it.

    One account per user: the latest group call wins (a user who moves company moves).
    """

    user_id = models.CharField(primary_key=True, max_length=255)
    tenant_id = models.CharField(max_length=128)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "ops_user_accounts"

    def __str__(self) -> str:
        return f"{self.user_id} -> {self.tenant_id}"


class AccountTraits(models.Model):
    """What the product said about an account (a group call's traits, ``$groupidentify``)."""

    tenant_id = models.CharField(primary_key=True, max_length=128)
    name = models.CharField(max_length=255, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "ops_account_traits"
        verbose_name_plural = "account traits"

    def __str__(self) -> str:
        return self.tenant_id


class UserAlias(models.Model):
    """An id the product used for a person before it knew them (posthog-js's anonymous
    ``distinct_id``, analytics.js's ``anonymousId``) and the user it turned out to be.

    Written by ``$identify`` with ``$anon_distinct_id``, ``$create_alias``, Segment's alias
    call and an identify carrying both ids. The alias's tenant-less history is re-attributed
    to the user when the link is made, and a later event under the alias is stored as the
    user's, so one person is one real user.
    """

    alias_id = models.CharField(primary_key=True, max_length=255)
    user_id = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "ops_user_aliases"
        verbose_name_plural = "user aliases"

    def __str__(self) -> str:
        return f"{self.alias_id} -> {self.user_id}"
