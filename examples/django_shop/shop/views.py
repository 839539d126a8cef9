"""The shop's pages and routes, and the recommender the collector's list endpoints serve."""

# Django has no type hints here (no django-stubs), so its view decorators are untyped.
# mypy: allow-untyped-decorators

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from recsdk import Recommender
from recsdk.errors import NotFitted, ValidationError

recommender = Recommender(settings.RECSDK_DATABASE_URL)
recommender.upsert_items(
    [
        {"item_id": f"sku-{n}", "title": title, "category": category, "price": price}
        for n, (title, category, price) in enumerate(
            [
                ("Red mug", "kitchen", 9.5),
                ("Blue mug", "kitchen", 9.5),
                ("Teapot", "kitchen", 24.0),
                ("Garden gloves", "garden", 12.0),
                ("Trowel", "garden", 8.0),
            ],
            start=1,
        )
    ]
)


class ValidationErrorsAs422:
    """Middleware: an id that recsdk refuses (empty, too long, control characters) is the
    client's mistake; answer 422 naming the field, never 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, error: Exception) -> HttpResponse | None:
        if isinstance(error, ValidationError):
            return JsonResponse({"field": error.field, "error": error.reason}, status=422)
        return None


@require_GET
def product_page(request: HttpRequest, item_id: str) -> HttpResponse:
    entry = recommender.store.get_items([item_id]).get(item_id)
    title = (entry.title if entry else None) or item_id
    try:
        similar = list(recommender.similar_items(item_id, k=4))
    except NotFitted:  # nothing fitted yet: the page still renders
        similar = []
    context = {"title": title, "item_id": item_id, "similar": similar}
    return render(request, "product.html", context)


@require_POST
def checkout(request: HttpRequest) -> JsonResponse:
    # This project holds the store, so it writes the event at once (a few milliseconds). A
    # project whose collector runs elsewhere would use recsdk.AsyncTracker, which sends in
    # the background. A missing field arrives as "" and is refused by recsdk, naming it.
    form = request.POST
    recommender.track(
        "purchase",
        user_id=form.get("user_id", ""),
        item_id=form.get("item_id", ""),
        order_id=form.get("order_id", ""),
        quantity=1,
    )
    return JsonResponse({"ok": True})


@require_GET
def recommendations(request: HttpRequest, user_id: str) -> JsonResponse:
    try:
        found = recommender.recommend(user_id, k=4)
    except NotFitted:
        return JsonResponse([], safe=False)
    listed = [{"item_id": r.item_id, "title": r.title, "reason": r.reason} for r in found]
    return JsonResponse(listed, safe=False)


@require_POST
def fit(request: HttpRequest) -> JsonResponse:
    recommender.fit()
    return JsonResponse({"fitted": True})


# A shopper's right to see and delete their data (docs/privacy.md). A real shop serves
# this to the logged-in shopper only, for their own id, after its own login check.
@require_http_methods(["GET", "DELETE"])
def shopper_data(request: HttpRequest, user_id: str) -> JsonResponse:
    if request.method == "DELETE":
        return JsonResponse({"erased_events": recommender.erase_user(user_id)})
    return JsonResponse(recommender.export_user(user_id).to_dict())
