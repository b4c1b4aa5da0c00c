# The two commands of the README: `make demo` and `make test`. Both set up what they need first.
.PHONY: setup demo test migrations-check

CHECK_DB := $(CURDIR)/.alembic-check.sqlite3

setup:
	@./scripts/setup.sh

demo: setup
	.venv/bin/republish demo

# Models and migrations must not drift apart, then the whole suite.
test: setup migrations-check
	.venv/bin/python -m pytest -n 2 -q

migrations-check:
	@rm -f $(CHECK_DB)*
	@.venv/bin/python -c "from processor import db; db.upgrade(db.make_engine('sqlite:///$(CHECK_DB)'))"
	REPUBLISH_DATABASE_URL=sqlite:///$(CHECK_DB) .venv/bin/alembic check
	@rm -f $(CHECK_DB)*
