"""Context for the seller gallery partial (``facelibrary/_gallery.html``).

The seller's face-selection view calls :func:`gallery_context` and includes the partial inside
its own form; on an htmx request aimed at ``#face-gallery-results`` it renders
``facelibrary/_gallery_grid.html`` with the same context, so only the grid is swapped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import QueryDict

from .forms import GalleryFilterForm
from .selectors import gallery_faces

GALLERY_PAGE_SIZE = 24
#: the element the grid re-renders into (HX-Target of filter and paging requests)
GRID_ID = "face-gallery-results"


def gallery_context(
    *,
    params: QueryDict,
    url: str,
    selected: Iterable[int] | None = None,
    faces_form: str = "",
    page_size: int = GALLERY_PAGE_SIZE,
) -> dict[str, Any]:
    """Everything the partial needs.

    ``params``: the request's GET (filters, ``page``, and ``faces`` the seller already ticked);
    ``url``: where filter and paging requests go (the including page's own URL);
    ``selected``: ticked face ids (default: the ``faces`` values in ``params``);
    ``faces_form``: the id of the form the checkboxes belong to when the partial is rendered
    outside it (HTML ``form=`` attribute); leave empty when it is included inside the form.
    """
    form = GalleryFilterForm(params or None, auto_id="gallery-%s")
    filters = form.filters() if params else {}
    faces = gallery_faces(filters=filters)
    page = Paginator(faces, page_size).get_page(params.get("page"))
    if selected is None:
        selected = [int(v) for v in params.getlist("faces") if str(v).isdigit()]
    selected_ids = set(selected)
    shown = {face.pk for face in page.object_list}
    filter_params = [(key, value) for key, value in filters.items()]
    with_selection = filter_params + [("faces", pk) for pk in sorted(selected_ids)]
    return {
        "gallery_form": form,
        "gallery_page": page,
        "gallery_selected": selected_ids,
        # ticked faces the current filter or page hides: kept as hidden inputs so a filter
        # change never drops part of the seller's selection
        "gallery_hidden_selected": sorted(selected_ids - shown),
        "gallery_url": url,
        "gallery_query": urlencode(with_selection),
        "gallery_faces_form": faces_form,
        "gallery_grid_id": GRID_ID,
    }


def is_grid_request(request) -> bool:
    """An htmx request that only needs the grid (filters changed, next page)."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and htmx.target == GRID_ID
