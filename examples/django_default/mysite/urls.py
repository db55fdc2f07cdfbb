"""One sync view at `/` (what most projects' views are), and the same view written async at
`/async` (under ASGI it runs in the event loop: no thread hop for the view)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path


def index(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


async def index_async(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [path("", index), path("async", index_async)]
