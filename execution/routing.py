from django.urls import path

from execution.consumers import BlotterConsumer

websocket_urlpatterns = [path("ws/blotter/", BlotterConsumer.as_asgi())]
