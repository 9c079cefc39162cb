from django.http import HttpResponse
from django.urls import path


def _not_built(request, **kwargs):  # replaced by ingest.views.receive
    return HttpResponse(status=501)


urlpatterns = [
    path("<uuid:connection_id>/", _not_built, name="ingest"),
]
