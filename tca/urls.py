from django.urls import path

from tca import views

urlpatterns = [
    path("", views.tca_report, name="tca_report"),
    path("export.csv", views.tca_export, name="tca_export"),
]
