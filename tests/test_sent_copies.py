"""Copies of replies in Sent: found or made on any server, never two of one reply, left to providers that
file their own."""

from dataclasses import replace

from processor.mail.imap import ImapSource
from tests.helpers import deliver, imap_client, request_message, sent_folder_count

BIKE = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"


def _sent_raws(user) -> list[bytes]:
    client = imap_client(user)
    client.select_folder("Sent", readonly=True)
    raws = [data[b"BODY[]"] for data in client.fetch(client.search("ALL"), ["BODY.PEEK[]"]).values()]
    client.logout()
    return raws


def test_a_copy_already_in_sent_is_not_saved_again(pipeline):
    user = pipeline["user"]
    deliver(user, request_message(body=BIKE, message_id="<once@valleynews.example>"))
    assert pipeline["run"]().replies_sent == 1
    assert sent_folder_count(user) == 1
    copy = _sent_raws(user)[0]
    source = ImapSource(pipeline["config"].imap)
    try:
        source.save_sent([copy])  # e.g. saved before a crash, or filed by the provider: already there
        assert sent_folder_count(user) == 1
        assert source.sent_copies(["not-there@x.example", copy.split(b"Message-ID: <")[1].split(b">")[0].decode()])
        # The watched folder is selected again afterwards: the next search and marks work on it.
        deliver(user, request_message(sender="desk@harborgazette.example", body=BIKE,
                                      message_id="<after@harborgazette.example>"))
        assert [len(batch) for batch in source.batches(10, 10_000_000)] == [1]
    finally:
        source.close()


def test_save_sent_never_and_auto_with_a_provider_that_files_its_own(pipeline):
    user, config = pipeline["user"], pipeline["config"]
    deliver(user, request_message(body=BIKE, message_id="<never@valleynews.example>"))
    pipeline["run"](replace(config, imap=replace(config.imap, save_sent="never")))
    assert sent_folder_count(user) == 0
    deliver(user, request_message(sender="desk@harborgazette.example", body=BIKE,
                                  message_id="<gmail@harborgazette.example>"))
    pipeline["run"](replace(config, imap=replace(config.imap, provider="google")))  # save_sent = "auto"
    assert sent_folder_count(user) == 0  # Google files what its SMTP sends: a copy of ours would be a second
    deliver(user, request_message(sender="desk@lakesidetimes.example", body=BIKE,
                                  message_id="<always@lakesidetimes.example>"))
    pipeline["run"](replace(config, imap=replace(config.imap, provider="google", save_sent="always")))
    assert sent_folder_count(user) == 1
