"""Accounts API: exchange username/password for a token, and who am I."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView


class TokenView(ObtainAuthToken):
    """POST username and password, get ``{"token": ...}``."""

    permission_classes = [AllowAny]
    throttle_classes = [AnonRateThrottle]
    # ObtainAuthToken pins DRF's plain parsers; the lab's JSON parser refuses pathological nesting.
    parser_classes = api_settings.DEFAULT_PARSER_CLASSES


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    is_superuser = serializers.BooleanField()
    groups = serializers.SerializerMethodField()

    def get_groups(self, user) -> list[str]:
        return sorted(group.name for group in user.groups.all())


class MeView(APIView):
    """The authenticated user and their groups."""

    serializer_class = MeSerializer

    def get(self, request):
        return Response(MeSerializer(request.user).data)
