"""The shop's URLs, and the collector's under ``recsdk/``."""

from django.urls import include, path

from shop import views

urlpatterns = [
    path("recsdk/", include("recsdk.collector.django.urls")),  # POST /recsdk/events
    path("products/<str:item_id>", views.product_page, name="product"),
    path("checkout", views.checkout),
    path("users/<str:user_id>/recommendations", views.recommendations),
    path("users/<str:user_id>/data", views.shopper_data),
    path("admin/fit", views.fit),
]
