"""`republish serve`: the editors' dashboard (pickup log, charts, outlets, stories, review queue) and the
tracking pixel. Pure rules live in their own modules; `app.py` is the HTTP edge."""
