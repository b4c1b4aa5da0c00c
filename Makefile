# The two commands of the README: `make demo` and `make test`. Both set up what they need first.
.PHONY: setup demo test

setup:
	@./scripts/setup.sh

demo: setup
	.venv/bin/republish demo

test: setup
	.venv/bin/python -m pytest -n 2 -q
	REPUBLISH_DATABASE_URL=sqlite:///$(CURDIR)/.alembic-check.sqlite3 .venv/bin/python -c "from processor import db; db.upgrade(db.make_engine('sqlite:///$(CURDIR)/.alembic-check.sqlite3'))"
	REPUBLISH_DATABASE_URL=sqlite:///$(CURDIR)/.alembic-check.sqlite3 .venv/bin/alembic check
	@rm -f .alembic-check.sqlite3*
