"""Models of the infra app arrive with its issue."""
