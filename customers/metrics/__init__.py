"""The customer metrics engine, one topic per module (import from the topic, never from here).

fold.py (events -> rollups), daily.py (the one daily engagement/friction formula),
scope.py (which tenants a run rewrites), vocabulary.py (the registry's roles and labels),
signals.py (rollups -> TenantSignals), risk.py (components, weights, tenant_assess),
interventions.py (the intervention rules), texts.py (every founder-facing text),
write.py (ops_tenant_metrics), recompute.py (the entry points), fanout.py (by tenant shard).
"""
