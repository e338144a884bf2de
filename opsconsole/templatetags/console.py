"""Template helpers shared by the console pages: times, trends and numbers said in words too.

Colour and arrows are never the only signal: every helper that shows one also says it in words.
"""

from __future__ import annotations

from datetime import datetime

from django import template
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from customers.metrics.churn_model import probability_text
from customers.read_cache import html_per_recompute

register = template.Library()


@register.filter
def when(value: datetime | None) -> SafeString | str:
    """A relative time ("3 hours ago") with the exact local time as its tooltip and machine value."""
    if value is None:
        return "never"
    local = timezone.localtime(value)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        local.isoformat(),
        local.strftime("%Y-%m-%d %H:%M %Z"),
        naturaltime(value),
    )


@register.filter
def trend(delta: float | None) -> SafeString | str:
    """stickiness_delta (7d / 30d) as the number, an arrow and a word: up, down or steady."""
    if delta is None:
        return mark_safe('<span class="muted">no baseline</span>')
    if delta > 1:
        arrow, word, css = "↑", "up", "trend-up"
    elif delta < 1:
        arrow, word, css = "↓", "down", "trend-down"
    else:
        arrow, word, css = "→", "steady", "trend-flat"
    return format_html(
        '{} <span class="{}"><span aria-hidden="true">{}</span> {}</span>', f"{delta:.2f}", css, arrow, word
    )


@register.filter
def signal_name(name: str) -> str:
    """``engagement_decay`` -> ``Engagement decay``."""
    return name.replace("_", " ").capitalize()


@register.filter
def duration_days(days: float | None) -> SafeString | str:
    """A duration given in days, in the unit a person reads: "52 minutes", "2 hours", "3.0 days".

    The API keeps days (the documented unit); a page never shows "0.04 days"."""
    if days is None:
        return "∞"
    minutes = days * 24 * 60
    if minutes < 60:
        value, unit = max(0, round(minutes)), "minute"
    elif minutes < 24 * 60:
        value, unit = round(minutes / 60), "hour"
    else:
        return format_html('{}<span class="unit"> days</span>', f"{days:.1f}")
    return format_html('{}<span class="unit"> {}{}</span>', value, unit, "" if value == 1 else "s")


@register.filter
def churn_chance(probability: float | None) -> str:
    """ "chance of churn within 30 days: 23%" (the adopted churn model's words, customers/metrics/churn_model.py)."""
    if probability is None:
        return ""
    return probability_text(float(probability), horizon=30)


@register.filter
def share_shade(share: float | None) -> str:
    """A retention cell's background: the larger the share still active, the deeper the blue (the
    percentage is always written in the cell too). Light enough for dark text at any share."""
    if share is None:
        return "transparent"
    return f"rgba(37, 99, 235, {0.08 + 0.42 * max(0.0, min(1.0, float(share))):.2f})"


@register.filter
def percent(share: float | None) -> str:
    """0.4567 -> "46%"; None -> "—"."""
    return "—" if share is None else f"{float(share) * 100:.0f}%"


class PerRecomputeNode(template.Node):
    def __init__(self, nodelist: template.NodeList, name: str, vary: list[template.base.FilterExpression]) -> None:
        self.nodelist, self.name, self.vary = nodelist, name, vary

    def render(self, context: template.Context) -> str:
        key = ":".join([self.name, *(str(value.resolve(context)) for value in self.vary)])

        def render_part(token: str) -> str:
            with context.push(csrf_token=token):
                return self.nodelist.render(context)

        return html_per_recompute(key, render_part, csrf_token=str(context.get("csrf_token", "")))


@register.tag
def per_recompute(parser: template.base.Parser, token: template.base.Token) -> PerRecomputeNode:
    """``{% per_recompute "name" value ... %}…{% end_per_recompute %}``: the part rendered once per
    recompute, founder action, minute and values given (customers/read_cache.py), its forms'
    CSRF token put in per request. Everything the part shows must change only with those: a
    figure another write changes without moving the version (the north star, an event just
    received) stays outside it."""
    bits = token.split_contents()
    if len(bits) < 2 or bits[1][0] not in "\"'":
        raise template.TemplateSyntaxError(f"'{bits[0]}' takes the part's name in quotes, then what it varies on.")
    nodelist = parser.parse(("end_per_recompute",))
    parser.delete_first_token()
    return PerRecomputeNode(nodelist, bits[1][1:-1], [parser.compile_filter(bit) for bit in bits[2:]])
