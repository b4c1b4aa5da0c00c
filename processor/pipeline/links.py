"""Links on the publication's own site that the catalog does not know yet: fetched and imported before
a group of requests is recorded, in a step of its own.

Fetching takes up to `fetch_timeout` per page, so it happens outside any database transaction (on
SQLite a transaction would hold the one write lock all that time), and the imported stories are
committed on their own. A message's links are looked up once: recording its group again (one by
one, after the group failed as a whole) or in a later pass never fetches them again.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from processor.catalog import stories as catalog
from processor.catalog.fetch import FetchError
from processor.pipeline import corrections
from processor.pipeline.edges import Edges
from processor.pipeline.prepare import Kind, Prepared
from processor.records.errors import database_needed
from processor.urls import url_key

log = logging.getLogger(__name__)
MAX_FETCHES_PER_MESSAGE = 5
REMEMBERED = 20_000  # messages (and imported links) remembered as looked up; the oldest are forgotten first


class LinkImports:
    """Imports the unknown own-site links of messages, and remembers where each imported link led."""

    def __init__(self, edges: Edges) -> None:
        self.edges = edges
        self._looked_up: OrderedDict[str, None] = OrderedDict()  # message keys
        self._imported: OrderedDict[str, str] = OrderedDict()    # link key -> the imported story's url key

    def import_unknown(self, prepared: list[Prepared]) -> dict[str, str]:
        """Fetch and import the links of these messages that are not in the catalog (up to
        MAX_FETCHES_PER_MESSAGE per message); {link key: url key of the story it led to} for the
        imported links these messages name (a canonical URL may differ from the link)."""
        wanted = [ready for ready in prepared if ready.kind is Kind.REQUEST and ready.refs is not None
                  and ready.refs.own_links]
        fresh = [ready for ready in wanted if ready.key not in self._looked_up]
        if fresh:
            self._fetch_and_import(fresh)
        named = {url_key(link) for ready in wanted for link in ready.refs.own_links}
        return {key: self._imported[key] for key in named if key in self._imported}

    def _fetch_and_import(self, fresh: list[Prepared]) -> None:
        links = {url_key(link): link for ready in fresh for link in ready.refs.own_links}
        with database_needed(), self.edges.sessions() as session:
            known = catalog.stories_by_url_keys(session, tuple(key for key in links if key not in self._imported))
        to_fetch: dict[str, str] = {}
        for ready in fresh:
            # Unknown, or known by a feed's summary only: its page makes it whole.
            unknown = [link for link in dict.fromkeys(ready.refs.own_links)
                       if (url_key(link) not in known or known[url_key(link)].summary_only)
                       and url_key(link) not in self._imported]
            for link in unknown[:MAX_FETCHES_PER_MESSAGE]:
                to_fetch.setdefault(url_key(link), link)
        articles = {}
        for key, link in to_fetch.items():
            article = self._fetch(link)
            if article is not None:
                articles[key] = (link, article)
        if articles:
            self._import(articles)
        for ready in fresh:
            self._remember(self._looked_up, ready.key, None)

    def _fetch(self, link: str):
        publication = self.edges.config.publication
        try:
            page = self.edges.fetch(link)
            articles = catalog.parse_source(page.content, url=page.url, publication=publication, charset=page.charset)
        except (FetchError, catalog.ImportFailed) as exc:
            log.info("link %r could not be imported: %s", link[:200], exc)
            return None
        return articles[0] if articles else None

    def _import(self, articles: dict) -> None:
        now = self.edges.clock()
        imported = {}
        with database_needed(), self.edges.sessions() as session:
            for key, (link, article) in articles.items():
                report = catalog.import_articles(session, [article], source=link, now=now)
                # A page read for a request may show a story changed since: its outlets hear of it too.
                corrections.tell_outlets(session, report.revised, config=self.edges.config, now=now,
                                         new_message_id=self.edges.new_message_id)
                if report.created or report.updated:
                    imported[key] = url_key(article.canonical_url)
                else:
                    log.info("link %r could not be imported: %s", link[:200],
                             "; ".join(reason for _, reason in report.failed) or "nothing to import")
            session.commit()
        for key, story_key in imported.items():
            self._remember(self._imported, key, story_key)

    @staticmethod
    def _remember(memory: OrderedDict, key: str, value) -> None:
        memory[key] = value
        memory.move_to_end(key)
        while len(memory) > REMEMBERED:
            memory.popitem(last=False)
