from rest_framework.routers import SimpleRouter

from .views import PartnerLeadViewSet

router = SimpleRouter()
router.register("partner/leads", PartnerLeadViewSet, basename="partner-lead")

urlpatterns = router.urls
