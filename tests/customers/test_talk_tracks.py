"""Talk tracks as said to a customer: {first_name}, {account} and {core_action} filled from its data,
and no raw {placeholder} on any page."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.db import connection

from customers.metrics.recompute import metrics_recompute
from customers.metrics.texts import TalkTrackFacts, talk_track_facts, talk_track_render
from customers.models import Tenant
from tests.customers.conftest import NOW, Ev, days_ago

TRACK = "Hi {first_name}, how is {account} finding {core_action}? Here is the guide: {link}. {Your name}"


def test_a_placeholder_without_data_reads_naturally():
    assert talk_track_render(TRACK, TalkTrackFacts()) == (
        "Hi there, how is your team finding the product? Here is the guide: [link]. [Your name]"
    )


def test_placeholders_are_filled_from_the_customers_facts():
    facts = TalkTrackFacts(first_name="Dana", account="Acme", core_action="Invoice sent")
    assert talk_track_render("Hi {first name}, {account} / {core_action}", facts) == "Hi Dana, Acme / Invoice sent"


def test_a_playbooks_own_page_shows_every_placeholder_as_a_gap():
    assert talk_track_render("Hi {first_name}", None) == "Hi [first_name]"


def _event_with_metadata(tenant_id: str, user_id: str, metadata: dict[str, Any]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ops_events (event_id, tenant_id, user_id, session_id, event_type, occurred_at, received_at,"
            " metadata, friction_signal, is_real, exclusion_reason)"
            " VALUES (%s, %s, %s, 's0', 'LOGIN', %s, %s, %s::jsonb, '', true, '')",
            [str(uuid.uuid4()), tenant_id, user_id, days_ago(1), NOW, json.dumps(metadata)],
        )


@pytest.mark.django_db(transaction=True)
def test_the_champion_users_name_or_email_gives_the_first_name(metrics_db):
    metrics_db([Ev("acme", "INCIDENT_VIEWED", days_ago(d), user_id="u_dana") for d in range(5)])
    metrics_db([Ev("globex", "INCIDENT_VIEWED", days_ago(d), user_id="u_sam") for d in range(5)])
    _event_with_metadata("acme", "u_dana", {"name": "Dana Scully", "email": "dana@acme.example"})
    _event_with_metadata("globex", "u_sam", {"email": "sam.jones@globex.example"})
    Tenant.objects.filter(tenant_id="acme").update(name="Acme Corp")
    metrics_recompute()
    # The product sent incidents viewed, never a replay: only the type it sent names its core action.
    acme = talk_track_facts(tenant_id="acme")
    assert acme == TalkTrackFacts(first_name="Dana", account="Acme Corp", core_action="Incident viewed")
    assert talk_track_facts(tenant_id="globex").first_name == "Sam"
    assert talk_track_facts(tenant_id="nobody") == TalkTrackFacts(core_action="Incident viewed")


@pytest.mark.django_db(transaction=True)
def test_a_company_word_or_a_login_id_is_never_taken_for_a_first_name(metrics_db):
    for tenant, user, metadata in [
        ("aperture", "aperture-u0", {"email": "aperture-u0@aperture.example"}),  # a login id, as the demo has
        ("initech", "u_i", {"email": "initech@gmail.com"}),  # the company's own word
        ("hooli", "u_h", {"name": "Hooli Platform Team"}),  # an account's name as a user's name
        ("umbrella", "u_u", {"email": "support@umbrella.example"}),  # a team mailbox
    ]:
        metrics_db([Ev(tenant, "INCIDENT_VIEWED", days_ago(d), user_id=user) for d in range(3)])
        _event_with_metadata(tenant, user, metadata)
    Tenant.objects.filter(tenant_id="hooli").update(name="Hooli")
    metrics_recompute()
    for tenant in ("aperture", "initech", "hooli", "umbrella"):
        facts = talk_track_facts(tenant_id=tenant)
        assert facts.first_name == "", tenant
        assert talk_track_render("Hi {first_name},", facts) == "Hi there,"


@pytest.mark.django_db(transaction=True)
def test_the_customer_page_says_the_matched_playbooks_talk_track_to_the_customer(metrics_db, settings, staff_client):
    settings.METRICS_POST_RECOMPUTE_HOOKS = ["playbooks.evaluation.playbooks_evaluate"]
    # 4 repeated policy blocks this week, one per session: the seeded "Repeatedly blocked" playbook (policy_friction) matches.
    events = [Ev("acme", "POLICY_BLOCK_REPEAT", days_ago(d), session_id=f"p{d}", user_id="u_dana") for d in range(4)]
    events += [Ev("acme", "INCIDENT_VIEWED", days_ago(d), user_id="u_dana") for d in range(28)]
    metrics_db(events)
    _event_with_metadata("acme", "u_dana", {"name": "Dana Scully"})
    metrics_recompute()
    html = staff_client.get("/customers/acme/").content.decode()
    panel = html[html.index('data-testid="playbook-panel"') : html.index('data-testid="intervention-history"')]
    assert 'data-testid="matched-playbook-policy_friction"' in panel
    assert "Hi Dana," in panel
    assert "{" not in panel and "}" not in panel
