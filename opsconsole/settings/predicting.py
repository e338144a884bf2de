"""Predicting honestly: the Stripe webhook, the churns needed before trusting a figure, and how lists of customers are ordered."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from opsconsole.settings.environment import env

# --- Predicting honestly ---
# The signing secret of the Stripe webhook endpoint (whsec_...). Unset: the webhook answers 400
# and Stripe retries for days, so no billing event is lost while it is being configured.
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# Signatures older than this many seconds are refused (Stripe's own default): a replay of an old
# capture cannot pass verification.
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env.int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", default=300)
# Recorded churns needed before a learned model is fitted or any figure is called trustworthy
# (the source documents: "a heuristic until validated with 10-20 real churn events").
MIN_CHURNS_FOR_TRUST = env.int("MIN_CHURNS_FOR_TRUST", default=10)
if MIN_CHURNS_FOR_TRUST < 1:
    raise ImproperlyConfigured("MIN_CHURNS_FOR_TRUST must be 1 or more.")
# Which score orders every list of customers at risk: "spec" (the heuristic, always), "learned" (the
# churn model adopted on the Validation page, while one is), "auto" ("learned" once a finished backtest
# shows the model beating the heuristic out of sample with MIN_CHURNS_FOR_TRUST churns; it adopts it).
RISK_RANKING_CHOICES = ("spec", "learned", "auto")
RISK_RANKING = env.str("RISK_RANKING", default="auto")
if RISK_RANKING not in RISK_RANKING_CHOICES:
    raise ImproperlyConfigured(f"RISK_RANKING must be one of {', '.join(RISK_RANKING_CHOICES)} (got {RISK_RANKING!r}).")
# Revenue (customers/revenue.py). The currency of an account's `mrr` trait sent without a `currency` trait.
REVENUE_DEFAULT_CURRENCY = env.str("REVENUE_DEFAULT_CURRENCY", default="USD").strip().upper()
if len(REVENUE_DEFAULT_CURRENCY) != 3 or not REVENUE_DEFAULT_CURRENCY.isalpha():
    raise ImproperlyConfigured(
        f"REVENUE_DEFAULT_CURRENCY must be an ISO 4217 code such as USD (got {REVENUE_DEFAULT_CURRENCY!r})."
    )
# How the call list (Today, the at-risk API and CSV) is ordered: `risk` (level, then score), `expected_loss`
# (chance of churn x MRR, most at stake first) or `auto`: expected loss once most customers at risk have an MRR.
CALL_LIST_ORDER_CHOICES = ("auto", "risk", "expected_loss")
CALL_LIST_ORDER = env.str("CALL_LIST_ORDER", default="auto")
if CALL_LIST_ORDER not in CALL_LIST_ORDER_CHOICES:
    raise ImproperlyConfigured(
        f"CALL_LIST_ORDER must be one of {', '.join(CALL_LIST_ORDER_CHOICES)} (got {CALL_LIST_ORDER!r})."
    )
if STRIPE_WEBHOOK_TOLERANCE_SECONDS < 1:
    raise ImproperlyConfigured("STRIPE_WEBHOOK_TOLERANCE_SECONDS must be 1 or more.")
