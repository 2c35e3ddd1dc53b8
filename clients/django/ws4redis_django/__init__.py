"""ws4redis for Django: a drop-in for django-websocket-redis on the ws4redis core.

INSTALLED_APPS += ["ws4redis_django"]; the original's settings keep their names and meaning;
``ws4redis.<module>`` imports become ``ws4redis_django.<module>`` (publisher, redis_store,
context_processors, settings). See README.md.
"""

__version__ = "0.2.0"
