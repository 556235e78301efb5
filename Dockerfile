# Production image: gunicorn serves the portal; the same image runs the Celery worker and beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=leadportal.settings.production
WORKDIR /app

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
# collectstatic needs settings to import (and they refuse a weak key): a random key used once here and
# thrown away; the real secret comes from the environment at run time.
RUN DJANGO_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 python manage.py collectstatic --no-input

RUN useradd --create-home leadportal
USER leadportal
EXPOSE 8000
CMD ["gunicorn", "leadportal.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4"]
