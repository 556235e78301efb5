from django.urls import path

from .views import ActiveModelView, LeadScoreView

urlpatterns = [
    path("scoring/model/", ActiveModelView.as_view(), name="scoring-model"),
    path("leads/<int:pk>/score/", LeadScoreView.as_view(), name="lead-score"),
]
