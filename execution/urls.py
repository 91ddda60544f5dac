from django.urls import path

from execution import views

urlpatterns = [
    path("", views.blotter, name="blotter"),
    path("orders/new/", views.order_new, name="order_new"),
    path("orders/estimate/", views.order_estimate, name="order_estimate"),
    path("orders/<int:pk>/", views.order_detail, name="order_detail"),
    path("orders/<int:pk>/row/", views.order_row, name="order_row"),
    path("orders/<int:pk>/control/", views.order_control, name="order_control"),
    path("assets/plotly.min.js", views.plotly_js, name="plotly_js"),
]
