"""How MLflow's client signs in: ``MLFLOW_TRACKING_TOKEN`` (a lab API token, sent as ``Bearer``) or basic auth.

Basic auth checks the password through ``django.contrib.auth``, so every failure is counted by the
failed sign-in throttle (``accounts.throttle``) like any other login door, and a user name or address
over its limit is answered 429 before the password is checked.
"""

from __future__ import annotations

import base64
import binascii

from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.authentication import BasicAuthentication, TokenAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, Throttled

from layerlab.apps.accounts.throttle import client_address, login_failures_clear, login_retry_after

USER_COLUMNS = ("id", "username", "is_active", "is_superuser", "is_staff", "first_name", "last_name", "email")


class BearerTokenAuthentication(TokenAuthentication):
    """``Authorization: Bearer <token>``: the header MLflow's client sends for ``MLFLOW_TRACKING_TOKEN``.

    The same tokens as ``Authorization: Token``, looked up with one plain query: a training loop sends
    a request per step, and building the ORM's token-and-user query was a large part of each.
    """

    keyword = "Bearer"

    def authenticate_credentials(self, key):
        User = get_user_model()
        token_table = self.get_model()._meta.db_table
        quote = connection.ops.quote_name
        # The columns a request reads (the others load on first use; datetimes cost a conversion each).
        columns = ", ".join(f"u.{quote(c)}" for c in USER_COLUMNS)
        sql = (
            f"SELECT {columns} FROM {quote(User._meta.db_table)} u JOIN {quote(token_table)} t "
            f"ON t.{quote('user_id')} = u.{quote('id')} WHERE t.{quote('key')} = %s"
        )
        user = next(iter(User.objects.raw(sql, [key])), None)
        if user is None:
            raise AuthenticationFailed("Invalid token.")
        if not user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        return (user, key)


class ThrottledBasicAuthentication(BasicAuthentication):
    """``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``, throttled like the sign-in forms."""

    www_authenticate_realm = "layerlab"

    def authenticate(self, request):
        auth = get_authorization_header(request).split()
        if len(auth) == 2 and auth[0].lower() == b"basic":
            try:
                username = base64.b64decode(auth[1]).decode("utf-8", "replace").partition(":")[0]
            except (binascii.Error, ValueError):
                username = ""
            wait = login_retry_after(username=username, address=client_address(request))
            if wait:
                raise Throttled(wait=wait, detail="too many failed sign-ins for this user name or address")
        result = super().authenticate(request)
        if result is not None:
            login_failures_clear(username=result[0].get_username())
        return result
