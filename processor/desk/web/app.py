"""The dashboard's HTTP edge (Starlette): authentication, pages, CSV export, the pixel.

Pages are plain server-rendered HTML. Database reads run in Starlette's thread pool; the pixel
answers without touching the database at all and leaves its hit to the background writer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from urllib.parse import parse_qs, quote, urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from processor.records import db
from processor.config import Config, WebConfig
from processor.desk.corrections import notice_status
from processor.desk.csv_export import csv_chunks
from processor.desk.web import charts, counting, queries, sessions
from processor.desk.web.limits import HeaderLimits
from processor.desk.web.logins import LOGIN_FORM_SECONDS, Busy, LoginGuard
from processor.desk.web.hits import BATCH_SIZE, FLUSH_SECONDS, Hit, HitQueue, write_hits

log = logging.getLogger("processor.desk.web")

# A 1x1 transparent GIF.
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
PIXEL_HEADERS = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
    # Pages that isolate themselves (COEP) may still load it.
    "Cross-Origin-Resource-Policy": "cross-origin",
}
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'",
}


MAX_FORM_BYTES = 256 * 1024  # an answer of 20,000 characters in any script, percent-encoded, fits
MAX_NOTE_CHARS = 600         # of what happened, carried back to the queue in its address


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("processor", "templates/web"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = lambda value: value.strftime("%Y-%m-%d %H:%M") if value else ""
    env.filters["day"] = lambda value: value.strftime("%Y-%m-%d") if value else ""
    env.filters["q"] = lambda params: urlencode({k: v for k, v in params.items() if v})
    env.filters["path"] = lambda value: quote(str(value), safe="")
    env.filters["notice_status"] = notice_status
    return env


class Authenticated:
    def __init__(self, session: sessions.Session, fresh: bool) -> None:
        self.session = session
        self.fresh = fresh  # a new cookie to send with the response

    @property
    def user(self) -> str:
        return self.session.user


class Dashboard:
    def __init__(self, config: Config, engine: Engine, *, clock=time.time,
                 send_reply: Callable[[int], bool | None] | None = None) -> None:
        if config.web is None:
            raise ValueError("the [web] table is missing from the config")
        self.config = config
        self.web: WebConfig = config.web
        self.engine = engine
        self.sessions = db.make_session_factory(engine)
        self.clock = clock
        self.send_reply = send_reply  # sends one queued reply (outbox id); None: the worker sends them all
        # Behind a login proxy without a configured secret, a per-process one signs the CSRF cookie.
        secret = self.web.session_secret.reveal() if self.web.session_secret else secrets.token_urlsafe(32)
        self.secret = secret.encode("utf-8")
        self.templates = _environment()
        self.hits = HitQueue()
        self.reloads = counting.ReloadMemory()
        self.pixel_limits = counting.PixelLimits()
        self._wake = asyncio.Event()
        self.write_failures = 0
        self.logins = LoginGuard()

    # -- authentication ---------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Authenticated | Response:
        now = self.clock()
        current = sessions.decode(request.cookies.get(sessions.COOKIE_NAME), self.secret, now)
        if self.web.trusted_user_header:
            user = request.headers.get(self.web.trusted_user_header, "").strip()
            if not user:
                return self.page(request, None, "message.html.j2", status=401, title="Not logged in",
                                 message=f"The login proxy did not send {self.web.trusted_user_header}.")
            if current is None or current.user != user:
                return Authenticated(sessions.new_session(user, now), fresh=True)
            return Authenticated(current, fresh=False)
        if current is None or not current.user:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
        return Authenticated(current, fresh=False)

    def set_cookie(self, response: Response, session: sessions.Session) -> None:
        response.set_cookie(sessions.COOKIE_NAME, sessions.encode(session, self.secret),
                            max_age=sessions.LIFETIME_SECONDS, httponly=True, samesite="lax",
                            secure=self.web.cookie_secure, path="/")

    def page(self, request: Request, auth: Authenticated | None, template: str, *, status: int = 200,
             **context) -> HTMLResponse:
        html = self.templates.get_template(template).render(
            user=auth.user if auth else "", csrf=auth.session.csrf if auth else "", path=request.url.path,
            password_login=bool(self.web.password_hash), **context)
        response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
        if auth is not None and auth.fresh:
            self.set_cookie(response, auth.session)
        return response

    async def form(self, request: Request, auth: Authenticated | None = None) -> dict[str, str] | Response:
        """The posted form, or a 403 page when its CSRF token is not this session's."""
        raw = bytearray()
        async for chunk in request.stream():
            raw.extend(chunk)
            if len(raw) > MAX_FORM_BYTES:  # cut short, a form would lose its last field (the button pressed)
                return self.page(request, None, "message.html.j2", status=413, title="Form too long",
                                 message=f"What was sent is over {MAX_FORM_BYTES // 1024} KB: shorten it and try again.")
        fields = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}
        session = auth.session if auth else sessions.decode(request.cookies.get(sessions.COOKIE_NAME), self.secret,
                                                            self.clock())
        if not sessions.csrf_ok(session, fields.get("csrf")):
            return self.page(request, None, "message.html.j2", status=403, title="Form expired",
                             message="This form was not sent from this session: reload the page and try again.")
        return fields

    async def login_form(self, request: Request) -> Response:
        if not self.web.password_hash:
            return RedirectResponse("/", status_code=303)
        return self._login_page(request, _local(request.query_params.get("next", "/")), "")

    def _login_page(self, request: Request, target: str, error: str, status: int = 200) -> HTMLResponse:
        """The login form, with a token of its own for one attempt within LOGIN_FORM_SECONDS."""
        anonymous = Authenticated(sessions.new_session("", self.clock(), LOGIN_FORM_SECONDS), fresh=True)
        return self.page(request, anonymous, "login.html.j2", status=status, next=target, error=error)

    async def login(self, request: Request) -> Response:
        if not self.web.password_hash:
            return RedirectResponse("/", status_code=303)
        fields = await self.form(request)
        if isinstance(fields, Response):
            return fields
        name = " ".join(fields.get("name", "").split())[:120]
        target = _local(fields.get("next", "/"))
        now = self.clock()
        keys = self.logins.keys(request.client.host if request.client else "", name)
        wait = self.logins.throttle.wait_seconds(keys, now)
        if wait:
            response = self._login_page(request, target, f"Too many failed logins: try again in "
                                                         f"{max(1, round(wait / 60))} minute(s).", status=429)
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        if not self.logins.used_tokens.use(fields["csrf"], now):
            return self._login_page(request, target, "This form was used already: please log in again.", status=403)
        if not name:
            return self._login_page(request, target, "Please give your name (it goes in the log).", status=400)
        self.logins.throttle.attempt(keys, now)
        try:
            ok = await self.logins.verify(fields.get("password", ""), self.web.password_hash)
        except Busy:
            return self._login_page(request, target, "Too many logins at once: try again in a minute.", status=503)
        if not ok:
            return self._login_page(request, target, "Wrong password.", status=401)
        self.logins.throttle.succeeded(keys)
        response = RedirectResponse(target, status_code=303)
        self.set_cookie(response, sessions.new_session(name, self.clock()))
        return response

    async def logout(self, request: Request) -> Response:
        fields = await self.form(request)
        if isinstance(fields, Response):
            return fields
        response = RedirectResponse("/login" if self.web.password_hash else "/", status_code=303)
        response.delete_cookie(sessions.COOKIE_NAME, path="/")
        return response

    # -- pages ------------------------------------------------------------------------------------

    def overview(self, request: Request) -> Response:
        auth = self.authenticate(request)
        if isinstance(auth, Response):
            return auth
        now = datetime.now(timezone.utc)
        with self.sessions() as session:
            points = queries.pickups_per_week(session, weeks=26, today=now.date())
            context = dict(
                totals=queries.totals(session), chart=charts.weekly_bars(points),
                top_stories=queries.top_stories(session), top_outlets=queries.top_outlets(session),
                missing=queries.pixel_missing(session, now),
                unreported=queries.unreported_pickups(session, self.config.publication.allowed_hosts),
            )
        return self.page(request, auth, "overview.html.j2", hits_dropped=self.hits.dropped,
                         hits_limited=self.hits.limited, hits_unknown=self.hits.unknown,
                         write_failures=self.write_failures, **context)

    def pickup_log(self, request: Request) -> Response:
        auth = self.authenticate(request)
        if isinstance(auth, Response):
            return auth
        flt, problems = queries.parse_filter(request.query_params)
        with self.sessions() as session:
            page = queries.log_page(session, flt, after=request.query_params.get("after", ""))
        return self.page(request, auth, "log.html.j2", flt=flt, params=flt.as_params(), problems=problems,
                         log=page, first_page=not request.query_params.get("after"))

    def pickup_csv(self, request: Request) -> Response:
        auth = self.authenticate(request)
        if isinstance(auth, Response):
            return auth
        flt, _ = queries.parse_filter(request.query_params)
        return StreamingResponse(self._csv_lines(flt), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": 'attachment; filename="pickups.csv"'})

    def _csv_lines(self, flt: queries.LogFilter):
        columns = ["first_requested", "last_requested", "outlet", "story", "title", "decision", "requests", "views",
                   "first_view", "last_view", "hosts"]
        with self.sessions() as session:
            yield from csv_chunks(columns, ((
                row.first_requested_at.isoformat(timespec="seconds"), row.last_requested_at.isoformat(timespec="seconds"),
                row.outlet, row.story_url, row.story_title, row.decision, requests, pixel.views,
                pixel.first_hit.isoformat(timespec="seconds") if pixel.first_hit else "",
                pixel.last_hit.isoformat(timespec="seconds") if pixel.last_hit else "", " ".join(pixel.hosts))
                for row, pixel, requests in queries.log_rows_for_export(session, flt)))

    def outlet(self, request: Request) -> Response:
        return self._detail(request, queries.outlet_page, request.path_params["outlet_id"], "outlet")

    def story_list(self, request: Request) -> Response:
        """Every story with how often it was granted and declined; ?q= searches titles and URLs, ?sort= orders
        them (newest first by default)."""
        from processor.desk.story_stats import story_counts

        auth = self.authenticate(request)
        if isinstance(auth, Response):
            return auth
        search = request.query_params.get("q", "").strip()[:200]
        with self.sessions() as session:
            rows = story_counts(session, search=search or None)  # newest first
        sort, rows = _sorted(rows, request.query_params.get("sort", ""), STORY_ORDERS)
        return self.page(request, auth, "stories.html.j2", rows=rows[:500], total=len(rows), q=search, sort=sort)

    def outlet_list(self, request: Request) -> Response:
        """Every outlet with its pickups and requests; ?q= searches keys and names, ?sort= orders them."""
        from processor.desk.outlets import list_outlets

        auth = self.authenticate(request)
        if isinstance(auth, Response):
            return auth
        search = request.query_params.get("q", "").strip().lower()[:200]
        with self.sessions() as session:
            rows = [row for row in list_outlets(session)
                    if not search or search in row.key.lower() or search in row.display_name.lower()]
        sort, rows = _sorted(rows, request.query_params.get("sort", ""), OUTLET_ORDERS)
        return self.page(request, auth, "outlets.html.j2", rows=rows[:500], total=len(rows), q=search, sort=sort)

    def request_page(self, request: Request) -> Response:
        """One request: what the partner wrote, what was decided and why, the reply as it went out."""
        from processor.desk.inbound_log import request_detail

        return self._detail(request, request_detail, request.path_params["request_id"], "request")

    def story(self, request: Request) -> Response:
        from processor.desk.corrections import revision_count, revisions_of
        from processor.desk.story_preview import preview

        def load(session, story_id: int):
            data = queries.story_page(session, story_id)
            return None if data is None else replace(data, preview=preview(data.story, self.config.publication),
                                                     revisions=tuple(revisions_of(session, story_id)),
                                                     revision_total=revision_count(session, story_id))

        return self._detail(request, load, request.path_params["story_id"], "story")

    def _detail(self, request: Request, load, item_id: int, kind: str) -> Response:
        """One outlet's or story's page, or a 404 saying there is no such thing."""
        auth = self.authenticate(request)
        if isinstance(auth, Response):
            return auth
        with self.sessions() as session:
            data = load(session, item_id)
        if data is None:
            return self.page(request, auth, "message.html.j2", status=404, title=f"No such {kind}", message="")
        return self.page(request, auth, f"{kind}.html.j2", data=data)

    async def review(self, request: Request) -> Response:
        auth = self.authenticate(request)
        if isinstance(auth, Response):
            return auth
        from processor.desk.corrections import waiting_notices
        from processor.desk.review import recent_titles, review_queue

        def load():
            with self.sessions() as session:
                return review_queue(session, limit=200), recent_titles(session), waiting_notices(session)

        items, titles, notices = await run_in_threadpool(load)
        notes = {kind: request.query_params.get(kind, "") for kind in ("outcome", "failed")}
        shown = {kind: note if sessions.note_ok(auth.session, self.secret, f"{kind}:{note}",
                                                request.query_params.get("sig")) else ""
                 for kind, note in notes.items()}
        return self.page(request, auth, "review.html.j2", items=items, titles=titles, notices=notices, **shown)

    async def resolve(self, request: Request) -> Response:
        from processor.desk.review import ReviewError, reopen, reply_status, resolve, send_now

        request_id = request.path_params["request_id"]

        def act(auth: Authenticated, fields: dict[str, str]) -> str:
            action = fields.get("action", "")
            # One story a line: its address, or words of its title (the field suggests the catalog's titles).
            story_refs = tuple(line.strip() for line in fields.get("story", "").splitlines() if line.strip())[:20]
            with self.sessions() as session:
                if action == "reopen":
                    summary = reopen(session, request_id, editor=auth.user, now=datetime.now(timezone.utc))
                else:
                    summary = resolve(session, request_id, action, editor=auth.user, config=self.config,
                                      now=datetime.now(timezone.utc), story_refs=story_refs,
                                      note=fields.get("note", ""))
                session.commit()
            if action in ("dismiss", "reopen"):
                return summary
            if self.send_reply is None:
                with self.sessions() as session:
                    return f"{summary}; {reply_status(session, request_id)}"
            return f"{summary}; {send_now(self.sessions, request_id, self.send_reply)}"

        return await self._queue_form(request, act, ReviewError)

    async def decide_notice(self, request: Request) -> Response:
        """Send or drop a correction notice that waits for an editor."""
        from processor.pipeline.corrections import NoticeError, decide_notice
        from processor.pipeline.edges import new_message_id
        from processor.records.notices import outbox_of

        notice_id = request.path_params["notice_id"]

        def act(auth: Authenticated, fields: dict[str, str]) -> str:
            action = fields.get("action", "")
            if action not in ("send", "drop"):  # a dropped notice cannot be brought back: only ever on purpose
                raise NoticeError(f"unknown action {action[:40]!r}: use Send or Drop")
            send = action == "send"
            with self.sessions() as session:
                summary = decide_notice(session, notice_id, send, editor=auth.user, config=self.config,
                                        now=datetime.now(timezone.utc), new_message_id=new_message_id)
                session.commit()
                queued = outbox_of(session, notice_id)
            if send and queued is not None and self.send_reply is not None:
                sent = self.send_reply(queued)
                summary += "; the running worker sends it" if sent is None else ("; sent" if sent else
                                                                                 "; not sent yet, the worker retries it")
            return summary

        return await self._queue_form(request, act, NoticeError)

    async def _queue_form(self, request: Request, act, refused: type[Exception]) -> Response:
        """A form from the review queue: the editor logged in and the form this session's; `act(auth, fields)`
        run off the event loop; back to the queue, which shows what it said, or why it was `refused`."""
        auth = self.authenticate(request)
        if isinstance(auth, Response):
            return auth
        fields = await self.form(request, auth)
        if isinstance(fields, Response):
            return fields
        try:
            kind, note = "outcome", await run_in_threadpool(act, auth, fields)
        except refused as exc:
            kind, note = "failed", str(exc)
        return self._back_to_queue(auth, kind, note)

    def _back_to_queue(self, auth: Authenticated, kind: str, note: str) -> Response:
        """To the review queue, which shows what happened: the note signed for this session, and short
        enough for any proxy's header buffer (a long address typed in a form comes back in it)."""
        note = note if len(note) <= MAX_NOTE_CHARS else note[:MAX_NOTE_CHARS] + " […]"
        signature = sessions.sign_note(auth.session, self.secret, f"{kind}:{note}")
        return RedirectResponse(f"/review?{urlencode({kind: note, 'sig': signature})}", status_code=303)

    # -- the pixel --------------------------------------------------------------------------------

    async def pixel(self, request: Request) -> Response:
        """Always the GIF, at once: whatever is wrong with the hit is the writer's business."""
        token = request.path_params.get("token", "")
        story = request.query_params.get("story", "")
        if not counting.valid_token(token):
            token = ""
        story_id = int(story) if story.isdigit() and len(story) < 12 else None
        key = token or f"story:{story_id}"
        client = request.client.host if request.client else ""
        if (token or story_id is not None) and not self.pixel_limits.may_store(client, key):
            self.hits.limited += 1
        elif token or story_id is not None:
            user_agent = request.headers.get("user-agent", "")[:512]
            referer = request.headers.get("referer", "")[:2048]
            verdict = counting.verdict(user_agent, referer, key, self.reloads)
            if verdict.counted and not self.pixel_limits.plausible_view(client, key):
                verdict = counting.Verdict(False, "rate")
            page_url, host = counting.page_of(referer)
            self.hits.put(Hit(token=token, story_id=story_id, hit_at=datetime.now(timezone.utc), page_url=page_url,
                              page_host=host, counted=verdict.counted, reason=verdict.reason))
            if len(self.hits) >= BATCH_SIZE:
                self._wake.set()
        return Response(PIXEL_GIF, media_type="image/gif", headers=PIXEL_HEADERS)

    async def flush_hits(self) -> None:
        while len(self.hits):
            batch = self.hits.take(BATCH_SIZE)
            try:
                await run_in_threadpool(self._write, batch)
            except Exception as exc:  # these hits are lost; the next batch tries again
                self.write_failures += 1
                self.hits.dropped += len(batch)
                if isinstance(exc, SQLAlchemyError):  # the database is away: expected now and then
                    log.warning("could not record %d pixel hits: %s", len(batch), str(exc).splitlines()[0])
                else:  # a bug: with its traceback
                    log.exception("could not record %d pixel hits", len(batch))
                return

    def _write(self, batch: list[Hit]) -> None:
        with self.sessions() as session:
            _, unknown = write_hits(session, batch)
            session.commit()
        self.hits.unknown += unknown

    async def hit_writer(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_SECONDS)
            self._wake.clear()
            await self.flush_hits()

    @contextlib.asynccontextmanager
    async def lifespan(self, _app):
        self._wake = asyncio.Event()  # bound to the server's own event loop
        writer = asyncio.create_task(self.hit_writer())
        try:
            yield
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            await self.flush_hits()
            self.logins.close()


def _local(target: str) -> str:
    """Only paths on this site: `next=https://elsewhere` must not send an editor away after login."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


# The orders a list can be sorted in, by a column's name: (key, largest first). Text goes A to Z, counts
# largest first; the list's own order (stories newest first, outlets by domain) is the first named.
STORY_ORDERS = {"published": (None, False), "title": (lambda r: r.title.casefold(), False),
                "granted": (lambda r: r.granted, True), "declined": (lambda r: r.declined, True)}
OUTLET_ORDERS = {"outlet": (None, False), "pickups": (lambda r: r.pickups, True),
                 "requests": (lambda r: r.requests, True)}


def _sorted(rows: list, wanted: str, orders: dict) -> tuple[str, list]:
    """(the order used, the rows in it); an unknown order is the list's own."""
    sort = wanted if wanted in orders else next(iter(orders))
    key, largest_first = orders[sort]
    return sort, rows if key is None else sorted(rows, key=key, reverse=largest_first)


def build_app(config: Config, engine: Engine | None = None, *,
              send_reply: Callable[[int], bool | None] | None = None) -> Starlette:
    """The dashboard; `send_reply` sends a reply an editor queued at once (else a running worker sends it)."""
    dashboard = Dashboard(config, engine or db.make_engine(config.database_url), send_reply=send_reply)
    routes = [
        Route("/", dashboard.overview),
        Route("/login", dashboard.login_form, methods=["GET"]),
        Route("/login", dashboard.login, methods=["POST"]),
        Route("/logout", dashboard.logout, methods=["POST"]),
        Route("/pickups", dashboard.pickup_log),
        Route("/pickups.csv", dashboard.pickup_csv),
        Route("/requests/{request_id:int}", dashboard.request_page),
        Route("/outlets", dashboard.outlet_list),
        Route("/stories", dashboard.story_list),
        Route("/outlets/{outlet_id:int}", dashboard.outlet),
        Route("/stories/{story_id:int}", dashboard.story),
        Route("/review", dashboard.review, methods=["GET"]),
        Route("/review/{request_id:int}", dashboard.resolve, methods=["POST"]),
        Route("/notices/{notice_id:int}", dashboard.decide_notice, methods=["POST"]),
        Route("/px/{token}.gif", dashboard.pixel, methods=["GET", "HEAD"]),
        Route("/px.gif", dashboard.pixel, methods=["GET", "HEAD"]),
    ]
    app = Starlette(routes=routes, lifespan=dashboard.lifespan, middleware=[Middleware(HeaderLimits)])
    app.state.dashboard = dashboard
    return app
