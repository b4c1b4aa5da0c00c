from sqlalchemy import select

from models import Request
from processor.app import build_worker
from processor.pipeline.authres import sender_check
from tests.helpers import request_message

OURS = "mx.riversideledger.example"


def headers(*values):
    return tuple(("authentication-results", v) for v in values)


def test_dmarc_pass_from_our_server_is_trusted():
    assert sender_check(headers(f"{OURS}; spf=pass smtp.mailfrom=valleynews.example; dmarc=pass (p=reject) "
                                "header.from=valleynews.example"), OURS, "p@valleynews.example") is None


def test_aligned_dkim_pass_is_trusted_and_unaligned_is_not():
    assert sender_check(headers(f"{OURS} 1; dkim=pass header.d=valleynews.example header.s=s1"), OURS,
                        "p@mail.valleynews.example") is None
    reason = sender_check(headers(f"{OURS}; dkim=pass header.d=mailer.example; dmarc=none"), OURS, "p@valleynews.example")
    assert reason and "dkim=pass" in reason and "dmarc=none" in reason


def test_results_from_other_servers_are_not_believed():
    forged = headers("mx.attacker.example; dmarc=pass header.from=valleynews.example")
    assert "no Authentication-Results header from" in sender_check(forged, OURS, "p@valleynews.example")


def test_only_the_topmost_header_of_our_server_counts():
    # A sender may add a fake header with our name below the one our server added on receipt.
    stacked = headers(f"{OURS}; dmarc=fail header.from=valleynews.example",
                      f"{OURS}; dmarc=pass header.from=valleynews.example")
    assert "dmarc=fail" in sender_check(stacked, OURS, "p@valleynews.example")


def test_comments_do_not_confuse_the_parser():
    value = f"{OURS} (our mx); dkim=pass (2048-bit key) header.d=valleynews.example; dmarc=pass (p=none dis=none)"
    assert sender_check(headers(value), OURS, "p@valleynews.example") is None


def test_the_worker_sends_unauthenticated_requests_to_a_person(maildir_pipeline):
    bike = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"
    new = maildir_pipeline["maildir"] / "new"
    passing = f"{OURS}; dkim=pass header.d=valleynews.example; dmarc=pass header.from=valleynews.example"
    new.joinpath("1.eml").write_bytes(request_message(body=bike, message_id="<good@valleynews.example>",
                                                      headers={"Authentication-Results": passing}))
    new.joinpath("2.eml").write_bytes(request_message(body=bike, message_id="<forged@valleynews.example>",
                                                      headers={"Authentication-Results": "mx.attacker.example; dmarc=pass"}))
    config = maildir_pipeline["configure"](f'require_authenticated_sender = true\nauthserv_id = "{OURS}"\n')
    worker, engine = build_worker(config)
    worker.run(once=True)
    worker.close()
    engine.dispose()
    with maildir_pipeline["sessions"]() as session:
        outcomes = dict(session.execute(select(Request.message_key, Request.outcome)).all())
    assert outcomes == {"good@valleynews.example": "answered", "forged@valleynews.example": "needs_person"}
    assert len(list(maildir_pipeline["outbox"].glob("*.eml"))) == 1


def test_a_dmarc_pass_counts_only_for_the_from_domain_it_names():
    """A pass for the attacker's own domain (header.from) said nothing about the From the tool uses."""
    for_another = headers(f"{OURS}; dmarc=pass header.from=attacker.example")
    assert "dmarc=pass" in sender_check(for_another, OURS, "priya@valleynews.example")
    assert sender_check(headers(f"{OURS}; dmarc=pass"), OURS, "priya@valleynews.example")  # names none
    assert sender_check(headers(f"{OURS}; dmarc=pass header.from=valleynews.example"), OURS,
                        "priya@valleynews.example") is None
    # DKIM alignment is organisational: a sibling under a public suffix is another organisation.
    assert sender_check(headers(f"{OURS}; dkim=pass header.d=other.co.uk"), OURS, "p@valley.co.uk")
    assert sender_check(headers(f"{OURS}; dkim=pass header.d=mail.valley.co.uk"), OURS, "p@news.valley.co.uk") is None


def test_a_from_header_holding_two_addresses_is_not_trusted(maildir_pipeline):
    bike = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"
    passing = f"{OURS}; dmarc=pass header.from=valleynews.example"
    maildir_pipeline["maildir"].joinpath("new", "1.eml").write_bytes(request_message(
        sender="priya@valleynews.example (x) <x@attacker.example>", body=bike,
        message_id="<two@valleynews.example>", headers={"Authentication-Results": passing}))
    maildir_pipeline["run"](f'require_authenticated_sender = true\nauthserv_id = "{OURS}"\n')
    with maildir_pipeline["sessions"]() as session:
        outcome, reason = session.execute(select(Request.outcome, Request.reason)).one()
    assert outcome == "needs_person" and "From header holds 2 addresses" in reason
    assert not list(maildir_pipeline["outbox"].glob("*.eml"))
