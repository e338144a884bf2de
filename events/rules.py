"""Edits of the real-user rules (internal users, bot user agents), in admin or code.

Every save goes through here so that a rule edit (1) reaches every ingesting process at once
through the rules version and (2) reclassifies history after the edit commits. They hold the
logic; admin.save_model only calls them.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F

from core.tasks import task_queue
from events.models import ClassificationState, InternalUserRule, InternalUserRuleKind, UserAgentPattern

# The set-based reclassification of history (events/tasks.py, which imports this module): queued by name.
RECLASSIFY_TASK = "events.tasks.events_reclassify_task"


def classification_rules_changed() -> None:
    """Bump the rules version and queue the set-based reclassification of history
    (``events_reclassify_task``) for when the current transaction commits."""
    state, _ = ClassificationState.objects.get_or_create(pk=1)
    ClassificationState.objects.filter(pk=state.pk).update(rules_version=F("rules_version") + 1)
    transaction.on_commit(lambda: task_queue(RECLASSIFY_TASK))


def _rule_store(rule: InternalUserRule | UserAgentPattern) -> None:
    """Validate and save a rule together with the version bump, so no process classifies by half an edit."""
    with transaction.atomic():
        rule.full_clean()
        rule.save()
        classification_rules_changed()


def _rules_delete(
    model: type[InternalUserRule] | type[UserAgentPattern], rules: Iterable[InternalUserRule | UserAgentPattern]
) -> None:
    with transaction.atomic():
        model.objects.filter(pk__in=[r.pk for r in rules]).delete()
        classification_rules_changed()


def internal_user_rule_save(*, rule: InternalUserRule) -> InternalUserRule:
    """Normalise (domains lower-case, no leading @), validate and save an internal user rule."""
    value = rule.value.strip()
    if rule.kind == InternalUserRuleKind.EMAIL_DOMAIN:
        value = value.lstrip("@").lower()
        if not value or "@" in value or " " in value or "." not in value:
            raise ValidationError({"value": "Give a domain such as example.com (without the @)."})
    elif not value:
        raise ValidationError({"value": "Give the user id exactly as the product sends it."})
    rule.value = value
    _rule_store(rule)
    return rule


def internal_user_rule_delete(*, rules: Iterable[InternalUserRule]) -> None:
    _rules_delete(InternalUserRule, rules)


def user_agent_pattern_save(*, pattern: UserAgentPattern) -> UserAgentPattern:
    """Validate (both regex engines must accept it) and save a user-agent pattern."""
    from events.classification import user_agent_pattern_problem

    problem = user_agent_pattern_problem(pattern.pattern)
    if problem:
        raise ValidationError({"pattern": problem})
    _rule_store(pattern)
    return pattern


def user_agent_pattern_delete(*, patterns: Iterable[UserAgentPattern]) -> None:
    _rules_delete(UserAgentPattern, patterns)
