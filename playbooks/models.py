"""Models of the playbooks app arrive with its issue."""
