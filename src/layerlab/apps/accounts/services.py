"""Writes on accounts: create users (or claim one made by `layerlab train`), issue API tokens."""

from __future__ import annotations

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from layerlab.core.errors import LayerlabError


class AccountError(LayerlabError):
    """A user cannot be created or found."""

    kind = "account_error"


@transaction.atomic
def user_create(*, username: str, password: str, superuser: bool = False, email: str = ""):
    """Create a user after Django's password validators accept the password.

    Args:
        username: the login name (must be new).
        password: checked by AUTH_PASSWORD_VALIDATORS.
        superuser: also staff and superuser (Django admin, every project).
    """
    User = get_user_model()
    if not username or User.objects.filter(username=username).exists():
        raise AccountError(f"user '{username}' already exists" if username else "a user name is required")
    candidate = User(username=username, email=email)
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        raise AccountError(f"password refused: {' '.join(exc.messages)}", where=username) from None
    if superuser:
        return User.objects.create_superuser(username=username, email=email, password=password)
    return User.objects.create_user(username=username, email=email, password=password)


@transaction.atomic
def user_get_or_create_unclaimed(*, username: str):
    """The user named ``username``, created without a usable password when missing.

    ``layerlab train`` records runs for the OS login name; such a user cannot sign in until
    someone claims it with ``layerlab createuser NAME`` (``user_claim``).
    """
    User = get_user_model()
    if not username:
        raise AccountError("a user name is required", hint="pass --user NAME or set LAYERLAB_USER")
    user, created = User.objects.get_or_create(username=username)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


@transaction.atomic
def user_claim(*, username: str, password: str, superuser: bool = False, email: str = ""):
    """Give a user created by ``layerlab train`` (no usable password) a password, so it can sign in.

    Args:
        username: an existing user without a usable password.
        password: checked by AUTH_PASSWORD_VALIDATORS.
        superuser: also make it staff and superuser.
    """
    User = get_user_model()
    user = User.objects.select_for_update().filter(username=username).first()
    if user is None or user.has_usable_password():
        raise AccountError(
            f"user '{username}' cannot be claimed", hint="only users made by `layerlab train` can"
        )
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise AccountError(f"password refused: {' '.join(exc.messages)}", where=username) from None
    user.set_password(password)
    if email:
        user.email = email
    if superuser:
        user.is_staff = user.is_superuser = True
    user.save()
    return user


def user_is_unclaimed(*, username: str) -> bool:
    """True for an existing user without a usable password (made by ``layerlab train``)."""
    user = get_user_model().objects.filter(username=username).first()
    return user is not None and not user.has_usable_password()


def user_token(*, username: str) -> str:
    """The API token of a user (created on first use)."""
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is None:
        raise AccountError(
            f"user '{username}' does not exist", hint="create it with: layerlab createuser NAME"
        )
    # Through the app registry: services stay free of rest_framework imports.
    token_model = apps.get_model("authtoken", "Token")
    token, _ = token_model.objects.get_or_create(user=user)
    return token.key
