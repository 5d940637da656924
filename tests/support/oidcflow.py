"""Walking through the bundled OpenID Connect provider's development interactions with
httpx, as a browser would: the login form (any login, any password), then the consent form."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import httpx

_ACTION = re.compile(r'<form[^>]*action="([^"]+)"[^>]*method="post"', re.I)
_PROMPT = re.compile(r'name="prompt" value="(\w+)"')


async def sign_in_at_provider(
    http: httpx.AsyncClient, authorize_url: str, login: str, *, stop_at: str
) -> str:
    """Follow the provider from ``authorize_url`` until it redirects to ``stop_at`` (the
    studio's callback); answers its forms on the way. Returns that redirect URL."""
    url, method, data = authorize_url, "GET", None
    for _ in range(20):
        response = await http.request(method, url, data=data)
        if response.is_redirect:
            target = urljoin(url, response.headers["location"])
            if target.startswith(stop_at):
                return target
            url, method, data = target, "GET", None
            continue
        response.raise_for_status()
        action, prompt = _ACTION.search(response.text), _PROMPT.search(response.text)
        assert action and prompt, response.text[:500]
        url, method = urljoin(url, action.group(1)), "POST"
        data = {"prompt": prompt.group(1)}
        if prompt.group(1) == "login":
            data.update(login=login, password="any password")
    raise AssertionError("the provider never redirected back")
