"""Preparing messages (parse + classify) in a helper process: same results as inline, survives the helper's
death, and never outlives the worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from processor.mail.mailbox import RawMessage
from processor.pipeline.prepare import Kind, Preparer, Rules, prepare_all
from tests.helpers import request_message

RULES = Rules(allowed_hosts=("riversideledger.example",), own_addresses=("republish@riversideledger.example",),
              loop_marker="republish@riversideledger.example", mailbox="test")
STORY = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"


def _messages(count: int) -> list[RawMessage]:
    messages = []
    for index in range(count):
        raw = request_message(sender=f"Desk <desk@outlet{index}.example>", body=f"Running {STORY}",
                              message_id=f"<p-{index}@outlet{index}.example>")
        messages.append(RawMessage(str(index), raw, len(raw)))
    messages.append(RawMessage("big", None, 99_000_000, "<big@outlet.example>"))
    messages.append(RawMessage("junk", b"\x00\xff not a message", 17))
    return messages


def started(preparer: Preparer, messages) -> Preparer:
    """Once its helper is up: the first big group is prepared inline while the helper starts."""
    assert preparer.start(messages)() == prepare_all(messages, RULES)
    deadline = time.monotonic() + 30
    while not preparer._helpers and time.monotonic() < deadline:
        time.sleep(0.05)
    assert preparer._helpers, "the helper did not start"
    return preparer


def test_helper_process_prepares_exactly_what_inline_preparing_does():
    messages = _messages(20)
    preparer = started(Preparer(RULES, processes=1), messages)
    try:
        pooled = preparer.start(messages)()
        assert preparer._helpers[0].groups_sent == 1  # a group this size went to the helper
    finally:
        preparer.close()
    inline = prepare_all(messages, RULES)
    assert pooled == inline
    assert pooled[0].kind is Kind.REQUEST and pooled[0].refs.own_links == (STORY,)
    assert pooled[-2].kind is Kind.OVERSIZED and pooled[-2].key == "big@outlet.example"


def test_a_helper_that_dies_is_replaced_by_preparing_inline():
    messages = _messages(20)
    preparer = started(Preparer(RULES, processes=1), messages)
    try:
        for helper in preparer._helpers:
            os.kill(helper.process.pid, signal.SIGKILL)
        time.sleep(0.2)
        results = preparer.start(messages)()
        assert results == prepare_all(messages, RULES)
        assert started(preparer, messages)._helpers  # and a new helper starts
    finally:
        preparer.close()


def test_helpers_end_when_the_worker_is_killed(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(os.getcwd())!r})
        from tests.test_prepare import RULES, _messages, started
        from processor.pipeline.prepare import Preparer

        if __name__ == "__main__":
            preparer = started(Preparer(RULES, processes=1), _messages(20))
            print(*(helper.process.pid for helper in preparer._helpers), flush=True)
            time.sleep(60)
    """)
    worker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        helpers = [int(pid) for pid in worker.stdout.readline().split()]
        assert len(helpers) == 1 and all(_running(pid) for pid in helpers)
        worker.kill()  # kill -9: no chance to shut its helpers down
        worker.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_running(pid) for pid in helpers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_running(pid) for pid in helpers), "helper processes outlived the worker"
    finally:
        if worker.poll() is None:
            worker.kill()


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
