from django.apps import AppConfig


class LoopConfig(AppConfig):
    name = "loop"
    verbose_name = "Loop health"
    default_auto_field = "django.db.models.BigAutoField"
