from django.urls import path

import ws4redis_django.views

from . import views

urlpatterns = [
    path("", views.page),
    path("notify-self/", views.notify_self),
    path("fetch/", views.fetch),
    path("ws4redis/auth/", ws4redis_django.views.auth_request),
]
