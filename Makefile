# The two commands of the README: `make demo` and `make test`. Both set up what they need first.
.PHONY: setup demo test bench migrations-check

CHECK_DB := $(CURDIR)/.alembic-check.sqlite3

setup:
	@./scripts/setup.sh

demo: setup
	.venv/bin/republish demo

# Models and migrations must not drift apart, the wings must import one way, then the whole suite.
test: setup migrations-check
	.venv/bin/lint-imports
	.venv/bin/python -m pytest -n 2 -q

# Not part of the tests: the speed and memory figures of the README (about half an hour on two cores).
bench: setup
	.venv/bin/pip install -q -e '.[test,bench]'
	.venv/bin/python -m benchmarks

migrations-check:
	@rm -f $(CHECK_DB)*
	@.venv/bin/python -c "from processor.records import db; db.upgrade(db.make_engine('sqlite:///$(CHECK_DB)'))"
	REPUBLISH_DATABASE_URL=sqlite:///$(CHECK_DB) .venv/bin/alembic check
	@rm -f $(CHECK_DB)*
