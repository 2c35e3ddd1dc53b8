from django.apps import AppConfig


class Ws4RedisConfig(AppConfig):
    name = "ws4redis_django"
    verbose_name = "ws4redis"

    def ready(self) -> None:
        from . import devserver

        devserver.install()
