"""Sign in and sign out (Django's session views with the dashboard's templates)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import reverse_lazy


class SignInView(auth_views.LoginView):
    template_name = "web/login.html"
    redirect_authenticated_user = True
    next_page = reverse_lazy("web:runs")


class SignOutView(auth_views.LogoutView):
    """POST only (Django 5): a sign-out link cannot be triggered by another site."""

    next_page = reverse_lazy("web:login")
