"""The application factory: :func:`create_app` (tests, ``mlph serve``) and :func:`app_from_env`
(uvicorn's factory for several workers: every worker builds the same app from the environment).

Errors: the packages' ``GradebookError``/``AutograderError`` become a page with their message (4xx);
anything else a generic 500 page, its traceback only in the server log.
"""
from __future__ import annotations

import gc
import importlib
import logging
from pathlib import Path
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from autograder.errors import AutograderError
from gradebook.course.config import CourseConfig, load_config
from gradebook.store.db import open_gradebook
from gradebook.errors import ConflictError, GradebookError, UnknownStudentError

from autograder.hub.config import hub_settings
from web.hub import HubGate
from web.middleware import BodyLimit, CatchAll, SecurityHeaders
from web.prefix import ServicePrefix
from web.security import LoginRequired, csrf_protect
from web.settings import WebSettings
from web.templating import make_env, render

log = logging.getLogger("mlph.web")
STATIC_DIR = Path(__file__).resolve().parent / "static"
# Route modules, each with a module-level ``router`` (fastapi.APIRouter); one that cannot be imported stops
# the start with its error (never a silently missing page).
ROUTE_MODULES = ("web.routes.auth", "web.routes.student", "web.routes.admin", "web.routes.admin_edit",
                 "web.routes.admin_mail", "web.routes.grade_task", "web.routes.tutor", "web.routes.rubric",
                 "web.routes.hub", "web.routes.similarity", "web.routes.regrades", "web.routes.pages",
                 "web.routes.anonymity")


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "") and not request.headers.get("x-requested-with")


def _error(request: Request, status: int, title: str, message: str) -> Response:
    if not _wants_html(request):
        return JSONResponse({"error": message}, status_code=status)
    return render(request, "error.html", {"title": title, "message": message}, status_code=status)


def _install_handlers(app: FastAPI) -> None:
    async def login_required(request: Request, _exc: Exception) -> Response:
        if request.method == "GET" and _wants_html(request):
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        return _error(request, 401, "Please log in", "Please log in first.")

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        titles = {403: "Not allowed", 404: "Not found", 405: "Not allowed", 413: "Too large", 429: "Too many tries"}
        detail = exc.detail if isinstance(exc.detail, str) else "The request was refused."
        response = _error(request, exc.status_code, titles.get(exc.status_code, "Refused"), detail)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def invalid_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        fields = ", ".join(".".join(str(p) for p in e.get("loc", ())[1:]) or "request" for e in exc.errors())
        return _error(request, 422, "Incomplete form", f"The form is missing or has a bad value in: {fields}.")

    async def domain_error(request: Request, exc: Exception) -> Response:
        status = 409 if isinstance(exc, ConflictError) else 404 if isinstance(exc, UnknownStudentError) else 400
        return _error(request, status, "Not done", str(exc))

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        message = "Something went wrong on the server; it has been logged. Please try again, or tell the course team."
        if not _wants_html(request):
            return JSONResponse({"error": message}, status_code=500)
        page = request.app.state.jinja.get_template("error.html").render(  # no database lookups here
            request=request, course=request.app.state.cfg.name, user=None, csrf_token="", title="Server error",
            message=message)
        return HTMLResponse(page, status_code=500)

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(GradebookError, domain_error)
    app.add_exception_handler(AutograderError, domain_error)
    app.state.server_error = server_error


def create_app(cfg: CourseConfig, settings: WebSettings | None = None) -> FastAPI:
    """The web application over ``cfg``'s gradebook (opened and migrated here)."""
    settings = settings or WebSettings.from_env()
    app = FastAPI(title=f"{cfg.name}: grading", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(csrf_protect)])
    app.state.cfg, app.state.settings = cfg, settings
    app.state.engine = open_gradebook(cfg.db_url, create=False)
    app.state.jinja = make_env(cfg.timezone)
    hub = hub_settings(cfg)  # MLPH_HUB_API_URL set: mlph is the Hub's service (web.hub, web.routes.hub)
    app.state.hub = HubGate(hub, settings.hub_public_url) if hub is not None else None
    _install_handlers(app)
    for name in ROUTE_MODULES:
        app.include_router(importlib.import_module(name).router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(CatchAll, handler=app.state.server_error)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    if hub is not None:  # behind the Hub's proxy, requests keep the prefix /services/<name>/
        app.add_middleware(ServicePrefix, prefix=hub.prefix)
    return app


def app_from_env() -> FastAPI:
    """uvicorn's factory (``web.app:app_from_env``): the course found the documented way. The login's
    stand-in hash for unknown users is made here, so that the first such login is not slower than the rest.

    Everything a worker holds once its application is made (the modules, SQLAlchemy's tables, FastAPI's routes:
    about 200 000 objects) is moved out of the garbage collector's sight (``gc.freeze``): none of it is ever
    garbage, and each full collection walked all of it (70 ms with the application alone, 120 ms once the course's
    standings are kept), holding the worker's interpreter lock while every request of that worker waited."""
    from gradebook.people.accounts import warm_login_timing

    warm_login_timing()
    app = create_app(load_config())
    gc.collect()
    gc.freeze()
    return app


def serve_app(cfg: CourseConfig, host: str, port: int, workers: int = 1, *, grade: bool = False,
              log_level: str = "info") -> None:
    """Serve the application with uvicorn until Ctrl-C; with ``grade``, the grader (`mlph autograde --watch`,
    every released sheet) runs beside it as a child process and stops with it (its log in the course's data
    directory, linked on the admin page)."""
    import uvicorn

    from autograder.grading.watcher import spawn_grader, stop_child

    grader = spawn_grader(cfg) if grade else None
    try:
        uvicorn.run("web.app:app_from_env", factory=True, host=host, port=port, workers=workers, proxy_headers=False,
                    server_header=False, log_level=log_level)
    finally:
        if grader is not None:
            stop_child(grader)


__all__ = ["create_app", "app_from_env", "serve_app", "HTMLResponse"]


def iter_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every endpoint the app serves (HEAD left out), also inside included routers
    (FastAPI ≥ 0.16x keeps an included router as one entry of ``app.routes``)."""
    from fastapi.routing import APIRoute

    found: list[tuple[str, str]] = []

    def walk(routes: list[object]) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                found.extend((m, route.path) for m in sorted(route.methods or ()) if m != "HEAD")
            elif hasattr(route, "original_router"):
                walk(list(getattr(route, "original_router").routes))

    walk(list(app.routes))
    return found
