"""The portal's URLs plus `/bench/bare/`, the do-nothing view ingest is measured against."""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from portal.urls import urlpatterns as portal_urlpatterns


@csrf_exempt
def bare(request):
    """Answer at once, through the same middleware and server as ingest: the baseline."""
    return HttpResponse(b'{"ok":true}', content_type="application/json")


urlpatterns = [path("bench/bare/", bare, name="bench-bare"), *portal_urlpatterns]
