"""One error shape for the whole API: RFC 7807 application/problem+json.

Every problem says what went wrong, where (document index, field) and what to do.
"""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

PROBLEM_CONTENT_TYPE = "application/problem+json"

_TYPES = {
    400: "epcisException:ValidationException",
    401: "epcisException:SecurityException",
    403: "epcisException:SecurityException",
    404: "epcisException:NoSuchResourceException",
    405: "epcisException:ImplementationException",
    406: "epcisException:NotAcceptableException",
    409: "epcisException:ResourceAlreadyExistsException",
    413: "epcisException:CaptureLimitExceededException",
    415: "epcisException:UnsupportedMediaTypeException",
    422: "epcisException:ValidationException",
    429: "epcisException:ImplementationException",
    500: "epcisException:ImplementationException",
}

_TITLES = {
    401: "Not authenticated",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    415: "Unsupported media type",
    429: "Too many requests",
}

_HINTS = {
    401: "Send 'Authorization: Bearer <API key>' with a valid, unexpired, unrevoked key.",
    403: "Use a key of an organization that may do this, or ask an operator for the scope.",
    404: "Check the identifier; you can only see what your organization may read.",
    405: "See OPTIONS on this resource for the methods it allows.",
    415: "Send the body as application/json or application/ld+json.",
    429: "Slow down and retry after the time given in Retry-After.",
}


class ProblemError(exceptions.APIException):
    """An error with the full problem body (raised from services, rendered by the handler)."""

    def __init__(
        self,
        *,
        status_code: int,
        title: str,
        detail: str,
        errors: list[dict[str, Any]] | None = None,
        type_: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.status_code = status_code
        self.problem = problem_body(
            status_code=status_code, title=title, detail=detail, errors=errors, type_=type_, extra=extra
        )
        super().__init__(detail=detail)


def problem_body(
    *,
    status_code: int,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    type_: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": type_ or _TYPES.get(status_code, "about:blank"),
        "title": title,
        "status": status_code,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return body


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JsonResponse:
    response = JsonResponse(body, status=body["status"], content_type=PROBLEM_CONTENT_TYPE)
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def _flatten(detail: Any, path: str = "") -> list[dict[str, Any]]:
    if isinstance(detail, dict):
        out: list[dict[str, Any]] = []
        for key, value in detail.items():
            out.extend(_flatten(value, f"{path}/{key}" if key != "non_field_errors" else path))
        return out
    if isinstance(detail, list):
        out = []
        for item in detail:
            out.extend(_flatten(item, path))
        return out
    return [{"field": path or None, "detail": str(detail)}]


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ProblemError):
        response = Response(exc.problem, status=exc.status_code)
        response.content_type = PROBLEM_CONTENT_TYPE
        return response
    handled = exception_handler(exc, context)
    if handled is None:
        return None
    response = handled
    code = response.status_code
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        detail = "; ".join(f"{e['field'] or 'request'}: {e['detail']}" for e in errors[:5])
        body = problem_body(status_code=code, title="The request is not valid", detail=detail, errors=errors)
    else:
        detail = str(getattr(exc, "detail", exc))
        hint = _HINTS.get(code)
        body = problem_body(
            status_code=code,
            title=_TITLES.get(code, "Request failed"),
            detail=f"{detail} {hint}" if hint else detail,
        )
    response.data = body
    response.content_type = PROBLEM_CONTENT_TYPE
    return response
