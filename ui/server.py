"""Serving the web chat: :func:`launch` (login, request limits, the viewer and the OpenAI-compatible API
mounted beside the page) and :func:`serve` (what ``rag serve`` runs, until Ctrl-C).

    from rag import Assistant
    from ui.server import serve
    serve(Assistant(index_dir="index"))          # http://127.0.0.1:7860, until Ctrl-C
"""

import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # no usage reports or version checks, whatever the env says
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr

from rag import Assistant, ConfigError, IndexNotFoundError, InputError

from . import viewer
from .app import build_app
from .guard import CredentialLimiter, LoginGate, LoginLimiter, RateLimit, request_limits, trusted_proxies
from .page import CSS, I18N_EN, PAGE_JS

log = logging.getLogger("ui")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860


def _theme() -> gr.themes.Base:
    """Gradio's default theme with colours that pass a contrast audit (WCAG AA: 4.5:1 for text), and only
    the font files that Gradio ships whole: its SemiBold files hold a few letters, so semi-bold text
    would mix them with another typeface; it is drawn with the Bold file instead."""
    fonts = gr.themes.LocalFont("Source Sans Pro", weights=(400, 700)), "ui-sans-serif", "system-ui", "sans-serif"
    mono = gr.themes.LocalFont("IBM Plex Mono", weights=(400, 700)), "ui-monospace", "Consolas", "monospace"
    return gr.themes.Default(primary_hue="blue", font=fonts, font_mono=mono).set(
        button_primary_background_fill="*primary_700",
        button_primary_background_fill_hover="*primary_800",
        button_primary_text_color="white",
        button_cancel_background_fill="#b91c1c",
        button_cancel_background_fill_hover="#991b1b",
        button_cancel_text_color="white",
        body_text_color_subdued="*neutral_600",
        color_accent="*primary_700",
    )


def auth_from_env(environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """``(user, password)`` from ``RAG_UI_USER`` / ``RAG_UI_PASSWORD``, or None when neither is set."""
    environ = os.environ if environ is None else environ
    user = environ.get("RAG_UI_USER", "")
    password = environ.get("RAG_UI_PASSWORD", "")
    if not user and not password:
        return None
    if not user or not password:
        raise ConfigError("set both RAG_UI_USER and RAG_UI_PASSWORD to require a login, or neither")
    return user, password


def _app_kwargs(
    api: Any = None, requests: tuple[float, float] | None = None, routes: Sequence[Any] = ()
) -> dict[str, Any]:
    """FastAPI options: no /docs or /openapi.json, every route behind the login when one is set (the
    OpenAI-compatible routes of ``api``, mounted first, check their own key), POST requests per client
    address limited to ``requests`` (per minute, burst; default from the environment)."""
    from starlette.middleware import Middleware

    per_minute, burst = requests if requests is not None else request_limits()
    options: dict[str, Any] = {
        "docs_url": None,
        "redoc_url": None,
        "openapi_url": None,
        "middleware": [Middleware(RateLimit, per_minute=per_minute, burst=burst), Middleware(LoginGate)],
    }
    options["routes"] = [*routes, *(api.router.routes if api is not None else [])]
    return options


def launch(
    assistant: Assistant,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    auth: tuple[str, str] | None = None,
    block: bool = True,
    quiet: bool = True,
    api: Any = None,
    requests: tuple[float, float] | None = None,
    **options: Any,
) -> tuple[gr.Blocks, str]:
    """Build the app over ``assistant`` and start serving it; returns the app and its URL.

    ``block=False`` returns at once (the server runs in a thread; stop it with ``app.close()``).
    Safe defaults: analytics off, no extra served paths (and the index directory blocked), the upload
    limit of the settings, no server-side rendering, no monitoring or MCP endpoints. ``options`` go to
    :func:`build_app`. ``api`` (a :class:`ui.openai_api.OpenAIApi`) adds its ``/v1`` routes to the same
    FastAPI app, ahead of Gradio's own; the login form and the API count wrong credentials together.
    ``requests``: requests per minute and burst per client address (default: ``RAG_UI_REQUESTS_PER_MINUTE``
    / ``RAG_UI_REQUEST_BURST``, 120 and 40). ``X-Forwarded-For`` is believed only from the proxies listed
    in ``RAG_UI_TRUSTED_PROXIES``.
    """
    proxies = trusted_proxies()
    app = build_app(assistant, **options)
    max_mb = float(options.get("upload_max_mb") or assistant.settings.upload_max_mb)
    # One count of wrong credentials for the login form and the API (Basic, Bearer, API key).
    limiter = getattr(api, "limiter", None) or CredentialLimiter()
    forwarded = os.environ.get("FORWARDED_ALLOW_IPS")
    os.environ["FORWARDED_ALLOW_IPS"] = proxies  # read by uvicorn when the server starts: trust no one by default
    try:
        _, url, _ = app.launch(
            server_name=host,
            server_port=int(port),
            prevent_thread_lock=True,
            auth=LoginLimiter(*auth, limiter=limiter) if auth else None,
            app_kwargs=_app_kwargs(api, requests, viewer.routes(assistant)),
            max_file_size=int(max_mb * 1e6),
            blocked_paths=[str(Path(assistant.index_dir).resolve())],  # never served, even by mistake
            share=False,
            inbrowser=False,
            quiet=quiet,
            show_error=False,
            ssr_mode=False,
            mcp_server=False,
            enable_monitoring=False,
            run_history=False,
            footer_links=["api"],
            css=CSS,
            theme=_theme(),
            js=PAGE_JS,
            i18n=gr.I18n(en=I18N_EN),
        )
    except OSError as exc:
        raise InputError(
            f"cannot listen on {host}:{port}: the port is in use or the address is not available; "
            "pass another --port or --host"
        ) from exc
    finally:
        if forwarded is None:
            os.environ.pop("FORWARDED_ALLOW_IPS", None)
        else:
            os.environ["FORWARDED_ALLOW_IPS"] = forwarded
    if block:
        try:
            app.block_thread()
        finally:
            app.close()
    return app, str(url)


def serve(
    assistant: Assistant,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    announce: Any = print,
    api: bool = True,
    sources_footer: bool | None = None,
) -> None:
    """``rag serve``: load the model and index, print the URL, serve until interrupted.

    With ``api`` the OpenAI-compatible API (:mod:`ui.openai_api`) is served on the same port under ``/v1``.
    """
    auth = auth_from_env()
    openai_api = None
    if api:
        from .openai_api import ApiSettings, OpenAIApi

        settings = ApiSettings.from_env(host=host)
        if sources_footer is not None:
            settings = dataclasses.replace(settings, sources_footer=sources_footer)
        openai_api = OpenAIApi(assistant, settings)
    try:
        stats = assistant.stats()
        summary = f"{stats['documents']} file(s), {stats['chunks']} chunks in {assistant.index_dir}"
    except IndexNotFoundError:
        summary = f"no index yet at {assistant.index_dir}: upload documents in the Documents tab"
    assistant.warm()  # load the model and the index now, not on the first question

    app, url = launch(assistant, host, port, auth=auth, block=False, api=openai_api)
    announce(f"rag: web chat at {url} ({summary}); Ctrl-C to stop")
    if openai_api is not None:
        announce(f"rag: OpenAI-compatible API at {url.rstrip('/')}/v1 (model 'rag')")
        if openai_api.settings.require_auth and not openai_api.settings.api_key and auth is None:
            announce("rag: warning: the API refuses every request until RAG_API_KEY is set (not a loopback address)")
    if host not in {"127.0.0.1", "localhost", "::1"} and auth is None:
        announce("rag: warning: reachable beyond this machine without a login; set RAG_UI_USER and RAG_UI_PASSWORD")
    try:
        app.block_thread()
    finally:
        app.close()
        if openai_api is not None:
            openai_api.close()
