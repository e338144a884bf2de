"""The models and the migrations say the same: a model change without its migration fails here,
not on a founder's first `migrate` after an upgrade."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_no_model_change_lacks_its_migration():
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit as exit_:
        pytest.fail(
            f"makemigrations --check exited {exit_.code}: a model changed without a migration:\n{out.getvalue()}"
        )
