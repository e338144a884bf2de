"""Every founder-facing text the engine writes: templates over the founder's labels and the tenant's facts.

The templates themselves live with what they describe (a risk component in risk.py, an
intervention rule in interventions.py); this module builds the facts they are filled
from (``text_facts``), fills them (``text_render``), and fills talk tracks
(``talk_track_facts`` / ``talk_track_render``, which the playbooks app calls).
A text never names an event type the product does not have: every type in it
comes from the registry (vocabulary.py) and speaks for the product (an example
type the product never sent does not: events.registry.event_types_speaking), and
the founder's own words for a role (customers.RoleWording) are used only while
they describe that role's types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import connection

from core.rows import rows_as_dicts
from customers.metrics.vocabulary import Vocabulary, vocabulary_current
from customers.models import WordingRole
from events.registry import Registry


def join_or(words: list[str]) -> str:
    """ "A", "A or B", "A, B or C"."""
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def days_ago_text(days: int) -> str:
    if days <= 0:
        return "today"
    return "1 day ago" if days == 1 else f"{days} days ago"


def fmt(value: float) -> str:
    return f"{value:.2f}"


def pct_text(ratio: float) -> str:
    """A ratio as a founder reads it: 0.04 -> "4%"; a fall to almost nothing still reads as a number."""
    if 0 < ratio < 0.005:
        return "under 1%"
    return f"{ratio:.0%}"


def count_text(count: int, noun: str) -> str:
    """ "1 friction event", "4 friction events"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def day_text(day: date) -> str:
    """A day in a sentence: "3 Nov" (the exact ISO date stays in the fields and the formulas)."""
    return f"{day.day} {day:%b}"


def possessive(name: str) -> str:
    """ "Acme's", "Initech Labs'"."""
    return f"{name}'" if name.endswith("s") else f"{name}'s"


# The last vocabulary's words and the vocabulary itself: a recompute or a backtest date fills every tenant's
# facts from one Vocabulary (frozen, read once per run), so its words are derived once, not once per tenant.
# Matched by identity, so a vocabulary read again (a new run) derives them again.
_WORDS_OF_LAST: list[tuple[Vocabulary, dict[str, str]]] = []


def vocabulary_facts(vocabulary: Vocabulary) -> dict[str, str]:
    """The vocabulary's words every template may use (independent of the tenant). Only the types
    that speak for the product are named; a role with none reads as its plain word."""
    last = _WORDS_OF_LAST[-1] if _WORDS_OF_LAST else None
    if last is not None and last[0] is vocabulary:
        return dict(last[1])
    words = _vocabulary_words(vocabulary)
    _WORDS_OF_LAST[:] = [(vocabulary, words)]
    return dict(words)


def _vocabulary_words(vocabulary: Vocabulary) -> dict[str, str]:
    core_labels = join_or(vocabulary.speaking_labels(vocabulary.core_value)) or "the core value"
    blocked_labels = join_or(vocabulary.speaking_labels(vocabulary.blocked)) or "blocks"
    failure_labels = join_or(vocabulary.speaking_labels(vocabulary.system_issue)) or "failures"
    return {
        # Labels for prose, type names (as the product sends them) for the measured triggers.
        "core_labels": core_labels,
        "core_names": join_or(list(vocabulary.speaking_of(vocabulary.core_value))) or "core-value event",
        "core_done": vocabulary.wording.get(WordingRole.CORE_VALUE, f"used {core_labels}"),
        "blocked_labels": blocked_labels,
        "blocked_names": "/".join(vocabulary.speaking_of(vocabulary.blocked)) or "blocked events",
        "blocked_action": vocabulary.wording.get(
            WordingRole.BLOCKED, f"Review what keeps blocking them ({blocked_labels})"
        ),
        "failure_labels": failure_labels,
        "failure_names": "/".join(vocabulary.speaking_of(vocabulary.system_issue)) or "failures",
        "failure_action": vocabulary.wording.get(
            WordingRole.SYSTEM_ISSUE, f"Look into the repeated failures ({failure_labels})"
        ),
    }


def engagement_formula_text(vocabulary: Vocabulary) -> str:
    """How engagement is weighted, in the founder's labels: "Incident viewed 0.2, Replay completed 0.3"."""
    weighted = vocabulary.speaking_of(tuple(sorted(vocabulary.engagement_weights)))
    parts = [f"{vocabulary.label(t)} {vocabulary.engagement_weights[t]:g}" for t in weighted]
    if not parts and vocabulary.engagement_weights:
        return "no type with an engagement weight has been sent yet"
    return ", ".join(parts) or "no event type has an engagement weight yet"


# A count of one followed by a plural noun the templates use ("{events_7d} events"): said in the
# singular once filled. Not after a digit or a decimal point, so "11 events" and "0.1 days" stay.
_ONE_THEN_PLURAL = re.compile(
    r"(?<![\d.,])(1 (?:event|day|failure|blocked attempt|churn|session|user|week|step|customer))s\b"
)


def text_render(template: str, facts: dict[str, Any]) -> str:
    """Fill a template ("{account}", "{delta:.2f}") from the facts; every template's keys are in the facts.
    A filled count of one reads in the singular ("1 event this week")."""
    return _ONE_THEN_PLURAL.sub(r"\1", template.format_map(facts))


# --- Talk tracks -------------------------------------------------------------------------------------------
# A placeholder is a name in braces: {first_name}, {first name}, {account}, {core_action}, {link}...
PLACEHOLDER = re.compile(r"\{([A-Za-z][A-Za-z0-9 _-]{0,39})\}")
# What a placeholder reads as when the data is missing, so the sentence still reads naturally.
PLACEHOLDER_FALLBACKS = {"first_name": "there", "account": "your team", "core_action": "the product"}

# Placeholders that name the product's own types, filled from the labels of a role of the registry
# (events.registry.ROLE_SETS) wherever a playbook's prose is shown, a tenant at hand or not:
# placeholder -> (role, minimum friction weight or None, what it reads as when no type has the role).
# friction_action takes the friction types weighing 2+, the ones the seeded abandonment playbook
# counts (playbooks/migrations/0004: "friction events weighing 2+"), not every hesitation.
PRODUCT_WORDS: dict[str, tuple[str, float | None, str]] = {
    "core_action": ("core_value", None, "the product"),
    "blocked_action": ("blocked", None, "a block"),
    "failure_action": ("system_issue", None, "a failure"),
    "friction_action": ("friction", 2.0, "an abandoned step"),
    "side_action": ("side_value", None, "a side feature"),
}

# The tenant's name and its champion (customers/metrics/contacts.py: the real user most active over 30 days)
# with the name and email the identify traits gave. Uses the primary keys of customers_tenant and
# ops_tenant_contacts (co-located on Citus).
TALK_TRACK_TENANT_SQL = """
SELECT t.name, COALESCE(c.user_id, '') AS user_id, COALESCE(c.name, '') AS contact_name,
       COALESCE(c.email, '') AS contact_email
FROM customers_tenant t LEFT JOIN ops_tenant_contacts c ON c.tenant_id = t.tenant_id AND c.role = 'champion'
WHERE t.tenant_id = %(tenant)s
"""
# A champion the identify traits never named: that user's newest event carrying a name or an email
# in its metadata; walks ops_events_tenant_time (tenant_id, occurred_at) backwards from the newest event.
TALK_TRACK_USER_SQL = """
SELECT e.metadata ->> 'name' AS name, e.metadata ->> 'email' AS email
FROM ops_events e
WHERE e.tenant_id = %(tenant)s AND e.user_id = %(user)s AND (e.metadata ? 'name' OR e.metadata ? 'email')
ORDER BY e.occurred_at DESC LIMIT 1
"""


@dataclass(frozen=True)
class TalkTrackFacts:
    """What a talk track's placeholders are filled with for one tenant ('' where there is no data)."""

    first_name: str = ""
    account: str = ""
    core_action: str = ""


# Mailboxes that belong to a team, not a person: "Hi Support" is worse than "Hi there".
ROLE_MAILBOXES = frozenset(
    {"admin", "billing", "contact", "dev", "hello", "help", "info", "noreply", "ops", "sales", "support", "team"}
)


def _first_name(name: str, email: str, *, company: tuple[str, ...] = ()) -> str:
    """A person's first name from a name or an email ("jane.doe@..." -> "Jane"), or "" when none is
    known: never a word of the company (``company``: its id, name and the email's domain), a team
    mailbox, or a piece of a login id ("acme-u0")."""
    taken = {word for part in company for word in re.split(r"[\s._+-]+", part.lower()) if word}
    if "@" in email:
        taken |= {word for word in re.split(r"[.-]+", email.rsplit("@", 1)[1].lower()) if word}
    if name.strip():
        word = name.strip().split()[0]
        return "" if word.lower() in taken else word
    local = email.split("@", 1)[0] if "@" in email else ""
    pieces = re.split(r"[._+-]", local) if local else []
    if not pieces or not all(piece.isalpha() for piece in pieces):
        return ""
    word = pieces[0].lower()
    return "" if word in taken or word in ROLE_MAILBOXES else word.capitalize()


def talk_track_facts(*, tenant_id: str, vocabulary: Vocabulary | None = None) -> TalkTrackFacts:
    """The tenant's facts for talk tracks (one or two small queries): {first_name} from the champion's
    name (else the email's local part) as the identify traits give it, else as its events' metadata
    do; never a word of the company. {account} from the tenant's name, {core_action} from the
    core-value labels. No champion or no usable name: '' (talk_track_render reads it as "there")."""
    vocabulary = vocabulary or vocabulary_current()
    first = account = ""
    with connection.cursor() as cursor:
        cursor.execute(TALK_TRACK_TENANT_SQL, {"tenant": tenant_id})
        tenants = rows_as_dicts(cursor)
        if tenants:
            account = tenants[0]["name"] or ""
            name, email = tenants[0]["contact_name"], tenants[0]["contact_email"]
            if tenants[0]["user_id"] and not (name or email):
                cursor.execute(TALK_TRACK_USER_SQL, {"tenant": tenant_id, "user": tenants[0]["user_id"]})
                users = rows_as_dicts(cursor)
                if users:
                    name, email = users[0]["name"] or "", users[0]["email"] or ""
            first = _first_name(name, email, company=(tenant_id, account))
    core = join_or(vocabulary.speaking_labels(vocabulary.core_value))
    return TalkTrackFacts(first_name=first, account=account, core_action=core)


def product_words(registry: Registry) -> dict[str, str]:
    """Each PRODUCT_WORDS placeholder as the product says it: the labels of its role's types that
    speak for the product, "A or B"; its plain word while none does."""
    words = {}
    for key, (role, min_weight, fallback) in PRODUCT_WORDS.items():
        labels = [t.display_label for t in registry.members(role, min_friction_weight=min_weight, speaking=True)]
        words[key] = join_or(list(dict.fromkeys(labels))) or fallback
    return words


def product_words_render(text: str, words: dict[str, str]) -> str:
    """The text with its product-word placeholders ({core_action}, {blocked_action}...) filled from
    ``words`` (``product_words``); every other placeholder is kept for talk_track_render."""

    def fill(match: re.Match[str]) -> str:
        key = re.sub(r"[\s-]+", "_", match.group(1).strip().lower())
        return words.get(key, match.group(0))

    return PLACEHOLDER.sub(fill, text)


def talk_track_render(text: str, facts: TalkTrackFacts | None) -> str:
    """A talk track with its placeholders filled; never returns a raw {placeholder}.

    With a tenant's facts, a known placeholder is filled from them or, without data,
    reads naturally ("Hi {first_name}" -> "Hi there"); a placeholder the engine has no
    data for ({link}, {your name}) becomes a visible gap, "[link]", for the founder to
    fill in. Without facts (a playbook's own page) every placeholder is shown as a gap.
    """

    def fill(match: re.Match[str]) -> str:
        words = match.group(1).strip()
        key = re.sub(r"[\s-]+", "_", words.lower())
        if facts is not None and key in PLACEHOLDER_FALLBACKS:
            return getattr(facts, key) or PLACEHOLDER_FALLBACKS[key]
        return f"[{words}]"

    return PLACEHOLDER.sub(fill, text)
