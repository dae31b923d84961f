"""A stand-alone gallery endpoint (the seller UI can also render the partial in its own view)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from .gallery import gallery_context, is_grid_request


@login_required
@require_GET
def gallery(request: HttpRequest) -> HttpResponse:
    context = gallery_context(params=request.GET, url=reverse("facelibrary:gallery"))
    template = (
        "facelibrary/_gallery_grid.html"
        if is_grid_request(request)
        else ("facelibrary/gallery.html")
    )
    return render(request, template, context)
