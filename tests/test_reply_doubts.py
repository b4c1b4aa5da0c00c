"""What a run that could not send says, and replies left in doubt by a stopped worker found in Sent."""

import subprocess
import sys
from datetime import datetime, timezone

from sqlalchemy import select, update

from models import OutboxMessage
from tests.conftest import pipeline_on
from tests.helpers import deliver, request_message, wait_until
from tests.servers import free_port

BIKE = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"


def test_run_once_exits_1_naming_the_cause_when_replies_could_not_be_sent(pipeline):
    user = pipeline["user"]
    deliver(user, request_message(body=BIKE, message_id="<down@valleynews.example>"))
    dead = free_port()  # nothing listens there: the SMTP server is down
    path = pipeline["path"]
    text = path.read_text()
    path.write_text(text.replace(f"port = {pipeline['smtp'].port}", f"port = {dead}"))
    result = subprocess.run([sys.executable, "-m", "processor.cli", "--config", str(path), "run", "--once"],
                            env={**pipeline["env"], "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "1 request(s) handled, 0 reply(ies) sent, 1 waiting to be sent" in result.stdout
    assert "1 reply(ies) could not be sent" in result.stderr and "SMTP" in result.stderr
    path.write_text(text)  # the server is back: once its retry is due, the reply goes out and the run exits 0
    with pipeline["sessions"]() as session:
        due = session.scalar(select(OutboxMessage.next_attempt_at))
    assert wait_until(lambda: datetime.now(timezone.utc) >= due, 10)
    result = subprocess.run([sys.executable, "-m", "processor.cli", "--config", str(path), "run", "--once"],
                            env={**pipeline["env"], "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "1 reply(ies) sent" in result.stdout, result.stderr[-2000:]


def test_a_reply_left_in_doubt_whose_copy_is_in_sent_is_recorded_sent(tmp_path, database_url, gmail_like_user,
                                                                     gmail_filing_smtp_server):
    """Gmail files what its SMTP takes: a worker killed before recording "sent" left proof in Sent."""
    user, smtp = gmail_like_user, gmail_filing_smtp_server
    with pipeline_on(tmp_path, database_url, user, smtp, imap_extra='provider = "google"\nauth = "password"\n') as pipeline:
        deliver(user, request_message(body=BIKE, message_id="<doubt@valleynews.example>"),
                request_message(sender="desk@harborgazette.example", body=BIKE,
                                message_id="<lost@harborgazette.example>"))
        assert pipeline["run"]().replies_sent == 2
        with pipeline["sessions"]() as session:
            rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
            # As a kill -9 between the server's "250" and the commit leaves it: still "handed_over".
            session.execute(update(OutboxMessage).where(OutboxMessage.id == rows[0].id).values(status="handed_over"))
            # And one the server may not have kept (no copy anywhere): it must still go to a person.
            session.execute(update(OutboxMessage).where(OutboxMessage.id == rows[1].id)
                            .values(status="handed_over", message_id="never-sent@riversideledger.example"))
            session.commit()
        pipeline["run"]()
        with pipeline["sessions"]() as session:
            states = [(row.status, row.last_error or "") for row in
                      session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]
        assert states[0][0] == "sent"
        assert states[1][0] == "unknown" and "check the Sent folder" in states[1][1]
        assert len(smtp.messages) == 2  # nothing sent again
