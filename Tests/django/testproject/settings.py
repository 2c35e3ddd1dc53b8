"""A small Django project using ws4redis_django with the original's settings.

The test suite gives it its Redis and database through the environment (TEST_REDIS_PORT, TEST_DB);
WS4REDIS_LIBRARY names libws4redis.so.
"""

import os

SECRET_KEY = "ws4redis-django-tests-only"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "ws4redis_django",
    "testproject",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "testproject.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["ws4redis_django.context_processors.default"]},
    }
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ.get("TEST_DB", ":memory:")}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

# The original's settings (django-websocket-redis), as an existing project has them.
WEBSOCKET_URL = "/ws/"
WS4REDIS_CONNECTION = {"host": "127.0.0.1", "port": int(os.environ.get("TEST_REDIS_PORT", "6379")), "db": 0,
                       "password": os.environ.get("TEST_REDIS_PASSWORD")}
WS4REDIS_PREFIX = "djt"
WS4REDIS_EXPIRE = 120
WS4REDIS_HEARTBEAT = "--heartbeat--"
WS4REDIS_ALLOWED_CHANNELS = "testproject.policy.allowed_channels"
# ws4redis_django's own: further settings of the core (a short heartbeat interval keeps the tests quick).
WS4REDIS_SERVER_SETTINGS = {"heartbeat_interval": 500, "threads": 1}
