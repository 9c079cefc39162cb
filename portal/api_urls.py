"""The one router of /api/v1/; each app registers its viewsets here."""

from rest_framework.routers import DefaultRouter

from delivery.api import DeliveryViewSet, DestinationViewSet
from devices.api import DeviceViewSet
from ingest.api import ConnectionViewSet, MessageViewSet, ReadingViewSet
from portal.api import ApiKeyViewSet

router = DefaultRouter()
router.register("api-keys", ApiKeyViewSet, basename="apikey")
router.register("destinations", DestinationViewSet, basename="destination")
router.register("deliveries", DeliveryViewSet, basename="delivery")
router.register("connections", ConnectionViewSet, basename="connection")
router.register("devices", DeviceViewSet, basename="device")
router.register("messages", MessageViewSet, basename="message")
router.register("readings", ReadingViewSet, basename="reading")

urlpatterns = router.urls
