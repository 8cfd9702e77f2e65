"""Secrets never reach a report file or the journal the report leaves behind."""
import html
import json
import shutil
from pathlib import Path

from gameday.report import redact, write_report
from gameday.report.redact import MASK, known_secret_values, redact_text

FIXTURE = Path(__file__).parent / "fixtures" / "report" / "gameday-run"

AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DB_PASSWORD = "Pl4nted-DB-pass"
CONSUMER_KEY = "ck_" + "0123456789abcdef" * 2 + "01234567"
ENV_SECRET = "env-resolved-consumer-secret-77"
TOKEN = "tok-PLANTED-5150"
BASIC = "c2hvcDpzM2NyZXQtcGxhbnRlZA=="
SECRETS = (AWS_KEY_ID, AWS_SECRET, DB_PASSWORD, CONSUMER_KEY, ENV_SECRET, TOKEN, BASIC)


def test_redact_masks_secret_keys_but_keeps_env_references_and_ordinary_fields():
    data = {"secrets": {"db": {"password": "x1y2z3"},
                        "shop": {"consumer_secret": {"type": "env", "key": "SHOP_SECRET"}}},
            "aws_access_key_id": "anything", "order_key": "wc_order_abc",
            "commit": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", "count": 3,
            "Authorization": "Basic Zm9vOmJhcg=="}
    clean = redact(data)
    assert clean["secrets"]["db"]["password"] == MASK
    assert clean["secrets"]["shop"]["consumer_secret"] == {"type": "env", "key": "SHOP_SECRET"}
    assert clean["aws_access_key_id"] == MASK and clean["Authorization"] == MASK
    assert clean["order_key"] == "wc_order_abc"
    assert clean["commit"] == data["commit"] and clean["count"] == 3
    assert data["secrets"]["db"]["password"] == "x1y2z3"  # the input is untouched


def test_redact_text_masks_credentials_in_free_text():
    text = (f"key {AWS_KEY_ID} secret {AWS_SECRET} dsn mysql://shop:{DB_PASSWORD}@127.0.0.1:3306/"
            f" header Authorization: Basic {BASIC} password='hunter22' {CONSUMER_KEY}")
    clean = redact_text(text)
    for secret in (AWS_KEY_ID, AWS_SECRET, DB_PASSWORD, BASIC, "hunter22", CONSUMER_KEY):
        assert secret not in clean
    assert "mysql://shop:" in clean and "127.0.0.1:3306" in clean


def test_known_secret_values_include_inline_and_env_resolved_secrets(monkeypatch):
    monkeypatch.setenv("SHOP_SECRET", ENV_SECRET)
    journal = {"experiment": {"secrets": {
        "db": {"password": DB_PASSWORD},
        "shop": {"consumer_secret": {"type": "env", "key": "SHOP_SECRET"}}}}}
    assert known_secret_values(journal) == {DB_PASSWORD, ENV_SECRET}


def plant_secrets(run_dir: Path) -> None:
    path = run_dir / "journal.json"
    journal = json.loads(path.read_text())
    experiment = journal["experiment"]
    experiment["secrets"]["db"] = {"password": DB_PASSWORD}
    experiment["secrets"]["aws"] = {"aws_access_key_id": AWS_KEY_ID,
                                    "aws_secret_access_key": AWS_SECRET}
    before = journal["steady_states"]["before"]["probes"]
    before[0]["activity"]["provider"]["arguments"]["consumer_key"] = CONSUMER_KEY
    before[1]["output"] = {"ratio": 0.0, "token": TOKEN,
                           "echo": f"Authorization: Basic {BASIC}"}
    after = journal["steady_states"]["after"]["probes"]
    after[2].update(status="failed", tolerance_met=False, output=None, exception=[
        "Traceback (most recent call last):\n",
        f"chaoslib.exceptions.ActivityFailed: cannot connect to "
        f"mysql://shop:{DB_PASSWORD}@127.0.0.1:15306/shop (secret {ENV_SECRET})\n"])
    journal["run"][0]["output"]["method_reason"] = f"used credentials {AWS_KEY_ID}"
    journal["run"][1]["output"]["before"]["auth"] = AWS_SECRET
    journal["rollbacks"][0]["output"]["note"] = f"password={DB_PASSWORD}"
    journal["deviated"] = True
    path.write_text(json.dumps(journal))


def test_planted_secrets_are_absent_from_every_written_file(tmp_path, monkeypatch):
    monkeypatch.setenv("GAMEDAY_SHOP_CONSUMER_SECRET", ENV_SECRET)
    run_dir = tmp_path / "run-secrets"
    shutil.copytree(FIXTURE, run_dir)
    plant_secrets(run_dir)
    paths = write_report(str(run_dir))
    written = [Path(paths[n]) for n in ("report.html", "report.md", "junit.xml", "summary.json")]
    written.append(run_dir / "journal.json")  # rewritten with the secrets masked
    for path in written:
        text = path.read_text()
        for secret in SECRETS:
            assert secret not in text, (path.name, secret)
            assert html.escape(secret) not in text, (path.name, secret)
        assert "shop-db" in text  # redaction did not swallow the report
    summary = json.loads(Path(paths["summary.json"]).read_text())
    failed = summary["hypothesis"]["after"]["probes"][2]
    assert failed["error"].startswith("cannot connect to mysql://shop:" + MASK)
    journal = json.loads((run_dir / "journal.json").read_text())
    assert journal["experiment"]["secrets"]["db"]["password"] == MASK
    assert journal["experiment"]["secrets"]["shop"]["consumer_secret"] == {
        "type": "env", "key": "GAMEDAY_SHOP_CONSUMER_SECRET"}
    assert journal["run"][0]["output"]["rto_seconds"] == 2.35  # figures survive the rewrite
