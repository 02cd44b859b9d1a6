"""The pages (one layout around each page's content) and the chart library they load."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from ..context import Context
from ..layout import PAGES, page


def router(ctx: Context) -> APIRouter:
    r = APIRouter()
    for path, label, *_ in PAGES:
        r.add_api_route(path, _page_route(path), methods=["GET"], response_class=HTMLResponse,
                        summary=f"the {label} page")

    @r.get("/vendor/vega.js", include_in_schema=False)
    async def vega_js() -> Response:
        """Vega, Vega-Lite and Vega-Embed from the installed vl-convert package (no CDN)."""
        from ... import charts

        text = await run_in_threadpool(charts.library_js)
        return Response(text, media_type="text/javascript",
                         headers={"cache-control": "public, max-age=86400"})

    return r


def _page_route(path: str) -> Callable[[], HTMLResponse]:
    def serve() -> HTMLResponse:
        return HTMLResponse(page(path))

    return serve
