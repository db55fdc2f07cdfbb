"""A Django project in one module, configured in code (no database), with Sentry's Django
integration and OpenTelemetry's Django instrumentation. Nothing leaves the machine (telemetry.py:
a transport and an exporter that drop).

Every setting is read from the environment at import, so that a variant serves the same project
configured another way (`--variant NAME:KEY=VALUE`): SENTRY, TRACES, SENTRY_INTEGRATIONS, OTEL,
OTEL_SAMPLER_RATIO, OTEL_PROCESSOR (telemetry.py says what each does).

`application` is the ASGI handler, `wsgi` the WSGI one. Django's MIDDLEWARE are the layers -m
toggles, OpenTelemetry's among them: DjangoInstrumentor puts its own middleware first in
MIDDLEWARE. Sentry is not a layer: it patches Django's handler from outside, so only a variant
takes it away (SENTRY=0).

    harness layers --app examples/instrumentation/django_app.py:application
    harness compare --app examples/instrumentation/django_app.py:application -m none,all \\
        --variant off: --variant on:TRACES=1.0
"""

from __future__ import annotations

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from telemetry import HEALTHZ_BODY, JSON_TYPE, init_sentry, tracer_provider

# Before Django is set up, as Sentry's docs say (in settings.py): it patches Django's classes.
init_sentry()

if not settings.configured:  # once per process: the harness may import this module again
    settings.configure(
        DEBUG=False,
        SECRET_KEY="django-insecure-mwbench-example-not-a-secret",
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],  # the harness's requests name 127.0.0.1
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
        ],
        # startproject's list, unchanged.
        MIDDLEWARE=[
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        DATABASES={},  # nothing here queries one
        USE_TZ=True,
    )
    django.setup(set_prefix=False)
    provider = tracer_provider()
    if provider is not None:
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        # Before the handlers are built: it adds its middleware to settings.MIDDLEWARE.
        DjangoInstrumentor().instrument(tracer_provider=provider)


def healthz(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(HEALTHZ_BODY, content_type=JSON_TYPE)
    # Set here: CommonMiddleware sets it too, but -m may take CommonMiddleware away.
    response["Content-Length"] = str(len(HEALTHZ_BODY))
    return response


def read_item(request: HttpRequest, item_id: int) -> JsonResponse:
    q = request.GET.get("q")
    return JsonResponse({"id": item_id, "name": f"item {item_id}", "price": 9.5, "q": q})


# `/` too: the path harness requests on an --app by default.
urlpatterns = [
    path("", healthz),
    path("healthz", healthz),
    path("items/<int:item_id>", read_item),
]

# Built after the URLconf above exists (the handler resolves ROOT_URLCONF per request).
from django.core.asgi import get_asgi_application  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_asgi_application()
wsgi = get_wsgi_application()
