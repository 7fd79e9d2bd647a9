"""Settings, driven by environment variables (see .env.example and docs/operations.md).

Without DATABASE_URL the embedded default is SQLite under data/; without REDIS_URL Celery
tasks run in-process. Production and CI set both.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str = "False") -> bool:
    value = os.getenv(name, default).strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {value!r}")


def envint(name: str, default: str) -> int:
    value = os.getenv(name, default)
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {value!r}") from None


def database_from_url(url: str) -> dict[str, object]:
    """Parse postgres://user:pass@host:port/name?opt=v or sqlite:///path into DATABASES['default']."""
    parsed = urlparse(url)
    if parsed.scheme in {"postgres", "postgresql", "pgsql"}:
        options = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path.lstrip("/")),
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "OPTIONS": options,
            "CONN_MAX_AGE": envint("DB_CONN_MAX_AGE", "60"),
            "CONN_HEALTH_CHECKS": True,
            "DISABLE_SERVER_SIDE_CURSORS": envbool("DB_DISABLE_SERVER_SIDE_CURSORS"),
            "TEST": {"NAME": os.getenv("TEST_DATABASE_NAME") or None},
        }
    if parsed.scheme == "sqlite":
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else parsed.path
        return sqlite_database(Path(path) if path else BASE_DIR / "data" / "db.sqlite3")
    raise ImproperlyConfigured(f"DATABASE_URL scheme {parsed.scheme!r} is not supported; use postgres:// or sqlite:///")


def sqlite_database(path: Path) -> dict[str, object]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        # WAL + a busy timeout let the demo's web server and in-process tasks share the file.
        "OPTIONS": {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
        # beside the database, named after it: two databases in one folder get two test databases
        "TEST": {"NAME": str(path.with_name(path.stem + "-test.sqlite3"))},
    }


DEBUG = envbool("DEBUG")
DJANGO_ENV = os.getenv("DJANGO_ENV", "dev")
SECRET_KEY = os.getenv("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and os.getenv("DJANGO_ENV", "dev") == "production":
        raise ImproperlyConfigured("SECRET_KEY must be set in production")
    SECRET_KEY = "dev-only-insecure-key-change-me"  # noqa: S105 - never used when DJANGO_ENV=production
ALLOWED_HOSTS = [
    h.strip() for h in os.getenv("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h.strip()
]
CSRF_TRUSTED_ORIGINS = [o for o in os.getenv("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "pgtrigger",
    "pghistory",
    "pghistory.admin",
    "provenance",
    "anomaly",
    "simulator",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = os.getenv("DATABASE_URL", "")
DATABASES = {
    "default": database_from_url(DATABASE_URL) if DATABASE_URL else sqlite_database(BASE_DIR / "data" / "db.sqlite3")
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USING_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
# Who did what through the web or the API, and why, for the audit trail (docs/audit.md). Does nothing
# on SQLite, which has no audit triggers.
MIDDLEWARE.append("provenance.audit.AuditMiddleware")
PGHISTORY_ADMIN_CLASS = "provenance.audit_admin.AuditEventsAdmin"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise serves from it; collectstatic fills it for production
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
LOGIN_URL = "/admin/login/"

# Request bodies: the EPCIS capture limit is advertised on OPTIONS /epcis/capture.
EPCIS_CAPTURE_LIMIT = envint("EPCIS_CAPTURE_LIMIT", "10000")  # events per document
EPCIS_CAPTURE_FILE_SIZE_LIMIT = envint("EPCIS_CAPTURE_FILE_SIZE_LIMIT", str(32 * 1024 * 1024))  # bytes
EPCIS_MAX_JSON_DEPTH = envint("EPCIS_MAX_JSON_DEPTH", "32")
EPCIS_MAX_FUTURE_SKEW_SECONDS = envint("EPCIS_MAX_FUTURE_SKEW_SECONDS", "300")
EPCIS_QUERY_MAX_PER_PAGE = envint("EPCIS_QUERY_MAX_PER_PAGE", "1000")
DATA_UPLOAD_MAX_MEMORY_SIZE = EPCIS_CAPTURE_FILE_SIZE_LIMIT + 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "provenance.auth.BearerApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "provenance.problems.problem_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["provenance.auth.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": os.getenv("API_KEY_THROTTLE_RATE", "6000/min")},
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Drug-lot provenance service",
    "DESCRIPTION": "EPCIS 2.0 capture and query, verifiable ledger, anomaly flags.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

REDIS_URL = os.getenv("REDIS_URL", "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Celery: the database is the source of truth, the broker only a doorbell (docs/architecture.md).
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL or envbool("CELERY_TASK_ALWAYS_EAGER")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", "7200")}
CELERY_TASK_ROUTES = {
    "anomaly.tasks.score_*": {"queue": "scoring"},
    "anomaly.tasks.train_*": {"queue": "training"},
}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BEAT_SCHEDULE_INTERVALS = {
    "checkpoint": envint("LEDGER_CHECKPOINT_INTERVAL_SECONDS", "60"),
    "score_sweep": envint("ANOMALY_SWEEP_INTERVAL_SECONDS", "60"),
}
# Every committed capture kicks the scoring queue (coalesced); the beat sweep catches up on lost kicks.
ANOMALY_SCORE_ON_CAPTURE = envbool("ANOMALY_SCORE_ON_CAPTURE", "true")


def _beat_schedule() -> dict[str, dict[str, Any]]:
    from anomaly.tasks import beat_schedule as anomaly_schedule
    from provenance.ledger_tasks import beat_schedule

    return {**beat_schedule(CELERY_BEAT_SCHEDULE_INTERVALS), **anomaly_schedule(CELERY_BEAT_SCHEDULE_INTERVALS)}


CELERY_BEAT_SCHEDULE = _beat_schedule()

LEDGER_SIGNING_KEY = os.getenv("LEDGER_SIGNING_KEY", "")
LEDGER_ORIGIN = os.getenv("LEDGER_ORIGIN", "provenance.example/ledger")
MODEL_DIR = Path(os.getenv("MODEL_DIR", str(BASE_DIR / "data" / "models")))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
