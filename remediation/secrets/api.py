"""v2 API of named secrets (admin scope): write-only. Responses carry names, times, who
changed them and the key id, never a value."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from medic.models import actor_label
from medic.pagination import NumberedPage
from remediation.secrets import services
from remediation.secrets.models import Secret

_NAME = OpenApiParameter("name", str, OpenApiParameter.PATH, description="Secret name.")


class SecretOut(serializers.ModelSerializer):
    class Meta:
        model = Secret
        fields = ["name", "key_id", "created_at", "updated_at", "created_by", "updated_by"]


class SecretValueIn(serializers.Serializer):
    value = serializers.CharField(
        write_only=True,
        trim_whitespace=False,
        min_length=services.MIN_VALUE_LENGTH,
        max_length=services.MAX_VALUE_LENGTH,
        help_text="The plaintext (4 to 16,384 characters). Stored encrypted; never returned.",
    )


class SecretIn(SecretValueIn):
    name = serializers.RegexField(
        services.NAME_RE,
        max_length=128,
        help_text="Used as ${SECRET.<name>} in playbooks: A-Z a-z 0-9 _, not starting with a "
        "digit.",
    )


def _saved(secret: Secret) -> Response:
    created = secret.created_at == secret.updated_at
    return Response(
        SecretOut(secret).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
    )


class SecretList(APIView):
    required_scope = "admin"

    @extend_schema(operation_id="secrets_list", responses=SecretOut(many=True))
    def get(self, request):
        paginator = NumberedPage()
        page = paginator.paginate_queryset(services.secret_list(), request, view=self)
        return paginator.get_paginated_response(SecretOut(page, many=True).data)

    @extend_schema(
        operation_id="secrets_set",
        request=SecretIn,
        responses={201: SecretOut, 200: SecretOut},
        description="Creates the secret (201) or replaces its value (200). Audited by name.",
    )
    def post(self, request):
        data = SecretIn(data=request.data)
        data.is_valid(raise_exception=True)
        return _saved(services.secret_set(actor=actor_label(request.auth), **data.validated_data))


class SecretDetail(APIView):
    required_scope = "admin"

    @extend_schema(operation_id="secrets_get", parameters=[_NAME], responses=SecretOut)
    def get(self, request, name: str):
        return Response(SecretOut(services.secret_get(name)).data)

    @extend_schema(
        operation_id="secrets_put",
        parameters=[_NAME],
        request=SecretValueIn,
        responses={201: SecretOut, 200: SecretOut},
        description="Creates the secret (201) or replaces its value (200). Audited by name.",
    )
    def put(self, request, name: str):
        data = SecretValueIn(data=request.data)
        data.is_valid(raise_exception=True)
        return _saved(
            services.secret_set(
                name=name, value=data.validated_data["value"], actor=actor_label(request.auth)
            )
        )

    @extend_schema(operation_id="secrets_delete", parameters=[_NAME], responses={204: None})
    def delete(self, request, name: str):
        services.secret_delete(name=name, actor=actor_label(request.auth))
        return Response(status=status.HTTP_204_NO_CONTENT)
