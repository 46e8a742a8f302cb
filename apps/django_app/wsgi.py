"""A Django app, unmodified, for Debian's python3-django (3.2): a settings module, a
model on SQLite, a template. On Debian 12's CPython 3.11, in four subinterpreters:

    apt-get install python3-django python3-dev && npm run build:native
    npx interpool serve apps/django_app/wsgi.py --python native --cpython /usr/bin/python3.11 \\
        --python-path /usr/lib/python3/dist-packages --workers 4

The database is one SQLite file in the temporary directory (DJANGO_APP_DB names
another), shared by every interpreter; the first to import creates its table.
"""
import os

from django.core.management import call_command
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
application = get_wsgi_application()

# Interpreters import this at the same time: one migrates, the others wait for it.
# (Pyodide has no fcntl, and no need: each of its interpreters has a /tmp of its own.)
from django.conf import settings  # noqa: E402

with open(f"{settings.DATABASES['default']['NAME']}.lock", "w") as lock:
    try:
        import fcntl
        fcntl.flock(lock, fcntl.LOCK_EX)
    except ImportError:
        pass
    call_command("migrate", run_syncdb=True, verbosity=0)
