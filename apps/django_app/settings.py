"""Settings of the Django example app: one app (notes), SQLite, no admin, no sessions."""
import os
import tempfile

BASE_DIR = os.path.dirname(os.path.abspath(__file__))
SECRET_KEY = "interpool-example-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
INSTALLED_APPS = ["notes"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "urls"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_APP_DB") or os.path.join(tempfile.gettempdir(), "interpool-django-app.sqlite3"),
    },
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
