from rest_framework.routers import SimpleRouter

from .views import ImportJobViewSet

router = SimpleRouter()
router.register("imports", ImportJobViewSet, basename="import")

urlpatterns = router.urls
