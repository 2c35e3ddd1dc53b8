from django.http import HttpResponse
from django.shortcuts import render

from ws4redis_django.publisher import RedisPublisher
from ws4redis_django.redis_store import SELF, RedisMessage


def page(request):
    return render(request, "page.html")


def notify_self(request):
    """Publishes ?message= to the request's own ?audience= (users, groups or sessions) with SELF."""
    audience = {request.GET["audience"]: [SELF]}
    receivers = RedisPublisher(facility="notify", request=request, **audience).publish_message(RedisMessage(request.GET["message"]))
    return HttpResponse(str(receivers))


def fetch(request):
    """The message kept for the request's own ?audience= of ?facility=, as fetch_message finds it."""
    message = RedisPublisher(facility=request.GET["facility"]).fetch_message(request, request.GET["facility"], request.GET.get("audience", "any"))
    return HttpResponse(message or b"", status=200 if message else 404)
