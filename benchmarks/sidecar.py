"""The SMTP server and the latency proxies in a process of their own.

In the measuring process they would compete with what is measured for one interpreter lock and
one core's share of time; here they cost what a real server and a real network path cost: nothing
of the worker's. Driven over stdin/stdout, one command per line:

    smtp               -> port of a new aiosmtpd server that keeps what it receives
    proxy PORT RTT     -> port of a new proxy to 127.0.0.1:PORT adding RTT seconds per round trip
    count              -> messages the SMTP server has received
    last PATH          -> the last one written to PATH
    accepted PATH      -> JSON list of [raw message as latin-1 text, acceptance time] written to PATH
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


class Sidecar:
    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "benchmarks.sidecar"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, bufsize=1)

    def ask(self, *words) -> str:
        self.process.stdin.write(" ".join(str(word) for word in words) + "\n")
        answer = self.process.stdout.readline().strip()
        if not answer or answer.startswith("error"):
            raise RuntimeError(f"sidecar: {' '.join(map(str, words))}: {answer or 'no answer'}")
        return answer

    def smtp(self) -> int:
        return int(self.ask("smtp"))

    def proxy(self, port: int, rtt: float) -> int:
        return int(self.ask("proxy", port, rtt))

    def count(self) -> int:
        return int(self.ask("count"))

    def last(self, path: Path) -> bytes:
        self.ask("last", path)
        return path.read_bytes()

    def accepted(self, path: Path) -> list[tuple[bytes, float]]:
        self.ask("accepted", path)
        return [(raw.encode("latin-1"), at) for raw, at in json.loads(path.read_text())]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=30)


def serve() -> None:
    from benchmarks.latency_proxy import LatencyProxy
    from tests.servers import SmtpServer

    servers: list[SmtpServer] = []
    proxies: list[LatencyProxy] = []
    try:
        for line in sys.stdin:
            command, *args = line.split()
            try:
                if command == "smtp":
                    servers.append(SmtpServer())
                    servers[-1].start()
                    answer = str(servers[-1].port)
                elif command == "proxy":
                    proxies.append(LatencyProxy(int(args[0]), float(args[1])).start())
                    answer = str(proxies[-1].port)
                elif command == "count":
                    answer = str(sum(len(server.messages) for server in servers))
                elif command == "last":
                    Path(args[0]).write_bytes(servers[-1].messages[-1][2])
                    answer = "ok"
                elif command == "accepted":
                    server = servers[-1]
                    Path(args[0]).write_text(json.dumps([[raw.decode("latin-1"), at] for (_, _, raw), at
                                                         in zip(server.messages, server.accepted_at)]))
                    answer = "ok"
                else:
                    answer = f"error: unknown command {command!r}"
            except Exception as exc:
                answer = f"error: {type(exc).__name__}: {exc}"
            print(answer, flush=True)
    finally:
        for proxy in proxies:
            proxy.stop()
        for server in servers:
            server.stop()


if __name__ == "__main__":
    serve()
