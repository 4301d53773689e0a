"""API token authentication with one plain query per request (``Authorization: Token <key>``).

DRF's ``TokenAuthentication`` builds ``Token.objects.select_related("user").get(key=...)`` for every
request; compiling that query was about a tenth of a 10-point metric batch. The same token-and-user
join written once as SQL, read through ``User.objects.raw`` (which applies the columns' converters),
gives the same user for the same rules: an unknown key or an inactive user is a 401.
"""

from __future__ import annotations

from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework import authentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed


@cache
def _token_user_sql(vendor: str) -> str:
    """``SELECT <every user column> FROM users JOIN tokens WHERE key = %s`` (per database vendor)."""
    user_model = get_user_model()
    quote = connection.ops.quote_name
    columns = ", ".join(f"u.{quote(field.column)}" for field in user_model._meta.concrete_fields)
    user_fk = Token._meta.get_field("user").column
    return (
        f"SELECT {columns} FROM {quote(user_model._meta.db_table)} u "
        f"INNER JOIN {quote(Token._meta.db_table)} t ON t.{quote(user_fk)} = u.{quote(user_model._meta.pk.column)} "
        f"WHERE t.{quote(Token._meta.pk.column)} = %s"
    )


def token_user(key: str):
    """The user whose API token is ``key`` (every field loaded), or None."""
    sql = _token_user_sql(connection.vendor)
    return next(iter(get_user_model().objects.raw(sql, [key])), None)


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token scheme and messages, with the lookup of ``token_user``.

    ``request.auth`` is the key itself (nothing in the lab reads the Token row; its ``created`` is
    not needed to authenticate).
    """

    def authenticate_credentials(self, key):
        user = token_user(key)
        if user is None:
            raise AuthenticationFailed("Invalid token.")
        if not user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        return (user, key)
