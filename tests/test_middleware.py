"""Bug found by API fuzzing: a NUL byte in the session cookie gave a 500 on every page."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("cookie", ["abc\x00def", "x" * 500, "../../etc", "ÅÄÖ"])
def test_malformed_session_cookie_is_treated_as_signed_out(client, cookie):
    client.cookies["sessionid"] = cookie
    response = client.get("/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    response = client.get("/no-such-page/")
    assert response.status_code == 404


def test_real_session_still_works(client):
    from tests.factories import SellerFactory

    seller = SellerFactory()
    client.force_login(seller.user)
    assert client.get("/").status_code == 200
