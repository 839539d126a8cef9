"""The URLconf of the Django front end's tests."""

from django.urls import include, path

urlpatterns = [path("shop/recsdk/", include("recsdk.collector.django.urls"))]
