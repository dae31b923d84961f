"""Small request guards that belong before Django's own middleware."""

from __future__ import annotations

import re

from django.conf import settings

# Django's session keys are lowercase letters and digits (32 chars); anything else cannot be a
# session of ours.
_SESSION_KEY = re.compile(r"^[a-z0-9]{1,64}$")


class DropMalformedSessionCookie:
    """Ignore a session cookie that cannot be a real session key.

    Found by fuzzing: a ``sessionid`` holding a NUL byte reached the session query, and
    PostgreSQL refuses NUL in text, so any page that read ``request.user`` answered 500. A forged
    cookie now simply means "not signed in".
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        value = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        if value is not None and not _SESSION_KEY.match(value):
            del request.COOKIES[settings.SESSION_COOKIE_NAME]
        return self.get_response(request)
