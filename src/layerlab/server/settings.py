"""Django settings of the lab server; the environment is read here only, through ``Env``.

Defaults make ``layerlab serve`` work with nothing configured: SQLite (WAL) and files under
``LAYERLAB_HOME`` (default ``./.layerlab``), a secret key generated there on first start.
"""

from __future__ import annotations

from layerlab.server.env import Env, database_config, secret_key

env = Env()

LAYERLAB_HOME = env.path("LAYERLAB_HOME", ".layerlab")
LAYERLAB_HOME.mkdir(parents=True, exist_ok=True)

SECRET_KEY = secret_key(LAYERLAB_HOME, env)
DEBUG = env.bool("LAYERLAB_DEBUG", False)
ALLOWED_HOSTS = env.list("LAYERLAB_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("LAYERLAB_CSRF_TRUSTED_ORIGINS", [])
# A refused form (missing or stale CSRF token) is a 403 page in the dashboard's layout, JSON under /api/.
CSRF_FAILURE_VIEW = "layerlab.web.views.errors.csrf_failure"
# Behind an HTTPS proxy: cookies only over HTTPS, and the proxy's X-Forwarded-Proto is trusted.
if env.bool("LAYERLAB_HTTPS", False):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_tasks",
    "django_tasks_db",
    "layerlab.apps.accounts",
    "layerlab.apps.projects",
    "layerlab.apps.datasets",
    "layerlab.apps.networks",
    "layerlab.apps.runs",
    "layerlab.apps.journal",
    "layerlab.apps.tracking",
    "layerlab.apps.sweeps",
    "layerlab.apps.pipelines",
    "layerlab.apps.experiments",
    "layerlab.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "layerlab.apps.accounts.throttle.LoginThrottleMiddleware",  # 429 after repeated failed sign-ins
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "layerlab.web.security.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "layerlab.server.urls"
WSGI_APPLICATION = "layerlab.server.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {"default": database_config(env.str("DATABASE_URL"), LAYERLAB_HOME)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"


# Files kept by the lab (uploaded datasets, run checkpoints and files, exports) go through Django's
# default storage, under names relative to its root (``datasets/<project>/<uuid>/...``,
# ``runs/<id>/...``). Default: the file system at LAYERLAB_HOME itself, so a worker's run directory
# (LAYERLAB_HOME/runs/<id>) is already the stored copy and nothing is copied. LAYERLAB_STORAGE points
# elsewhere: a backend class path, or a JSON object {"BACKEND": ..., "OPTIONS": {...}}.
def storage_config(value: str, home) -> dict:
    """The ``default`` entry of STORAGES from LAYERLAB_STORAGE (empty: a FileSystemStorage at ``home``)."""
    import json

    from layerlab.core.errors import ConfigError

    value = value.strip()
    if not value:
        return {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(home)}}
    if not value.startswith("{"):
        return {"BACKEND": value, "OPTIONS": {}}
    try:
        config = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"LAYERLAB_STORAGE is not valid JSON: {exc}", where="environment") from None
    if not isinstance(config, dict) or not isinstance(config.get("BACKEND"), str):
        raise ConfigError(
            'LAYERLAB_STORAGE must name a backend: {"BACKEND": "dotted.path", "OPTIONS": {...}}',
            where="environment",
        )
    return {"BACKEND": config["BACKEND"], "OPTIONS": dict(config.get("OPTIONS") or {})}


STORAGES = {
    "default": storage_config(env.str("LAYERLAB_STORAGE"), LAYERLAB_HOME),
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Run directories (checkpoints, metrics files) of runs executed by workers.
LAYERLAB_RUNS_DIR = LAYERLAB_HOME / "runs"
LAYERLAB_CACHE_DIR = LAYERLAB_HOME / "cache"
# Uploaded datasets larger than this are refused with 400.
LAYERLAB_UPLOAD_MAX_BYTES = env.int("LAYERLAB_UPLOAD_MAX_MB", 200) * 1024 * 1024
# Decompression limits (zip, npz and image bombs), checked from headers before anything is inflated:
# what one upload may unpack to, pixels per image (uploads, predict, training), bytes per array.
LAYERLAB_MAX_UPLOAD_UNCOMPRESSED_BYTES = env.int("LAYERLAB_MAX_UPLOAD_UNCOMPRESSED_MB", 1024) * 1024 * 1024
LAYERLAB_MAX_IMAGE_PIXELS = env.int("LAYERLAB_MAX_IMAGE_PIXELS", 50_000_000)
LAYERLAB_MAX_ARRAY_BYTES = env.int("LAYERLAB_MAX_ARRAY_MB", 1024) * 1024 * 1024
# Server-side folders a superuser may grant to projects (comma-separated); empty: any folder.
# Users read only uploads and the folders granted to their project (projects.ProjectDataRoot).
LAYERLAB_IMPORT_ROOTS = [str(p) for p in (env.list("LAYERLAB_IMPORT_ROOTS", []))]
# Caps on what one run may ask of the workers, checked when it is created (400 naming the field).
LAYERLAB_MAX_EPOCHS = env.int("LAYERLAB_MAX_EPOCHS", 10_000)
LAYERLAB_MAX_PARAMETERS = env.int("LAYERLAB_MAX_PARAMETERS", 50_000_000)
LAYERLAB_MAX_DATA_POINTS = env.int("LAYERLAB_MAX_DATA_POINTS", 1_000_000)  # generated points, data.limit
LAYERLAB_MAX_INPUT_PIXELS = env.int("LAYERLAB_MAX_INPUT_PIXELS", 1024 * 1024)  # data.size height x width
# A worker stops a run after this many seconds of one execution (failed, resumable; 0: no limit).
LAYERLAB_MAX_RUN_SECONDS = env.int("LAYERLAB_MAX_RUN_SECONDS", 24 * 3600)
# CPU threads of a worker's run without train.num_threads: LAYERLAB_TRAIN_THREADS when set (> 0), else
# the usable cores divided among the trainings of this host: LAYERLAB_CONCURRENT_TRAININGS (serve sets
# it to --workers, `layerlab worker --concurrency N`) or, at least, the runs running on this host.
LAYERLAB_TRAIN_THREADS = env.int("LAYERLAB_TRAIN_THREADS", 0)
LAYERLAB_CONCURRENT_TRAININGS = env.int("LAYERLAB_CONCURRENT_TRAININGS", 0)
# The API's largest page (?limit=); larger asks get this many.
LAYERLAB_API_MAX_PAGE_SIZE = env.int("LAYERLAB_API_MAX_PAGE_SIZE", 500)
# A run whose worker died is resumed from its last checkpoint this many times, then failed.
LAYERLAB_MAX_RUN_ATTEMPTS = env.int("LAYERLAB_MAX_RUN_ATTEMPTS", 3)
# A running run whose heartbeat is older than this (seconds) is taken as orphaned.
LAYERLAB_STALE_SECONDS = env.positive_int("LAYERLAB_STALE_SECONDS", 60)
# A worker stamps its run's heartbeat this often: at least three times within the stale window, whatever
# is asked, so a live worker is never taken for dead between two beats.
LAYERLAB_HEARTBEAT_SECONDS = min(
    env.positive_int("LAYERLAB_HEARTBEAT_SECONDS", 10), LAYERLAB_STALE_SECONDS / 3
)
# The host part of the worker name recorded on the runs this machine executes (``<name>:<pid>``),
# by which recovery tells its own dead processes apart; empty: the machine's host name. Give each
# host its own when their host names may be equal (containers, cloned machines).
LAYERLAB_WORKER_NAME = env.str("LAYERLAB_WORKER_NAME").strip()
# Request bodies (JSON metric batches of 10,000 points fit well inside).
DATA_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024

# Failed sign-ins (dashboard, browsable API, admin, token endpoint): after this many within the window,
# per user name or per client address, the next attempt answers 429 with Retry-After (accounts.throttle).
LAYERLAB_LOGIN_FAILURES_PER_USER = env.int("LAYERLAB_LOGIN_FAILURES_PER_USER", 10)
LAYERLAB_LOGIN_FAILURES_PER_IP = env.int("LAYERLAB_LOGIN_FAILURES_PER_IP", 50)
LAYERLAB_LOGIN_WINDOW_SECONDS = env.int("LAYERLAB_LOGIN_WINDOW_SECONDS", 900)
# The counts are shared by every process of this machine: a file cache (the default cache is per process).
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "login": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(LAYERLAB_HOME / "cache" / "login"),
    },
}

LOGIN_URL = "rest_framework:login"
LOGIN_REDIRECT_URL = "/api/"

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes anonymous requests answer 401, not 403.
    # DRF's scheme with a one-query lookup (accounts.authentication).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "layerlab.apps.accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "layerlab.server.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "layerlab.server.parsers.LimitedMultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "layerlab.server.pagination.LabPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "layerlab.apps.projects.filters.LabFilterBackend",  # ids checked: never a 500, nothing told
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("LAYERLAB_THROTTLE_ANON", "60/min"),
        "user": env.str("LAYERLAB_THROTTLE_USER", "20000/min"),
    },
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "layerlab.server.exceptions.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "layerlab API",
    "DESCRIPTION": "Projects, datasets, networks, runs, metrics and the lab journal.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets whose field names (status, origin) other components use too.
    "ENUM_NAME_OVERRIDES": {
        "ExperimentStatusEnum": "layerlab.apps.experiments.models.Experiment.Status",
        "ExperimentOriginEnum": "layerlab.apps.experiments.models.Experiment.Origin",
    },
}

TASKS = {
    "default": {
        "BACKEND": env.str("LAYERLAB_TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "layerlab": {"handlers": ["console"], "level": env.str("LAYERLAB_LOG_LEVEL", "INFO")},
        # Django logs a server error's traceback only to the console in DEBUG; a lab must see it always.
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}
