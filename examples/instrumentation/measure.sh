#!/bin/sh
# The tables of docs/instrumentation.md: what Sentry, OpenTelemetry and Prometheus cost per
# request on the example apps, paired round by round with intervals.
#
#   examples/instrumentation/measure.sh [OUT_DIR] [extra compare options...]
#   examples/instrumentation/measure.sh _output/instr --measure cpu,instructions -r 2
#
# Five compares. What a run leaves out is set in the harness's own environment, so that the app
# is described (its layers for -m) as every server of the run serves it; the variants then change
# only what they measure, each against the run's first variant:
#   sentry          FastAPI, no layer: Sentry off, init only, traces_sample_rate 0 / 0.1 / 1.0,
#                   integrations=[] and no integrations
#   otel-prometheus FastAPI, OpenTelemetry's and Prometheus's middlewares each alone against none
#                   (they are layers), with OpenTelemetry's default, exclude_spans, a 1% sampler
#   all             FastAPI with everything (the app as written) and without its layers, Sentry's
#                   tracing unset, at 0 and at 1.0
#   django-sentry   Django over ASGI, startproject's middleware: Sentry as for FastAPI
#   django-otel     Django over ASGI: OpenTelemetry's Django middleware alone against none
set -eu
out=${1:-_output/instrumentation}
[ $# -gt 0 ] && shift
fastapi=examples/instrumentation/fastapi_app.py:app
django=examples/instrumentation/django_app.py:application
common="--path /items/3 --no-baseline -c 64 --duration 2s --warmup 1s -r 3 --measure cpu"

# shellcheck disable=SC2086
OTEL=0 PROMETHEUS=0 harness compare --app $fastapi -m none $common \
    --variant off:SENTRY=0 --variant init: \
    --variant traces-0:TRACES=0 --variant traces-0.1:TRACES=0.1 --variant traces-1:TRACES=1.0 \
    --variant integrations-empty:SENTRY_INTEGRATIONS=empty \
    --variant integrations-none:SENTRY_INTEGRATIONS=none \
    -d "$out/sentry" "$@"

# shellcheck disable=SC2086
SENTRY=0 harness compare --app $fastapi \
    -m none,OpenTelemetryMiddleware,PrometheusInstrumentatorMiddleware $common \
    --variant default: --variant exclude-spans:OTEL_EXCLUDE_SPANS=receive,send \
    --variant sampler-1pct:OTEL_SAMPLER_RATIO=0.01 \
    -d "$out/otel-prometheus" "$@"

# shellcheck disable=SC2086
harness compare --app $fastapi -m none,all $common \
    --variant unset: --variant traces-0:TRACES=0 --variant traces-1:TRACES=1.0 \
    -d "$out/all" "$@"

# shellcheck disable=SC2086
OTEL=0 harness compare --app $django -m all $common \
    --variant off:SENTRY=0 --variant init: --variant traces-0:TRACES=0 \
    --variant traces-1:TRACES=1.0 --variant integrations-none:SENTRY_INTEGRATIONS=none \
    -d "$out/django-sentry" "$@"

# shellcheck disable=SC2086
SENTRY=0 harness compare --app $django -m none,_DjangoMiddleware $common \
    --variant default: --variant sampler-1pct:OTEL_SAMPLER_RATIO=0.01 \
    -d "$out/django-otel" "$@"
