"""A Django 5.2 project as `django-admin startproject` makes it, minus the database and the admin:
Django's default MIDDLEWARE, in its order, and one view. mwbench measures it (docs/django.md)."""

from __future__ import annotations

SECRET_KEY = "django-insecure-mwbench-example-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]  # the harness's requests name 127.0.0.1

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
]

# startproject's list, unchanged.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"
DATABASES: dict[str, dict[str, str]] = {}  # no database: nothing here queries one
USE_TZ = True
