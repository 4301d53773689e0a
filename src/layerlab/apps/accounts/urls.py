"""URLs of the accounts API."""

from django.urls import path

from layerlab.apps.accounts.api import MeView, TokenView

urlpatterns = [
    path("auth/token/", TokenView.as_view(), name="auth-token"),
    path("auth/me/", MeView.as_view(), name="auth-me"),
]
