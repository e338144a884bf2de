"""What core announces to the apps above it, which connect in their ``AppConfig.ready()``."""

from __future__ import annotations

from django.dispatch import Signal

# Sent (no arguments besides the sender) when a founder marks a key as automation or unmarks it:
# events sent with it count as real users or stop counting, so the events app reclassifies history.
api_key_automation_changed = Signal()
