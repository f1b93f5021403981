"""Log in, log out, set a password through a one-time link, and the start page (by role)."""
from __future__ import annotations

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from gradebook.people.accounts import MIN_PASSWORD, link_account, redeem_link, verify_login
from gradebook.errors import InputError

from web.security import (PRE_CSRF_COOKIE, SESSION_COOKIE, claim_login_attempt, client_ip, current_user, end_session,
                          engine_of, finish_login_attempt, set_session_cookie, settings_of, start_session)
from web.templating import render

router = APIRouter()


def _safe_next(target: str) -> str:
    """Only a path on this site (no scheme, no host, no ``//``) is followed after the login."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/")
def start(request: Request) -> Response:
    user = current_user(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    target = {"admin": "/admin", "tutor": "/tutor"}.get(user.role, f"/students/{user.subject_id}")
    return RedirectResponse(target, status_code=303)


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    return render(request, "login.html", {"next": _safe_next(next), "username": "", "error": ""})


@router.post("/login")
async def login(request: Request, username: str = Form(max_length=128), password: str = Form(max_length=1024),
                next: str = Form("/")) -> Response:
    engine, settings, ip = engine_of(request), settings_of(request), client_ip(request)
    username = username.strip()
    attempt, wait = await run_in_threadpool(claim_login_attempt, engine, settings, username, ip)
    if attempt is None:
        minutes = (wait + 59) // 60
        raise HTTPException(429, f"Too many failed logins. Try again in {minutes} minute(s).",
                            headers={"Retry-After": str(wait)})
    info = await run_in_threadpool(verify_login, engine, username, password)
    await run_in_threadpool(finish_login_attempt, engine, attempt, info is not None)
    if info is None:
        return render(request, "login.html", {"next": _safe_next(next), "username": username,
                                              "error": "Wrong user name or password (or the account is disabled)."},
                      status_code=401)
    token = await run_in_threadpool(start_session, engine, info.id, settings.session_hours)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(request, response, token)
    response.delete_cookie(PRE_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    user = current_user(request)
    if user is not None:
        end_session(engine_of(request), user.session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/password/{token}")
def password_page(request: Request, token: str) -> Response:
    username = link_account(engine_of(request), token)
    return render(request, "password.html", {"username": username, "error": "", "min_length": MIN_PASSWORD},
                  status_code=200 if username else 404)


@router.post("/password/{token}")
def password_set(request: Request, token: str, password: str = Form(max_length=1024),
                 password2: str = Form(max_length=1024)) -> Response:
    engine = engine_of(request)
    username = link_account(engine, token)
    if username is None:
        return render(request, "password.html", {"username": None}, status_code=404)
    try:
        if password != password2:
            raise InputError("the two passwords differ")
        redeem_link(engine, token, password)
    except InputError as exc:
        return render(request, "password.html", {"username": username, "error": str(exc), "min_length": MIN_PASSWORD},
                      status_code=400)
    return RedirectResponse("/login", status_code=303)
