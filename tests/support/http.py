"""Talking to a running web server (gunicorn in the reliability tests and the benchmarks)."""

from __future__ import annotations

import httpx

LOGIN = "/accounts/login/"


def sign_in(client: httpx.Client, username: str, password: str) -> httpx.Response:
    """Post the sign-in form as a browser does: a GET first for the CSRF cookie, then the POST
    with its token. Returns the POST's response (302 when the credentials were accepted)."""
    client.get(LOGIN).raise_for_status()
    return client.post(
        LOGIN,
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": client.cookies.get("csrftoken", ""),
        },
    )
