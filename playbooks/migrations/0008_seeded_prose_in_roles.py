"""The seeded playbooks' prose in the product's words, so it reads naturally in any product.

0002 wrote names, success metrics, notes and talk tracks about the source documents' types (incidents,
replays, exports, certificates, policies); 0004 moved only the conditions into roles. Here
the prose names types through placeholders over the registry's roles, filled wherever a
playbook is shown (customers.metrics.texts.PRODUCT_WORDS): {core_action} (core_value),
{blocked_action} (blocked), {failure_action} (system_issue), {friction_action} (friction
weighing 2+) and {side_action} (side_value). On the default vocabulary they read as the
source documents' own types ("Incident viewed or Replay completed").

Only text exactly as 0002 seeded it is rewritten, field by field and step by step: whatever
the founder edited stays theirs. engagement_decay named no type: only its one raw brace changes.
"""

import importlib

from django.db import migrations

SEEDED = {p["id"]: p for p in importlib.import_module("playbooks.migrations.0001_playbooks_seeded").PLAYBOOKS}

# playbook id -> the fields to rewrite; "actions" by step order: (step, talk_track).
IN_PRODUCT_WORDS = {
    "silent_churn": {
        "success_metric": (
            "{core_action} again from a named user within 14 days of the first email, and at least once a week "
            "for the 4 weeks after."
        ),
        "notes": (
            "Their integration keeps sending data, so the invoice looks safe, but nobody does what they bought "
            "the product for ({core_action}). This is the most common way B2B tools die: the renewal meeting asks "
            "'who uses this?' and nobody can answer. Usually the person who used it left, or the work moved to "
            "another tool. Lead with curiosity, not with a sales pitch; the fix is often a person or a setting, "
            "not features."
        ),
        "actions": {
            1: (
                "Personal check-in to the main user",
                "Hi {first name}, I noticed your account is still active with us every day, but I haven't seen any "
                "{core_action} from your team in over a week. That usually means one of two things: things are "
                "quiet (great), or it stopped fitting how your team works. Which is it for you? If it's the second, "
                "I can help set it up for whoever does that work now in five minutes.",
            ),
            2: (
                "Send them one concrete example worth looking at",
                "Here's something from {day} in your account that we thought was worth a look: {link}. It takes "
                "two minutes. If it isn't useful, tell me and I'll tune it so you only hear about what matters.",
            ),
            3: (
                "15-minute call with the account owner",
                "I'm not calling to sell anything. Your usage tells me the product is running but nobody uses it "
                "for {core_action}, and I'd rather hear now if it stopped being useful than find out at renewal. "
                "What would have to be true for your team to use it every week?",
            ),
            4: (
                "Decide and record the outcome",
                "Still no {core_action}: record the outcome as no_response, ask the account owner who decides the "
                "renewal, and put a note on the tenant. {core_action} again: record retained and check again in 4 "
                "weeks.",
            ),
        },
    },
    "policy_friction": {
        "name": "Repeatedly blocked",
        "success_metric": (
            "No {blocked_action} in the 7 days after the cause is fixed, with the same or higher weekly usage "
            "(stickiness_7d)."
        ),
        "notes": (
            "The same rule or limit blocking the same people again and again means it fights their workflow. "
            "Users rarely report it; they route around the product instead. Check first whether the block is "
            "right and the user needs help: sometimes the answer is a two-minute explanation, not a config change."
        ),
        "actions": {
            1: (
                "Find what blocks them and decide whether the blocks are right",
                "Before contacting them: open the customer page, read the metadata of the {blocked_action} events, "
                "and decide whether the block is correct and the user needs help, or it is too strict for how they "
                "work.",
            ),
            2: (
                "Tell them what you found and offer the fix",
                "Hi {first name}, I saw your team ran into {blocked_action} {n} times this week on what looks like "
                "the same action. That's on us to make smoother. Two options: I can switch it to warn-only for your "
                "workspace, or walk you through an exception for that workflow. Which would you prefer?",
            ),
            4: (
                "Check the blocks stopped",
                "Customer page: no {blocked_action} since the change and usage steady? Record retained. Still "
                "blocked? Send engineering one example event, and tell the customer the date you'll have it fixed "
                "by.",
            ),
        },
    },
    "abandonment": {
        "name": "Abandoned workflows",
        "success_metric": (
            "{core_action} within 7 days, and {friction_action} back under one a week for the following month."
        ),
        "actions": {
            1: (
                "Reconstruct what happened",
                "On the customer page, read the timeline around each {friction_action}: what they started, how long "
                "before they gave up, and whether {failure_action} came just before.",
            ),
            2: (
                "Offer to do it for them",
                "Hi {first name}, it looks like a few things were started and abandoned on your account this week. "
                "Usually that means it was too slow or asked for something you didn't have to hand. Was it one of "
                "those? Tell me what you were trying to get done and I'll do it with you and send you the result "
                "today.",
            ),
            3: (
                "20-minute working session",
                "Let's do the next one together: bring something you actually need done and we'll finish it on the "
                "call. I'll take notes on every step that felt slow or unclear.",
            ),
            4: (
                "Check for completions",
                "{core_action} since the session? Record retained. Still giving up at the same step? File it as a "
                "product bug with the session ids and tell the customer when it ships.",
            ),
        },
    },
    # Named no type; its promised-fix step had "{fix / config change / workaround}", which no
    # placeholder matches, so the page showed it raw: now a gap the founder fills ("[what you promised]").
    "engagement_decay": {
        "actions": {
            4: (
                "Deliver what you promised",
                "Here's {what you promised}, live on your account now. I'll check in again next week to see "
                "whether it helped.",
            ),
        },
    },
    "legal_only": {
        "name": "One side feature only",
        "success_metric": (
            "A first {core_action} within 30 days, from someone other than the person who uses {side_action}."
        ),
        "notes": (
            "They bought for {side_action} and use nothing else. Stable until renewal, when someone asks what "
            "else it does and nobody knows. The person using {side_action} is often not the one the core value "
            "({core_action}) is for. Your job is an introduction, not a pitch."
        ),
        "actions": {
            1: (
                "Thank the main user and ask who else could use it",
                "Hi {first name}, I see your team uses {side_action} regularly, thank you. Quick question: who on "
                "your side would get the most out of {core_action}? I'd love to give them a 10-minute tour.",
            ),
            2: (
                "Tour with one real example from their account",
                "Let me show you {core_action} on your own data from {day}. Would this have saved you time that day?",
            ),
            3: (
                "Check for a first {core_action}",
                "Any {core_action} since the tour? Record retained. None: record no_response and note for the "
                "renewal that they value {side_action} only, and price and position accordingly.",
            ),
        },
    },
}


def _seeded_fields(spec):
    """0002's text of the fields IN_PRODUCT_WORDS rewrites, in the same shape."""
    return {
        "name": spec["name"],
        "success_metric": spec["success_metric"],
        "notes": spec["notes"],
        "actions": {order: (step, talk) for order, (step, _, _, talk) in enumerate(spec["actions"], 1)},
    }


def _rewrite(apps, frm, to):
    """Each field (and each step) still equal to ``frm`` becomes ``to``; anything else is kept."""
    Playbook = apps.get_model("playbooks", "Playbook")
    PlaybookAction = apps.get_model("playbooks", "PlaybookAction")
    for playbook_id, fields in to.items():
        playbook = Playbook.objects.filter(pk=playbook_id).first()
        if playbook is None:
            continue
        changed = []
        for field in ("name", "success_metric", "notes"):
            if field in fields and getattr(playbook, field) == frm[playbook_id][field]:
                setattr(playbook, field, fields[field])
                changed.append(field)
        if changed:
            playbook.save(update_fields=changed)
        for order, (step, talk_track) in fields.get("actions", {}).items():
            old_step, old_talk = frm[playbook_id]["actions"][order]
            PlaybookAction.objects.filter(
                playbook_id=playbook_id, order=order, step=old_step, talk_track=old_talk
            ).update(step=step, talk_track=talk_track)


def _words():
    return {pid: _seeded_fields(SEEDED[pid]) | fields for pid, fields in IN_PRODUCT_WORDS.items()}


def in_product_words(apps, schema_editor):
    _rewrite(apps, {pid: _seeded_fields(SEEDED[pid]) for pid in IN_PRODUCT_WORDS}, IN_PRODUCT_WORDS)


def in_spec_words(apps, schema_editor):
    back = {
        pid: {k: v for k, v in _seeded_fields(SEEDED[pid]).items() if k in fields}
        for pid, fields in IN_PRODUCT_WORDS.items()
    }
    for pid, fields in IN_PRODUCT_WORDS.items():
        seeded_actions = _seeded_fields(SEEDED[pid])["actions"]
        back[pid]["actions"] = {o: seeded_actions[o] for o in fields.get("actions", {})}
    _rewrite(apps, _words(), back)


class Migration(migrations.Migration):
    # Renamed for what it does; an install that applied it under its old name keeps it applied.
    replaces = [("playbooks", "0008_i15_finish_seeded_prose_in_roles")]

    dependencies = [("playbooks", "0007_billing_and_churn_records")]

    operations = [migrations.RunPython(in_product_words, in_spec_words)]
