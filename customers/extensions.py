"""What other apps plug into the customers app, registered from their ``AppConfig.ready()``.

Dependencies flow one way (events <- customers <- playbooks): customers never imports
playbooks. The playbooks app registers here what the customers answers and pages show
of it, like the Prometheus providers and check-in sections of events/::

    # playbooks/apps.py
    from customers.extensions import customer_panel_register, tenant_playbooks_provider_register
    tenant_playbooks_provider_register(tenant_matched_playbooks)
    tenant_follow_ups_provider_register(at_risk_follow_ups)
    customer_panel_register(
        "playbooks",
        "playbooks/partials/customer_panel.html",
        customer_playbook_panel,
        actions_template="playbooks/partials/customer_actions.html",
    )
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

# tenant ids -> {tenant id: [matched playbook, shaped as customers.apis.MatchedPlaybookSerializer]}
TenantPlaybooksProvider = Callable[..., dict[str, list[dict[str, Any]]]]
_playbooks_provider: list[TenantPlaybooksProvider] = []


@dataclass(frozen=True)
class CustomerPanel:
    """A section of the Customer page another app renders: its template, and its context as ``panel``.

    ``actions_template`` (optional) renders what the founder does about the customer (the follow-up
    and its forms): the page shows it right under the summary, so it is on the first screen, and
    ``template`` (the longer record) further down. Both get the same ``panel``, computed once."""

    name: str
    template: str
    context: Callable[[str], Any]
    actions_template: str = ""


_panels: dict[str, CustomerPanel] = {}

# (rows, matched, today) -> {tenant id: the at-risk API's ``follow_up`` object}: what the founder
# did about each at-risk customer and what is next (the playbooks app owns interventions).
TenantFollowUpsProvider = Callable[..., dict[str, dict[str, Any]]]
_follow_ups_provider: list[TenantFollowUpsProvider] = []


def tenant_playbooks_provider_register(provider: TenantPlaybooksProvider) -> None:
    """Set the provider of the playbooks each tenant matched (called as ``provider(tenant_ids=[...])``)."""
    _playbooks_provider[:] = [provider]


def tenant_playbooks(*, tenant_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The playbooks each tenant matched at the last recompute; an empty list for every tenant without a provider."""
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in tenant_ids}
    for provider in _playbooks_provider:
        out.update(provider(tenant_ids=tenant_ids))
    return out


# limit -> [expansion candidate: tenant_id, name, since, playbooks (id, name, why), first_step]
ExpansionCandidatesProvider = Callable[..., list[dict[str, Any]]]
_expansion_provider: list[ExpansionCandidatesProvider] = []


def expansion_candidates_provider_register(provider: ExpansionCandidatesProvider) -> None:
    """Set the provider of the expansion candidates (called as ``provider(limit=N)``)."""
    _expansion_provider[:] = [provider]


def expansion_candidates(*, limit: int) -> list[dict[str, Any]]:
    """Customers whose use grew strongly (matched by an expansion playbook); none without a provider."""
    return [c for provider in _expansion_provider for c in provider(limit=limit)]


def tenant_follow_ups_provider_register(provider: TenantFollowUpsProvider) -> None:
    """Set the provider of each at-risk customer's follow-up (``provider(rows=, matched=, today=)``)."""
    _follow_ups_provider[:] = [provider]


def tenant_follow_ups(*, rows: list[Any], matched: dict[str, list[dict[str, Any]]], today: date) -> dict[str, Any]:
    """tenant id -> its follow-up object; None for every row while no app provides follow-ups."""
    out: dict[str, Any] = {row.tenant_id: None for row in rows}
    for provider in _follow_ups_provider:
        out.update(provider(rows=rows, matched=matched, today=today))
    return out


def customer_panel_register(
    name: str, template: str, context: Callable[[str], Any], *, actions_template: str = ""
) -> None:
    """Add (or replace, by name) a section of the Customer page: ``context(tenant_id)`` is its ``panel``."""
    _panels[name] = CustomerPanel(name=name, template=template, context=context, actions_template=actions_template)


def customer_panels(*, tenant_id: str) -> list[dict[str, Any]]:
    """The registered sections for one customer, in registration order:
    [{"template", "actions_template", "panel"}] (``actions_template`` empty when the section has none)."""
    return [
        {"template": p.template, "actions_template": p.actions_template, "panel": p.context(tenant_id)}
        for p in _panels.values()
    ]
