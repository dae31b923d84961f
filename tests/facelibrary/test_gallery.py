"""The seller gallery partial and its endpoint."""

from __future__ import annotations

import re

import pytest
from django.http import QueryDict
from django.template.loader import render_to_string
from django.test import RequestFactory

from facelibrary.gallery import gallery_context
from tests.factories import SellerFactory

from .factories import DraftFaceFactory, active_face

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.facelibrary.urls")]


def render(query: str = "", **kwargs) -> str:
    request = RequestFactory().get(f"/shoots/1/faces/?{query}")
    context = gallery_context(params=QueryDict(query), url="/shoots/1/faces/", **kwargs)
    return render_to_string("facelibrary/_gallery.html", context, request=request)


@pytest.fixture
def faces():
    return [
        active_face(
            code="ANA", gender_presentation="feminine", skin_tone=3, region_tags=["europe"]
        ),
        active_face(code="BEN", gender_presentation="masculine", skin_tone=8, hair="short"),
        DraftFaceFactory(code="DRAFT"),
    ]


def checkbox_values(html: str) -> list[str]:
    return re.findall(r'<input type="checkbox" name="faces" value="(\d+)"', html)


def test_partial_lists_active_faces_with_checkboxes_and_no_form(faces):
    html = render()
    assert "<form" not in html  # it goes inside the seller page's own form
    assert checkbox_values(html) == [str(faces[0].pk), str(faces[1].pk)]
    assert "Face ANA" in html and "Face DRAFT" not in html
    assert faces[0].primary_reference.thumbnail.url in html
    assert "Monk 3" in html and "Europe" in html and "Feminine" in html
    # every checkbox and every filter has a label
    for pk in checkbox_values(html):
        assert f'for="gallery-face-{pk}"' in html
    for name in ("gender_presentation", "age_band", "skin_tone", "region", "expression", "hair"):
        assert f'<label for="gallery-{name}">' in html and f'name="{name}"' in html
    assert "<legend>Filter faces</legend>" in html
    assert 'hx-get="/shoots/1/faces/"' in html and 'hx-target="#face-gallery-results"' in html


def test_filters_and_selection_survive_a_filter_change(faces):
    ana, ben, _ = faces
    html = render(f"gender_presentation=masculine&faces={ana.pk}&faces={ben.pk}")
    assert checkbox_values(html) == [str(ben.pk)]
    assert re.search(rf'value="{ben.pk}" id="gallery-face-{ben.pk}" checked', html)
    # ANA is filtered out but stays selected, as a hidden input
    assert f'<input type="hidden" name="faces" value="{ana.pk}">' in html
    assert "1 face matches · 2 selected." in html
    assert '<option value="masculine" selected>' in html


def test_checkboxes_can_belong_to_a_form_elsewhere_on_the_page(faces):
    html = render(faces_form="generate-form")
    assert html.count('form="generate-form"') == 2


def test_nothing_matches(faces):
    html = render("skin_tone=10")
    assert "No face matches these filters." in html and checkbox_values(html) == []


def test_paging_keeps_filters_and_selection(faces):
    for _ in range(3):
        active_face(gender_presentation="masculine")
    html = render(f"gender_presentation=masculine&faces={faces[0].pk}", page_size=2)
    assert "Page 1 of 2" in html
    assert f"gender_presentation=masculine&amp;faces={faces[0].pk}&amp;page=2" in html


def test_endpoint_needs_a_login_and_renders_the_grid_for_htmx(client, faces):
    assert client.get("/faces/gallery/").status_code == 302
    client.force_login(SellerFactory().user)
    page = client.get("/faces/gallery/")
    assert page.status_code == 200 and b'id="face-gallery"' in page.content
    grid = client.get(
        "/faces/gallery/?skin_tone=8",
        headers={"HX-Request": "true", "HX-Target": "face-gallery-results"},
    )
    html = grid.content.decode()
    assert html.lstrip().startswith('<div id="face-gallery-results"')
    assert checkbox_values(html) == [str(faces[1].pk)]
