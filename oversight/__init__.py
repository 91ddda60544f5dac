# Load the Celery app with Django, so tasks sent from the web go to the project's broker.
from oversight.celery import app as celery_app

__all__ = ("celery_app",)
