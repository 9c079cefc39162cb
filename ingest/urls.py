"""Ingest URLs: the connection's webhook, with or without the device serial after it."""

from django.urls import path, re_path

from ingest import views

urlpatterns = [
    # `Connection.ingest_url` reverses "ingest".
    path("<uuid:connection_id>/", views.receive, name="ingest"),
    path("<uuid:connection_id>", views.receive),
    path("<uuid:connection_id>/<str:serial>", views.receive, name="ingest-serial"),
    path("<uuid:connection_id>/<str:serial>/", views.receive),
    re_path(r"^(?P<path>.*)$", views.unknown),
]
