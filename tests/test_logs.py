import logging

from processor.logs import OneLineFormatter


def test_a_log_line_cannot_be_split_or_forged_by_email_content():
    formatter = OneLineFormatter("%(levelname)s %(message)s")
    subject = "republish\r\nWARNING processor.pipeline.worker: reply sent to boss@riversideledger.example\x1b[2J"
    record = logging.LogRecord("processor", logging.INFO, __file__, 1, "request from %r: %s", ("x", subject), None)
    line = formatter.format(record)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert "\\r\\nWARNING" in line and "\\x1b" in line


def test_the_worker_names_a_request_by_its_id_and_logs_no_address(maildir_pipeline, caplog):
    """The log said `request 9` where 9 was the mailbox UID (a Maildir file name in the demo), and the queue's
    9 was another request; it also wrote the partner's address."""
    import logging

    from tests.helpers import request_message

    bike = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"
    maildir_pipeline["maildir"].joinpath("new", "1700000000.M1P1.host").write_bytes(
        request_message(sender="Priya <priya@valleynews.example>", body=bike))
    with caplog.at_level(logging.INFO, logger="processor"):
        maildir_pipeline["run"]()
    lines = [record.getMessage() for record in caplog.records if record.getMessage().startswith("request ")]
    assert lines and lines[0].startswith("request 1 (message 1700000000.M1P1.host): answered")
    assert not any("priya@valleynews.example" in record.getMessage() for record in caplog.records)
