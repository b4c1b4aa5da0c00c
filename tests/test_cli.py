import json
from pathlib import Path

from click.testing import CliRunner

from processor.cli import main
from tests.helpers import request_message, write_config

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = Path(__file__).resolve().parents[1] / "processor" / "sample_data" / "stories"  # the demo's stories


def test_demo_runs_the_whole_pipeline(tmp_path):
    result = CliRunner().invoke(main, ["demo", "--dir", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert "4 answered, 1 backfilled, 1 ignored, 1 needs_person" in result.output
    assert "declined" in result.output and "harborgazette.example" in result.output
    # Four replies, then the two outlets that ran the corrected bike-lanes story get a notice each.
    assert 'Then the newsroom corrected "Council approves protected bike lanes on Main Street": 2 correction' \
        in result.output
    assert len(list((tmp_path / "demo" / "outbox").glob("*.eml"))) == 6


def test_config_errors_name_the_key(tmp_path):
    path = write_config(tmp_path, "sqlite:///x.sqlite3", maildir=tmp_path / "m", outbox=tmp_path / "o")
    path.write_text(path.read_text().replace("batch_size = 10", "batch_size = 0"))
    result = CliRunner().invoke(main, ["--config", str(path), "run", "--once"])
    assert result.exit_code == 1
    assert "[worker] batch_size" in result.output


def test_run_refuses_an_unmigrated_database(tmp_path):
    path = write_config(tmp_path, "sqlite:///x.sqlite3", maildir=tmp_path / "m", outbox=tmp_path / "o")
    result = CliRunner().invoke(main, ["--config", str(path), "run", "--once"])
    assert result.exit_code == 1 and "republish db upgrade" in result.output


def test_import_run_and_pickup_log(tmp_path):
    maildir = tmp_path / "Maildir"
    path = write_config(tmp_path, "sqlite:///x.sqlite3", maildir=maildir, outbox=tmp_path / "outbox")
    runner = CliRunner()
    cli = ["--config", str(path)]
    assert runner.invoke(main, cli + ["db", "upgrade"]).exit_code == 0
    result = runner.invoke(main, cli + ["stories", "import", str(SAMPLES / "bike-lanes.html"),
                                        str(SAMPLES / "wire-defense-agreement.html"), str(tmp_path / "missing.html")])
    assert result.exit_code == 1
    assert "1 new" in result.output and "1 not free to republish" in result.output and "missing.html: not imported" in result.output
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    (maildir / "new" / "1.eml").write_bytes(request_message(
        body="https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"))
    result = runner.invoke(main, cli + ["run", "--once"])
    assert result.exit_code == 0 and "1 request(s) handled, 1 reply(ies) sent" in result.output
    assert runner.invoke(main, cli + ["run", "--once"]).output.startswith("0 request(s)")
    rows = json.loads(runner.invoke(main, cli + ["pickups", "--format", "json"]).output)
    assert [(r["outlet"], r["decision"], r["requests"]) for r in rows] == [("valleynews.example", "granted", 1)]
    assert rows[0]["replies"]
    csv_out = runner.invoke(main, cli + ["pickups", "--format", "csv", "--outlet", "valleynews.example"]).output
    assert csv_out.splitlines()[0].startswith("id,outlet,story,title,decision")
    assert "council-approves" in runner.invoke(main, cli + ["pickups", "--story",
                                                            "http://www.riversideledger.example/news/2026/11/council-approves-protected-bike-lanes"]).output
    assert "no pickups" in runner.invoke(main, cli + ["pickups", "--since", "2099-01-01"]).output


def test_an_editor_overrules_the_importer_on_a_storys_origin_and_it_stays_ruled(tmp_path):
    path = write_config(tmp_path, "sqlite:///x.sqlite3", maildir=tmp_path / "Maildir", outbox=tmp_path / "outbox")
    runner, cli = CliRunner(), ["--config", str(path)]
    assert runner.invoke(main, cli + ["db", "upgrade"]).exit_code == 0
    wire = str(SAMPLES / "wire-defense-agreement.html")
    imported = runner.invoke(main, cli + ["stories", "import", wire])
    assert "not free: https://riversideledger.example/news/2026/11/israel-and-japan" in imported.output
    assert "(JTA): " in imported.output and "originally appeared" in imported.output  # the evidence
    url = "https://riversideledger.example/news/2026/11/israel-and-japan-sign-new-defense-agreement/"
    ruled = runner.invoke(main, cli + ["stories", "set-origin", url, "--free", "--editor", "Ana"])
    assert ruled.exit_code == 0 and "free to republish (set by Ana on " in ruled.output, ruled.output
    runner.invoke(main, cli + ["stories", "import", wire])  # imported again: the ruling stands
    listing = json.loads(runner.invoke(main, cli + ["stories", "--format", "json"]).output)
    assert [row["origin"] for row in listing if "israel" in row["url"]] == [""]
    assert runner.invoke(main, cli + ["stories", "set-origin", url]).exit_code == 2
    assert "not in the story catalog" in runner.invoke(
        main, cli + ["stories", "set-origin", "https://riversideledger.example/nope/", "--origin", "AP", "--editor", "Ana"]).output
    ruled = runner.invoke(main, cli + ["stories", "set-origin", url, "--origin", "JTA", "--editor", "Ana"])
    assert "from JTA (set by Ana" in ruled.output


def test_stories_show_prints_what_a_partner_gets(tmp_path):
    path = write_config(tmp_path, "sqlite:///x.sqlite3", maildir=tmp_path / "Maildir", outbox=tmp_path / "outbox")
    runner, cli = CliRunner(), ["--config", str(path)]
    assert runner.invoke(main, cli + ["db", "upgrade"]).exit_code == 0
    runner.invoke(main, cli + ["stories", "import", str(SAMPLES / "bike-lanes.html"),
                               str(SAMPLES / "wire-defense-agreement.html")])
    bike = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"
    shown = runner.invoke(main, cli + ["stories", "show", bike, "--snippet", "html"])
    assert shown.exit_code == 0, shown.output
    assert "Origin:     our own: free to republish" in shown.output
    assert "<h1>Council approves protected bike lanes on Main Street</h1>" in shown.output and "t=PREVIEW" in shown.output
    assert "Council approves" in runner.invoke(main, cli + ["stories", "show", "1", "--snippet", "text"]).output
    wire = runner.invoke(main, cli + ["stories", "show",
                                      "https://riversideledger.example/news/2026/11/israel-and-japan-sign-new-defense-agreement/",
                                      "--snippet", "html"]).output
    assert "Origin:     from JTA" in wire and "Evidence:" in wire and "Snippet:    none (not free" in wire and "<h1>" not in wire
    assert "not in the story catalog" in runner.invoke(main, cli + ["stories", "show", "999"]).output


def test_commands_that_read_need_no_mail_password_and_run_names_the_missing_one(tmp_path, monkeypatch):
    """`republish pickups`, `review`, `db current` used to stop unless the IMAP password was in the environment."""
    monkeypatch.delenv("TEST_IMAP_PASSWORD", raising=False)
    path = write_config(tmp_path, "sqlite:///x.sqlite3",
                        imap={"host": "127.0.0.1", "port": 1, "username": "desk@example.org"}, smtp_port=2)
    runner, cli = CliRunner(), ["--config", str(path)]
    assert runner.invoke(main, cli + ["db", "upgrade"]).exit_code == 0
    for command in (["db", "current"], ["pickups"], ["review"], ["requests"], ["stories"], ["outlets"]):
        result = runner.invoke(main, cli + command)
        assert result.exit_code == 0, (command, result.output)
    started = runner.invoke(main, cli + ["run", "--once"])
    assert started.exit_code != 0
    assert "[imap] password_env: environment variable TEST_IMAP_PASSWORD is not set" in started.output


def test_a_read_command_writes_only_its_answer(tmp_path):
    """Libraries loaded as a command needs them announced themselves on stderr (alembic's plugins)."""
    import subprocess
    import sys

    path = write_config(tmp_path, "sqlite:///x.sqlite3", maildir=tmp_path / "Maildir", outbox=tmp_path / "outbox")
    cli = [sys.executable, "-m", "processor.cli", "--config", str(path)]
    subprocess.run([*cli, "db", "upgrade"], check=True, capture_output=True)
    result = subprocess.run([*cli, "stories"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "" and "no stories match" in result.stdout, result.stderr
