"""A test-only app whose two migrations are an upgrade of ops_events: a new column, then an
index built concurrently. Installed only by tests/upgrade_settings.py, so the project's own
migration graph never holds them (tests/reliability/test_upgrade.py)."""
