"""v2 API for API keys (admin scope)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from medic.apikeys import (
    MAX_EXPIRES_IN_DAYS,
    MAX_RATE_LIMIT,
    VALID_SCOPES,
    api_key_create,
    api_key_revoke,
    api_key_rotate,
    api_key_update,
)
from medic.models import ApiKey, actor_label
from medic.pagination import NumberedPage


class ApiKeySerializer(serializers.ModelSerializer):
    prefix = serializers.SerializerMethodField()
    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "scopes",
            "rate_limits",
            "active",
            "created_at",
            "created_by",
            "expires_at",
            "revoked_at",
            "rotated_at",
            "last_used_at",
        ]

    def get_prefix(self, obj: ApiKey) -> str:
        return f"mdk_{obj.prefix}"


class ApiKeyIssuedSerializer(ApiKeySerializer):
    key = serializers.CharField(help_text="The secret. Shown once; store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class ApiKeyIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(VALID_SCOPES)), allow_empty=False
    )
    expires_in_days = serializers.FloatField(
        required=False, min_value=0.001, max_value=MAX_EXPIRES_IN_DAYS
    )
    rate_limits = serializers.DictField(
        child=serializers.IntegerField(min_value=0, max_value=MAX_RATE_LIMIT),
        required=False,
        help_text="Requests per minute by class (heartbeat, management); 0 means no limit.",
    )


class ApiKeyUpdate(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    rate_limits = serializers.DictField(
        child=serializers.IntegerField(min_value=0, max_value=MAX_RATE_LIMIT), required=False
    )


def _issued(issued) -> dict:
    data = ApiKeySerializer(issued.key).data
    data["key"] = issued.secret
    return data


class ApiKeyListCreate(APIView):
    required_scope = "admin"

    @extend_schema(operation_id="api_keys_list", responses=ApiKeySerializer(many=True))
    def get(self, request):
        paginator = NumberedPage()
        page = paginator.paginate_queryset(ApiKey.objects.all(), request, view=self)
        return paginator.get_paginated_response(ApiKeySerializer(page, many=True).data)

    @extend_schema(
        operation_id="api_keys_create", request=ApiKeyIn, responses={201: ApiKeyIssuedSerializer}
    )
    def post(self, request):
        data = ApiKeyIn(data=request.data)
        data.is_valid(raise_exception=True)
        issued = api_key_create(actor=actor_label(request.auth), **data.validated_data)
        return Response(_issued(issued), status=status.HTTP_201_CREATED)


class ApiKeyRotate(APIView):
    required_scope = "admin"

    @extend_schema(operation_id="api_keys_rotate", request=None, responses=ApiKeyIssuedSerializer)
    def post(self, request, key_id: int):
        return Response(_issued(api_key_rotate(key_id=key_id, actor=actor_label(request.auth))))


class ApiKeyRevoke(APIView):
    required_scope = "admin"

    @extend_schema(operation_id="api_keys_update", request=ApiKeyUpdate, responses=ApiKeySerializer)
    def patch(self, request, key_id: int):
        data = ApiKeyUpdate(data=request.data)
        data.is_valid(raise_exception=True)
        key = api_key_update(key_id=key_id, actor=actor_label(request.auth), **data.validated_data)
        return Response(ApiKeySerializer(key).data)

    @extend_schema(operation_id="api_keys_revoke", responses={204: None})
    def delete(self, request, key_id: int):
        api_key_revoke(key_id=key_id, actor=actor_label(request.auth))
        return Response(status=status.HTTP_204_NO_CONTENT)
