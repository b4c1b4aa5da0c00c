import logging

from processor.logs import OneLineFormatter


def test_a_log_line_cannot_be_split_or_forged_by_email_content():
    formatter = OneLineFormatter("%(levelname)s %(message)s")
    subject = "republish\r\nWARNING processor.pipeline.worker: reply sent to boss@riversideledger.example\x1b[2J"
    record = logging.LogRecord("processor", logging.INFO, __file__, 1, "request from %r: %s", ("x", subject), None)
    line = formatter.format(record)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert "\\r\\nWARNING" in line and "\\x1b" in line
