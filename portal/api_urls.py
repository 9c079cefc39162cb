"""The one router of /api/v1/; each app registers its viewsets here."""

from rest_framework.routers import DefaultRouter

from portal.api import ApiKeyViewSet

router = DefaultRouter()
router.register("api-keys", ApiKeyViewSet, basename="apikey")

urlpatterns = router.urls
