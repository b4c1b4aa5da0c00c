from processor.authres import sender_check

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
