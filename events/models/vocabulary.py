"""What each event type means: the registry a founder edits (names, categories, roles, weights)."""

from __future__ import annotations

import math

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class EventCategory(models.TextChoices):
    FRICTION = "friction", "Friction"
    INTENT = "intent", "Intent"
    VALUE = "value", "Value"
    ENGAGEMENT = "engagement", "Engagement"
    LIFECYCLE = "lifecycle", "User lifecycle"
    CHANGE = "change", "Change"
    CUSTOM = "custom", "Custom"


class FrictionSignal(models.TextChoices):
    """What an event of a type says about the customer's experience (empty: nothing)."""

    FRICTION = "friction", "Friction (a flow abandoned)"
    HESITATION = "hesitation", "Hesitation (looked, did nothing)"
    INTENT = "intent", "Intent (started something)"
    SYSTEM_ISSUE = "system_issue", "System issue (the product failed)"
    BLOCKED = "blocked", "Blocked (a rule or policy stopped them)"
    ENGAGEMENT = "engagement", "Engagement (session boundaries)"


class NorthStarRole(models.TextChoices):
    """The north star's lifecycle steps; each maps to the product's own event types."""

    SIGNUP = "signup", "Signup"
    LOGIN = "login", "Login"
    CORE_ACTION = "core_action", "Core action"
    DECISION = "decision", "Decision"
    FEEDBACK = "feedback", "Feedback"


# The bounds of every weight a founder may set (friction and engagement): a larger value
# overflows nothing, but no product's weighting needs one, and a typo like 1e308 is refused.
WEIGHT_MIN = 0.0
WEIGHT_MAX = 100.0
EVENT_TYPE_NAME_MAX = 64
LABEL_MAX = 100


def event_type_name_validate(value: str) -> None:
    """A type name is 1-64 printable characters as the product sends it ("Order Completed", "$pageview")."""
    if not value or len(value) > EVENT_TYPE_NAME_MAX:
        raise ValidationError(f"An event type name has 1 to {EVENT_TYPE_NAME_MAX} characters.")
    if value != value.strip() or not value.isprintable():
        raise ValidationError("An event type name has printable characters only, with no leading or trailing space.")


def weight_validate(value: float) -> None:
    """A weight is a finite number (NaN passes the range validators, since it compares false)."""
    if not math.isfinite(value):
        raise ValidationError(
            "A weight is a finite number between %(min)g and %(max)g.", params={"min": WEIGHT_MIN, "max": WEIGHT_MAX}
        )


def choice_error(what: str, choices: type[models.TextChoices], *, blank: bool = False) -> dict[str, str]:
    """A field's invalid-choice message that lists the valid choices, in the API's and admin's words."""
    empty = " or leave it empty" if blank else ""
    return {"invalid_choice": f"%(value)r is not {what}; choose one of: {', '.join(choices.values)}{empty}."}


def event_type_label_default(name: str) -> str:
    """The label a type reads as until the founder writes one: "invoice_sent" -> "Invoice sent"."""
    if "_" not in name and not name.isupper():
        return name  # already spelled for people ("Order Completed", "$pageview")
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:].lower()


class EventType(models.Model):
    """The event type registry: which types exist, how each one counts, and what role it plays.

    Every concept the engine uses is a property of types here, never a type name
    in code: ``core_value`` (the product's main value action), ``friction_signal``
    and ``friction_weight``, ``engagement_weight``, ``north_star_role``,
    ``page_view``, ``label``. The source documents' taxonomy is only the seeded default vocabulary.
    Names are matched case-insensitively and keep the first spelling (one unique
    index on ``lower(name)``). Weights are read by the metrics engine; editing
    one changes the next recompute.
    """

    name = models.CharField(
        primary_key=True,
        max_length=EVENT_TYPE_NAME_MAX,
        validators=[event_type_name_validate],
        help_text="The name as the product sends it, e.g. invoice_sent, Order Completed or REPLAY_ABORTED "
        "(matched case-insensitively).",
    )
    label = models.CharField(
        max_length=LABEL_MAX,
        blank=True,
        help_text='A human name used in every founder-facing text, e.g. "Invoice sent". Empty: derived from the name.',
    )
    category = models.CharField(
        max_length=16,
        choices=EventCategory.choices,
        default=EventCategory.CUSTOM,
        error_messages=choice_error("a category", EventCategory),
    )
    description = models.CharField(max_length=255, blank=True)
    core_value = models.BooleanField(
        default=False,
        help_text="The product's main value action (an invoice sent, an incident investigated). Silent churn "
        "and never-used-the-core-value read it.",
    )
    friction_signal = models.CharField(
        max_length=32,
        blank=True,
        choices=FrictionSignal.choices,
        error_messages=choice_error("a friction signal", FrictionSignal, blank=True),
        help_text="What this type says about the experience; copied onto each event at ingestion. "
        "blocked feeds the repeated-block rule, system_issue counts failures.",
    )
    friction_weight = models.FloatField(
        default=0.0,
        validators=[weight_validate, MinValueValidator(WEIGHT_MIN), MaxValueValidator(WEIGHT_MAX)],
        help_text="Friction points one event of this type adds to its session (0-100; a session's and a day's "
        "friction are capped): 1 is a small stumble, 100 means one event alone fills the session's cap; 0 means the "
        "type is not friction.",
    )
    engagement_weight = models.FloatField(
        default=0.0,
        validators=[weight_validate, MinValueValidator(WEIGHT_MIN), MaxValueValidator(WEIGHT_MAX)],
        help_text="How much one event of this type counts as use in the stickiness score (0-100): 1 is one unit "
        "of use, 100 counts one event like 100 events of weight 1; 0 means the type does not count.",
    )
    north_star_role = models.CharField(
        max_length=16,
        blank=True,
        choices=NorthStarRole.choices,
        error_messages=choice_error("a north-star role", NorthStarRole, blank=True),
        help_text="The north star's lifecycle step this type is (its current-state rows and /metrics/interaction).",
    )
    page_view = models.BooleanField(
        default=False, help_text="A page view: the single-page-visit rule looks at these types."
    )
    counts_as_real_interaction = models.BooleanField(
        default=False,
        help_text="Whether this type moves 'days since last real user interaction'.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # An example type (the default vocabulary's, seeded on a fresh install) no founder has saved since: it
    # speaks in founder-facing texts only once the product sends it (events.registry
    # ``event_types_speaking``). Saving the type in admin or through the API clears it.
    is_example = models.BooleanField(default=False, editable=False)

    class Meta:
        ordering = ["category", "name"]
        constraints = [
            # Names match case-insensitively: "Login" and "LOGIN" are one type, first spelling kept.
            models.UniqueConstraint(
                Lower("name"),
                name="events_eventtype_name_ci",
                violation_error_message="An event type with this name already exists in another case "
                "(names match case-insensitively); edit that one instead.",
            ),
            models.CheckConstraint(
                condition=models.Q(friction_weight__gte=WEIGHT_MIN, friction_weight__lte=WEIGHT_MAX)
                & models.Q(engagement_weight__gte=WEIGHT_MIN, engagement_weight__lte=WEIGHT_MAX),
                name="events_eventtype_weights_in_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def display_label(self) -> str:
        return self.label or event_type_label_default(self.name)
