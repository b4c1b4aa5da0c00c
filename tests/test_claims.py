"""Claims between workers: PostgreSQL advisory locks, kept apart per schema."""

from __future__ import annotations

import pytest

from processor.records import db
from processor.records.claims import PostgresClaims
from tests.servers import missing, postgres_url


@pytest.fixture
def two_schemas():
    first, second = postgres_url(), postgres_url()
    if first[0] is None:
        missing(f"PostgreSQL not reachable on 127.0.0.1:5432 ({first[1]})", "start it with trust auth and a database `test`")
    engines = [db.make_engine(first[0]), db.make_engine(first[0]), db.make_engine(second[0])]
    yield engines
    for engine in engines:
        engine.dispose()
    first[2]()
    second[2]()


def test_a_claim_is_held_by_one_worker_of_an_installation_and_released_with_it(two_schemas):
    same_a, same_b, other = (PostgresClaims(engine) for engine in two_schemas)
    assert same_a.take("outbox:1")
    assert not same_b.take("outbox:1")   # the other worker of this installation must leave it alone
    assert other.take("outbox:1")        # another installation in its own schema is not affected
    same_a.close()                       # a worker that stops (or dies) lets go of what it held
    assert same_b.take("outbox:1")
    for claims in (same_b, other):
        claims.close()
