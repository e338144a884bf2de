"""Bad input to a founder action of the playbooks app, said field by field.

Apart from services.py so that every service module (services.py, churns.py) can raise it
without importing the others.
"""

from __future__ import annotations


class PlaybookInputError(ValueError):
    """Bad input to a service: ``errors`` maps field -> message (the API answers 400 with it)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def text_problems(errors: dict[str, str], **texts: tuple[str, int]) -> None:
    """Adds an error for each text longer than its limit (``name=(text, limit)``)."""
    for name, (text, limit) in texts.items():
        if len(text) > limit:
            errors[name] = f"At most {limit:,} characters ({len(text):,} given)."
