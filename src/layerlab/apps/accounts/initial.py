"""The first administrator: so that `make run` on an empty lab gives a way in, and no fixed password exists."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

INITIAL_ADMIN = "admin"
PASSWORD_FILE = "initial-admin-password"


@transaction.atomic
def initial_admin_ensure(*, home: Path) -> tuple[str, Path] | None:
    """Create superuser ``admin`` with a random password when the lab has no user at all.

    The password is written to ``home/initial-admin-password`` (mode 0600) and returned once, like
    Jenkins' first-start secret; it is never in the repository or the settings.

    Args:
        home: LAYERLAB_HOME, where the password file is written.

    Returns:
        ``(password, file)`` when the admin was created now, else None.
    """
    User = get_user_model()
    if User.objects.exists():
        return None
    password = secrets.token_urlsafe(12)
    User.objects.create_superuser(username=INITIAL_ADMIN, email="", password=password)
    path = Path(home) / PASSWORD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(password + "\n")
    return password, path
