"""Paging for list calls botocore has no paginator for (Route 53 Resolver's firewall lists, for one)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


def next_token_pages(call: Callable[..., Any], result: str, **params: Any) -> Iterator[Any]:
    """Every item of a NextToken-paginated list call, page after page."""
    token = None
    while True:
        page = call(**params, **({"NextToken": token} if token else {}))
        yield from page.get(result) or []
        token = page.get("NextToken")
        if not token:
            return
