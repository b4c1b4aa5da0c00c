"""Messages shaped to make parsing and classifying slow: the shapes a hostile sender would try.

Each is a request (subject "republish") of about `size` bytes. Used by tests/test_hostile_input.py and
benchmarks/hostile.py.
"""

from __future__ import annotations

LINK = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"


def _message(body: bytes, *, headers: bytes = b"", content_type: bytes = b"text/plain; charset=utf-8",
             subject: bytes = b"republish", sender: bytes = b"Priya <priya@valleynews.example>") -> bytes:
    return (b"From: " + sender + b"\r\nTo: republish@riversideledger.example\r\nSubject: " + subject +
            b"\r\nMessage-ID: <hostile@valleynews.example>\r\n" + headers +
            b"MIME-Version: 1.0\r\nContent-Type: " + content_type + b"\r\n\r\n" + body)


def _multipart(parts: bytes) -> bytes:
    return _message(parts + b"--b0undary--\r\n", content_type=b"multipart/mixed; boundary=b0undary")


def _repeat(unit: str, size: int) -> bytes:
    return (unit * max(1, size // len(unit))).encode()


def shapes(size: int) -> dict[str, bytes]:
    encoded = "=?utf-8?q?abc?= "
    text_part = b"--b0undary\r\nContent-Type: text/plain\r\n\r\nRunning " + LINK.encode() + b"\r\n"
    return {
        "a line without sentence punctuation": _message(_repeat("word ", size)),
        "question-like words on one line": _message(_repeat("can we run ", size)),
        "links separated by spaces": _message(_repeat(LINK + " ", size)),
        "links to other sites": _message(_repeat("https://x.example/a ", size)),
        "a link followed by closing brackets": _message(LINK.encode() + _repeat(")", size)),
        "opening brackets": _message(_repeat("(", size)),
        "square brackets": _message(_repeat("[", size // 2) + _repeat("]", size // 2)),
        "angle brackets": _message(_repeat("<", size)),
        "colons": _message(_repeat("a:", size)),
        "at signs": _message(_repeat("a@", size)),
        "dots": _message(_repeat(".", size)),
        "spaces": _message(_repeat(" ", size) + b"x"),
        "empty lines": _message(_repeat("\r\n", size)),
        "quote markers": _message(_repeat("> ", size)),
        "reply attributions": _message(_repeat("On Fri, Desk wrote: ", size)),
        "headline-like words": _message(_repeat("Council Approves Protected Bike Lanes ", size)),
        "www links": _message(_repeat("www.riversideledger.example/x ", size)),
        "one long link": _message(b"https://riversideledger.example/" + _repeat("a", size)),
        "encoded words in a header": _message(b"hi", headers=b"X-Note: " + _repeat(encoded, size) + b"\r\n"),
        "encoded words in the subject": _message(b"hi", subject=b"republish " + _repeat(encoded, size)),
        "a long display name": _message(b"hi", sender=_repeat("a", size) + b" <priya@valleynews.example>"),
        "many addresses": _message(b"hi", headers=b"Cc: " + _repeat("x@y.example, ", size) + b"\r\n"),
        "encoded words in a part header": _multipart(
            text_part + b"--b0undary\r\nContent-Type: text/plain; name=\"" + _repeat(encoded, size) +
            b"\"\r\nContent-Disposition: attachment\r\n\r\nxx\r\n"),
        "many MIME parts": _multipart(text_part * max(1, size // len(text_part))),
        "HTML links": _message(_repeat(f"<a href='{LINK}'>x</a>", size), content_type=b"text/html"),
        "HTML links to other sites": _message(
            "".join(f"<a href='https://x.example/{n}'>x</a> " for n in range(size // 40)).encode(),
            content_type=b"text/html"),
        "nested HTML": _message(_repeat("<div>", size), content_type=b"text/html"),
        "base64 body": _message(_repeat("aGVsbG8g", size), headers=b"Content-Transfer-Encoding: base64\r\n"),
    }


def ordinary(size: int) -> bytes:
    """The baseline: a short note with a base64 attachment, the way large requests really come."""
    return _multipart(b"--b0undary\r\nContent-Type: text/plain\r\n\r\nWe ran " + LINK.encode() + b" today.\r\n"
                      b"--b0undary\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
                      b"Content-Disposition: attachment; filename=\"page.pdf\"\r\n\r\n" +
                      _repeat("JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFIvRmlsdGVyIC9GbGF0ZURlY29kZT4+\r\n",
                              size))
