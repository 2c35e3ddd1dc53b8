"""The original's ``WSGI_APPLICATION = "ws4redis.django_runserver.application"`` keeps working as
``"ws4redis_django.django_runserver.application"``: Django's WSGI application. Websockets in runserver
need no WSGI wrapper here; the installed app hosts them (devserver.py)."""

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
