"""No secret value survives redaction, in text, env, argv, labels, inspect payloads and
WaitTimeout messages; the redaction report counts what was masked by name, never by value.

Issue 10: tables of the secret shapes a review found missed (each absent from every output and
counted) and of non-secrets that must come out unchanged (``httpd -p 8080``); build logs."""

from __future__ import annotations

import copy
import json
import random
import shlex
import string
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from opskit.act.images import BuildProgress, build
from opskit.base import errors
from opskit.base.redact import (
    MASK,
    RedactionReport,
    is_secret_name,
    redact_argv,
    redact_env,
    redact_lines,
    redact_mapping,
    redact_text,
)
from opskit.observe.inspection import redacted_attrs
from tests.support.canaries import inspect_payload, pem_body

# (input, must not contain, must contain)
TEXT_CASES = [
    ('{"password": "CANARY7", "user": "x"}', "CANARY7", ['"password": "***"', '"user": "x"']),
    ("Authorization: Bearer CANARYTOKEN123", "CANARY", ["Authorization: Bearer ***"]),
    ("app --password CANARY4", "CANARY4", ["app --password ***"]),
    ("password='CANARY A B'", "CANARY", ["password='***'"]),
    ("password='CANARY A B' next", " A B'", ["password='***' next"]),
    ("api_TOKEN=CANARY2", "CANARY2", ["api_TOKEN=***"]),
    ("Password=CANARY1", "CANARY1", ["Password=***"]),
    ("DATABASE_URL=postgres://u:CANARY3@db/x", "CANARY3", ["DATABASE_URL=***"]),
    ("--password=CANARY4", "CANARY4", ["--password=***"]),
    ("wget http://admin:CANARY3@x --header 'X-Api-Key: CANARY9'", "CANARY",
     ["http://admin:***@x", "--header 'X-Api-Key: ***'"]),
    ("X-Api-Key: CANARY9", "CANARY9", ["X-Api-Key: ***"]),
    ('curl -H "Authorization: Basic CANARYdXNlcjpw==" http://h/', "CANARY",
     ['"Authorization: Basic ***" http://h/']),
    ('{"Authorization": "Bearer CANARY8xyz", "a": 1}', "CANARY", ['"Bearer ***", "a": 1}']),
    ("--auth Bearer CANARYCANARY", "CANARY", ["--auth Bearer ***"]),
    ("JAVA_OPTS=-Dpassword=CANARY5 -Dx=1", "CANARY5", ["-Dpassword=*** -Dx=1"]),
    ("https://token:CANARY6@github.com/o/r", "CANARY6", ["https://token:***@github.com/o/r"]),
    ("connecting to postgres://u:CANARY3@db:5432/x now", "CANARY3",
     ["postgres://u:***@db:5432/x now"]),
    ("{'secret': 'CANARY A', 'mode': 'prod'}", "CANARY", ["'secret': '***'", "'mode': 'prod'"]),
    ("GET /x?user=bob&token=CANARY&page=2", "CANARY", ["user=bob&token=***&page=2"]),
    ('password="CANARY \\"quoted\\" B" tail', "quoted", ['password="***" tail']),
    ("Cookie: session=CANARY; theme=dark", "CANARY", ["Cookie: ***"]),
    ("mysql --password 'CANARY two words' -h db", "CANARY", ["--password '***' -h db"]),
    ("token " + "CANARYab" * 3, "CANARY", ["token ***"]),
    ("key ghp_" + "A" * 36 + " end", "ghp_", ["key *** end"]),
    ("MODE=prod port: 8080 --verbose --name web", "***", ["MODE=prod port: 8080 --verbose"]),
]


@pytest.mark.parametrize(("text", "gone", "kept"), TEXT_CASES)
def test_text_shapes(text: str, gone: str, kept: list[str]) -> None:
    out = redact_text(text)
    assert gone not in out, out
    for part in kept:
        assert part in out, out


@pytest.mark.parametrize(("text", "gone", "kept"), TEXT_CASES)
def test_redacting_twice_changes_and_counts_nothing(text: str, gone: str, kept: list[str]
                                                    ) -> None:
    once = redact_text(text)
    report = RedactionReport()
    assert redact_text(once, report=report) == once
    assert report.total() == 0


CANARIES = {"Password": "CANARY1", "api_TOKEN": "CANARY2",
            "DATABASE_URL": "postgres://u:CANARY3@db/x"}
CANARY_COUNTS = {"Password": 1, "api_TOKEN": 1, "DATABASE_URL": 1, "--password": 1}


def _text() -> tuple[str, RedactionReport]:
    report = RedactionReport()
    text = " ".join(f"{k}={v}" for k, v in CANARIES.items()) + " --password=CANARY4"
    return redact_text(text, report=report, table="t"), report


def _env() -> tuple[str, RedactionReport]:
    report = RedactionReport()
    env = [f"{k}={v}" for k, v in CANARIES.items()] + ["--password=CANARY4"]
    return repr(redact_env(env, report=report, table="t")), report


def _argv() -> tuple[str, RedactionReport]:
    report = RedactionReport()
    argv = ["app", *(f"{k}={v}" for k, v in CANARIES.items()), "--password=CANARY4"]
    return repr(redact_argv(argv, report=report, table="t")), report


def _labels() -> tuple[str, RedactionReport]:
    report = RedactionReport()
    labels = {**CANARIES, "cmd": "run --password=CANARY4", "tier": "web"}
    out = redact_mapping(labels, report=report, table="t")
    assert out["tier"] == "web" and set(out) == set(labels)
    return repr(out), report


@pytest.mark.parametrize("form", [_text, _env, _argv, _labels])
def test_canaries_are_masked_and_counted_by_name(
        form: Callable[[], tuple[str, RedactionReport]]) -> None:
    out, report = form()
    assert "CANARY" not in out
    for name in CANARIES:
        assert name in out, "names stay visible"
    assert report.to_dict() == {"t": CANARY_COUNTS}
    assert "CANARY" not in repr(report.to_dict())


def test_argv_forms() -> None:
    report = RedactionReport()
    out = redact_argv(["app", "--password", "CANARY4", "--token=CANARY2", "sh", "-c",
                       "app --password CANARY4 --db postgres://u:CANARY3@db/x"], report=report)
    assert "CANARY" not in repr(out)
    assert out[:5] == ["app", "--password", MASK, "--token=***", "sh"]
    assert report.to_dict() == {"command": {"--password": 2, "--token": 1,
                                            "url-credentials": 1}}


# -- property style: random secrets in every shape ----------------------------------------

BARE = string.ascii_letters + string.digits + "-_.~+/!$%*@#^=:()[]{}<>?|"
URLSAFE = string.ascii_letters + string.digits + "-_.~!$%*+=:;,&@"
TOKEN = string.ascii_letters + string.digits + "._~+/="
SPACED = BARE + "   "
WORD = BARE.translate({ord(c): None for c in "()<>|"})  # one shell word


def _secret(rng: random.Random, alphabet: str, low: int = 8, high: int = 32) -> str:
    middle = "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high) - 2))
    edge = string.ascii_letters + string.digits
    return rng.choice(edge) + middle + rng.choice(edge)


SHAPES: list[tuple[str, str, Callable[[str], str]]] = [
    ("key=value", BARE, lambda v: redact_text(f"start Password={v} end")),
    ("key: value", BARE, lambda v: redact_text(f"api_TOKEN: {v}\nnext line")),
    ("--flag=value", BARE, lambda v: redact_text(f"app --password={v} --verbose")),
    ("--flag value", BARE.replace("-", ""), lambda v: redact_text(f"app --password {v} -v")),
    ("single-quoted", SPACED + '"\\', lambda v: redact_text(f"password='{v}' rest")),
    ("double-quoted", SPACED + "'", lambda v: redact_text(f'secret="{v}" rest')),
    ("json", SPACED + "'\"\\", lambda v: redact_text(json.dumps({"password": v, "u": "x"}))),
    ("python repr", SPACED + "'\"\\", lambda v: redact_text(repr({"token": v, "u": "x"}))),
    ("url", URLSAFE, lambda v: redact_text(f"connect postgres://u:{v}@db:5432/x now")),
    ("DATABASE_URL", URLSAFE, lambda v: redact_text(f"DATABASE_URL=postgres://u:{v}@db/x")),
    ("bearer", TOKEN, lambda v: redact_text(f"sent Bearer {v} to x")),
    ("authorization header", SPACED, lambda v: redact_text(f"Authorization: Bearer {v}")),
    ("api key header", SPACED, lambda v: redact_text(f"curl -H 'X-Api-Key: {v}' http://h")),
    ("argv flag", SPACED + "'\"", lambda v: repr(redact_argv(["app", "--password", v]))),
    ("argv flag=", SPACED + "'\"", lambda v: repr(redact_argv(["app", f"--token={v}"]))),
    ("argv sh -c", BARE.replace("-", ""),
     lambda v: repr(redact_argv(["sh", "-c", f"app --password {v} && true"]))),
    ("env", SPACED + "'\"=", lambda v: repr(redact_env([f"ANYTHING={v}"]))),
    ("label", SPACED + "'\"", lambda v: repr(redact_mapping({"db_password": v}))),
    ("label text", BARE, lambda v: repr(redact_mapping({"cmd": f"run --password={v}"}))),
    ("mysql -pVALUE", WORD, lambda v: redact_text(f"mysql -h db -p{v} app")),
    ("curl -u", WORD, lambda v: redact_text(f"curl -u admin:{v} http://h/")),
    ("redis-cli -a", WORD, lambda v: redact_text(f"sh -c 'redis-cli -a {v} ping'")),
    ("argv -pVALUE", SPACED + "'\"", lambda v: repr(redact_argv(["mariadb", f"-p{v}"]))),
    ("name ending in KEY", BARE, lambda v: redact_text(f"ENCRYPTION_KEY={v} next")),
    ("label ending in key", SPACED, lambda v: repr(redact_mapping({"com.example.key": v}))),
    ("YAML next line", BARE, lambda v: redact_text(f"db:\n  password:\n    {v}\n  port: 1")),
    ("YAML lines", BARE, lambda v: repr(redact_lines(["password:", f"  {v}", "port: 1"]))),
    ("SAS sig", URLSAFE.translate({ord(c): None for c in "&;,"}),
     lambda v: redact_text(f"https://h/c?sv=1&sig={v}&se=2")),
]


def _values(alphabet: str, seed: int, n: int = 150) -> Iterator[str]:
    rng = random.Random(seed)
    for _ in range(n):
        yield _secret(rng, alphabet)


@pytest.mark.parametrize(("shape", "alphabet", "redact"), SHAPES, ids=[s[0] for s in SHAPES])
def test_random_secrets_never_survive(shape: str, alphabet: str,
                                      redact: Callable[[str], str]) -> None:
    for value in _values(alphabet, seed=13):
        out = redact(value)
        assert MASK in out
        for form in (value, json.dumps(value)[1:-1], repr(value)[1:-1]):
            assert form not in out, (shape, value, out)
            leaked = [form[i:i + 6] for i in range(len(form) - 5) if form[i:i + 6] in out]
            assert not leaked, (shape, value, out, leaked)  # not even a piece of it


# -- inspect payloads and WaitTimeout ------------------------------------------------------

def test_redacted_attrs_covers_healthcheck_and_log_config() -> None:
    payload = inspect_payload()
    before = copy.deepcopy(payload)
    report = RedactionReport()
    out = redacted_attrs(payload, report)
    assert payload == before, "the input is not changed"
    assert "CANARY" not in repr(out)
    test = out["Config"]["Healthcheck"]["Test"]
    assert test[0] == "CMD-SHELL" and "X-Api-Key: ***" in test[1] and "admin:***@x" in test[1]
    assert out["HostConfig"]["LogConfig"]["Config"] == {
        "splunk-token": MASK, "splunk-url": "https://admin:***@splunk:8088", "tag": "web"}
    assert out["Config"]["Env"] == ["Password=***", "MODE=***"]
    counts = report.to_dict()
    assert counts["healthcheck"] == {"X-Api-Key": 1, "url-credentials": 1}
    assert counts["log-config"] == {"splunk-token": 1, "url-credentials": 1}
    assert counts["env"] == {"Password": 1, "MODE": 1}


def test_wait_timeout_masks_logs_and_probe_and_says_the_exit_code_once() -> None:
    err = errors.WaitTimeout(
        "web-1", "healthy", 3, state="exited", exit_code=3, reason="it exited with code 3",
        last_probe="wget http://admin:CANARY3@x: 401 (X-Api-Key: CANARY9)",
        last_logs=["boot", "Password=CANARY1 api_TOKEN=CANARY2",
                   "DATABASE_URL=postgres://u:CANARY3@db/x", "app --password CANARY4"])
    text = str(err)
    assert "CANARY" not in text and "CANARY" not in err.last_probe
    assert "CANARY" not in repr(err.last_logs) and len(err.last_logs) == 4
    assert "Password=***" in text and "admin:***@x" in text
    assert text.count("code 3") == 1, text
    assert errors.WaitTimeout("w", "running", 1, state="exited", exit_code=30,
                              reason="it exited with code 3").message.count("code 30") == 1
    assert "exit code 2" in str(errors.WaitTimeout("w", "running", 1, state="exited",
                                                   exit_code=2))


@pytest.mark.parametrize("text", ["a" * 100_000, "password=" * 10_000, "http://u:" + "a" * 100_000,
                                  "'" + "b" * 100_000, "--password " * 10_000,
                                  'password="' + "c" * 100_000, "x=" * 50_000])
def test_time_stays_linear_on_long_input(text: str) -> None:
    started = time.monotonic()
    out = redact_text(text)
    assert time.monotonic() - started < 1.0
    assert len(out) <= len(text)


# -- issue 10: shapes the review found missed, and non-secrets that were over-masked ------------

PEM_KEY = "\n".join(["-----BEGIN RSA PRIVATE KEY-----", *pem_body(1),
                     "-----END RSA PRIVATE KEY-----"])
OPENSSH_KEY = "\n".join(["-----BEGIN OPENSSH PRIVATE KEY-----", *pem_body(2),
                         "-----END OPENSSH PRIVATE KEY-----"])
CERTIFICATE = "\n".join(["-----BEGIN CERTIFICATE-----",
                         *(line.replace("CANARY", "MIIBcz") for line in pem_body(3)),
                         "-----END CERTIFICATE-----"])

# (id, text, what redact_text counts, parts that stay); every secret holds "CANARY"
SECRET_CASES: list[tuple[str, str, dict[str, int], list[str]]] = [
    ("mysql -pVALUE", "mysql -h db -u root -pCANARY1 app", {"-p": 1},
     ["mysql -h db -u root -p*** app"]),
    ("mysql -p numeric", "mysqldump -u root -p12345CANARY --all-databases", {"-p": 1},
     ["-p*** --all-databases"]),
    ("mariadb path, quoted", "/usr/bin/mariadb -p'CANARY two' -e 'select 1'", {"-p": 1},
     ["-p'***' -e 'select 1'"]),
    ("mysql in sh -c", 'sh -c "mysqladmin ping -pCANARY2 && echo ok"', {"-p": 1},
     ["mysqladmin ping -p*** && echo ok"]),
    ("mysql line continuation", "mysql -h db \\\n  -pCANARY3 app", {"-p": 1}, ["-p*** app"]),
    ("curl -u", "curl -fsS -u admin:CANARY4 http://127.0.0.1:8080/", {"-u": 1},
     ["curl -fsS -u admin:*** http://127.0.0.1:8080/"]),
    ("curl --user=, -U", "curl --user=admin:CANARY5 -Uproxy:CANARY6 http://h/",
     {"--user": 1, "-U": 1}, ["--user=admin:*** -Uproxy:*** http://h/"]),
    ("curl -u quoted", "curl -u 'admin:CANARY 7' http://h/", {"-u": 1}, ["-u 'admin:***'"]),
    ("redis-cli -a", "redis-cli -h cache -a CANARY8 ping", {"-a": 1},
     ["redis-cli -h cache -a *** ping"]),
    ("ldapsearch -w", "ldapsearch -x -D cn=admin -w CANARY9 -b dc=x", {"-w": 1}, ["-w *** -b"]),
    ("docker login -p", "docker login -u me -p CANARY10 registry.example", {"-p": 1},
     ["-u me -p *** registry.example"]),
    ("sshpass -p", "sshpass -pCANARY11 ssh host", {"-p": 1}, ["sshpass -p*** ssh host"]),
    ("ENCRYPTION_KEY", "ENCRYPTION_KEY=CANARY12 SIGNING_KEY=CANARY13 MODE=prod",
     {"ENCRYPTION_KEY": 1, "SIGNING_KEY": 1}, ["ENCRYPTION_KEY=*** SIGNING_KEY=*** MODE=prod"]),
    ("camelCase and glued key", '{"apiKey": "CANARY14", "MASTERKEY": "CANARY15", "n": 1}',
     {"apiKey": 1, "MASTERKEY": 1}, ['"apiKey": "***"', '"n": 1']),
    ("label-style key", "com.example.key=CANARY16 com.example.tier=web",
     {"com.example.key": 1}, ["com.example.key=*** com.example.tier=web"]),
    ("PUBLIC_KEY (masked: no exceptions)", "PUBLIC_KEY=CANARY17", {"PUBLIC_KEY": 1},
     ["PUBLIC_KEY=***"]),
    ("key with encoding suffix", "SIGNING_KEY_B64=CANARY18", {"SIGNING_KEY_B64": 1}, []),
    ("PEM private key", f"loaded key:\n{PEM_KEY}\nready", {"private-key": 1},
     ["-----BEGIN RSA PRIVATE KEY-----\n***\n-----END RSA PRIVATE KEY-----\nready"]),
    ("PEM OpenSSH key", OPENSSH_KEY, {"private-key": 1}, ["-----END OPENSSH PRIVATE KEY-----"]),
    ("PEM in JSON, one line", json.dumps({"tls": PEM_KEY.replace("\n", " "), "n": 1}),
     {"private-key": 1}, ['"tls": "-----BEGIN RSA PRIVATE KEY----- *** -----END', '"n": 1']),
    ("PEM in a JSON string, escaped", json.dumps({"blob": PEM_KEY}), {"private-key": 1},
     ["PRIVATE KEY-----\\n***\\n-----END"]),
    ("PEM without END", "-----BEGIN PRIVATE KEY-----\n" + "\n".join(pem_body(4)),
     {"private-key": 1}, ["-----BEGIN PRIVATE KEY-----\n***"]),
    ("Stripe secret key", "charge with sk_live_CANARY19abcdefghij1234", {"token-pattern": 1},
     ["charge with ***"]),
    ("Stripe restricted key", "STRIPE=rk_test_CANARY20abcdefghij", {"token-pattern": 1},
     ["STRIPE=***"]),
    ("Slack webhook", "post https://hooks.slack.com/services/T0TEST/B0TEST/CANARY21hook now",
     {"webhook-url": 1}, ["https://hooks.slack.com/services/*** now"]),
    ("Azure SAS sig", "GET https://store.example/c/b?sv=2022-11-02&sp=r&sig=CANARY22%2Bx%3D&se=1",
     {"sig": 1}, ["?sv=2022-11-02&sp=r&sig=***&se=1"]),
    ("Google API key", "maps key=AIza" + "CANARY23" + "x" * 27 + " ok", {"key": 1},
     ["maps key=*** ok"]),
    ("Google API key, bare", "using AIzaCANARY24" + "_-" * 12 + "ab- ok", {"token-pattern": 1},
     ["using *** ok"]),
    ("YAML value on the next line", "db:\n  user: app\n  password:\n    CANARY25\n  port: 5432",
     {"password": 1}, ["  password:\n    ***\n  port: 5432"]),
    ("YAML block scalar", "token: |\n  CANARY26\n  CANARY27\nnext: 1", {"token": 1},
     ["token: |\n  ***\nnext: 1"]),
    ("YAML comment after the key", "password: #CANARY31\n  CANARY32\nport: 1",
     {"password": 2}, ["password: ***\n  ***\nport: 1"]),  # '#x' may be a value outside YAML
    ("text between certificate markers", "-----BEGIN CERTIFICATE-----\ntoken=CANARY30\n"
     "-----END CERTIFICATE-----", {"token": 1}, ["\ntoken=***\n"]),
    ("YAML list of keys", "api_keys:\n  - CANARY28\n  - CANARY29\nmode: x", {"api_keys": 1},
     ["api_keys:\n  ***\nmode: x"]),
]

# non-secrets that must come out exactly as they went in, counting nothing
KEEP_CASES = [
    "httpd -f -p 8080 -h /www",
    "psql -h db -p 5432 -U app appdb",
    "wget -q -O- http://127.0.0.1:8080/health",
    "curl -sf http://127.0.0.1:8080/health || exit 1",
    "docker run -d -p 8080:80 -p 127.0.0.1:9000:9000 web",
    "ssh -p 2222 deploy@host",
    "redis-cli -h cache -p 6379 ping",
    "mysql -h db -P 3306 -u app -p appdb",  # a bare -p prompts; the next word is the database
    "curl -u alice http://h/",  # no colon: curl asks for the password
    "mkdir -p /var/run/app && cp -p a b",
    "find / -path /proc -prune -o -print",
    "gcc -pthread -pipe -O2 main.c",
    "KEYBOARD_LAYOUT=us MONKEY=1 TURKEY=yes KEY_PATH=/etc/k.pem keycloak_url=http://kc/",
    "design=flat signal=TERM",
    "image sha256:" + "0123456789abcdef" * 4,
    "0123456789abcdef" * 4,  # a container ID on a line of its own
    "Step 3/5 : RUN apk add --no-cache curl",
    "secrets:\n  db_password:\n    file: ./db_password.txt",  # names of secrets, no values
    "Enter password:\nhunter",  # a prompt, not YAML: the next line is not indented
    f"server certificate:\n{CERTIFICATE}\nok",
    "MODE=prod port: 8080 --verbose --name web",
]


def _outputs(text: str, *, words: bool = False
             ) -> dict[str, tuple[str, RedactionReport | None]]:
    """``text`` through every redacting path, as what each shows and what each counted; with
    ``words``, also as a command split into its words."""
    forms: dict[str, tuple[str, RedactionReport | None]] = {}
    report = RedactionReport()
    forms["text"] = redact_text(text, report=report), report
    report = RedactionReport()
    forms["lines"] = "\n".join(redact_lines(text.splitlines(), report=report)), report
    report = RedactionReport()
    forms["label"] = redact_mapping({"cmd": text}, report=report)["cmd"], report
    report = RedactionReport()
    forms["argv"] = repr(redact_argv(["sh", "-c", text], report=report)), report
    failed = errors.BuildFailed("t:1", text, text.splitlines())
    forms["build"] = f"{failed} {failed.engine_message} {failed.log_tail!r}", None
    forms["probe"] = str(errors.WaitTimeout("w", "healthy", 1, last_probe=text)), None
    if words:
        report = RedactionReport()
        argv = shlex.split(text)
        forms["words"] = text if redact_argv(argv, report=report) == argv else MASK, report
    return forms


@pytest.mark.parametrize(("text", "counts", "kept"), [c[1:] for c in SECRET_CASES],
                         ids=[c[0] for c in SECRET_CASES])
def test_secret_shapes_are_gone_from_every_output_and_counted(
        text: str, counts: dict[str, int], kept: list[str]) -> None:
    forms = _outputs(text)
    for form, (out, report) in forms.items():
        assert "CANARY" not in out, (form, out)
        if report is not None:
            assert set(report.to_dict()[next(iter(report.counts))]) == set(counts), form
            assert "CANARY" not in repr(report.to_dict())
    out, report = forms["text"]
    assert report is not None and report.to_dict() == {"text": counts}
    for part in kept:
        assert part in out, out
    again = RedactionReport()
    assert redact_text(out, report=again) == out and again.total() == 0


@pytest.mark.parametrize("text", KEEP_CASES)
def test_non_secrets_stay_readable(text: str) -> None:
    for form, (out, report) in _outputs(text, words="\n" not in text).items():
        if form in ("text", "lines", "label", "words"):
            assert out == text, (form, out)
        assert MASK not in out, (form, out)
        assert report is None or report.total() == 0, (form, report.to_dict())


# (argv, program, expected, counts)
ARGV_CASES: list[tuple[list[str], str, list[str], dict[str, int]]] = [
    (["mysql", "-h", "db", "-u", "root", "-pCANARY1", "app"], "",
     ["mysql", "-h", "db", "-u", "root", "-p***", "app"], {"-p": 1}),
    (["/usr/bin/mysqldump", "-pCANARYpassword"], "", ["/usr/bin/mysqldump", "-p***"], {"-p": 1}),
    (["curl", "-fsS", "-u", "admin:CANARY2", "--user=a:CANARY3", "-Ub:CANARY4", "http://h/"], "",
     ["curl", "-fsS", "-u", "admin:***", "--user=a:***", "-Ub:***", "http://h/"],
     {"-u": 1, "--user": 1, "-U": 1}),
    (["redis-cli", "-h", "cache", "-a", "CANARY5", "ping"], "",
     ["redis-cli", "-h", "cache", "-a", "***", "ping"], {"-a": 1}),
    (["-a", "CANARY6", "ping"], "/usr/local/bin/redis-cli", ["-a", "***", "ping"], {"-a": 1}),
    (["login", "-u", "me", "-p", "CANARY7", "reg.example"], "docker",
     ["login", "-u", "me", "-p", "***", "reg.example"], {"-p": 1}),
    (["ldapwhoami", "-x", "-wCANARY8"], "", ["ldapwhoami", "-x", "-w***"], {"-w": 1}),
    (["mongosh", "-u", "admin", "-p", "CANARY9", "--quiet", "db"], "",
     ["mongosh", "-u", "admin", "-p", "***", "--quiet", "db"], {"-p": 1}),
    (["app", "--encryption-key", "CANARY10", "ENCRYPTION_KEY=CANARY11"], "",
     ["app", "--encryption-key", "***", "ENCRYPTION_KEY=***"],
     {"--encryption-key": 1, "ENCRYPTION_KEY": 1}),
    # not secrets: -p is a port or a plain flag for these
    (["httpd", "-f", "-p", "8080", "-h", "/www"], "", ["httpd", "-f", "-p", "8080", "-h", "/www"],
     {}),
    (["psql", "-h", "db", "-p", "5432"], "", ["psql", "-h", "db", "-p", "5432"], {}),
    (["docker", "run", "-p", "8080:80", "mysql"], "", ["docker", "run", "-p", "8080:80", "mysql"],
     {}),
    (["mysql", "-h", "db", "-p", "appdb"], "", ["mysql", "-h", "db", "-p", "appdb"], {}),
    (["mongosh", "-u", "admin", "-p", "--quiet"], "", ["mongosh", "-u", "admin", "-p", "--quiet"],
     {}),
    (["login", "-p", "-h", "host"], "", ["login", "-p", "-h", "host"], {}),
    (["curl", "-u", "alice", "http://h/"], "", ["curl", "-u", "alice", "http://h/"], {}),
]


@pytest.mark.parametrize(("argv", "program", "expected", "counts"), ARGV_CASES,
                         ids=[" ".join(c[0])[:40] for c in ARGV_CASES])
def test_argv_short_flags(argv: list[str], program: str, expected: list[str],
                          counts: dict[str, int]) -> None:
    report = RedactionReport()
    out = redact_argv(argv, report=report, program=program)
    assert out == expected
    assert "CANARY" not in repr(out)
    assert report.to_dict() == ({"command": counts} if counts else {})
    assert redact_argv(out, program=program) == out


@pytest.mark.parametrize(("name", "secret"), [
    ("ENCRYPTION_KEY", True), ("SIGNING_KEY", True), ("com.example.key", True), ("key", True),
    ("apiKey", True), ("APIKEY", True), ("MASTERKEY", True), ("AccountKey", True),
    ("ssh_keys", True), ("SIGNING_KEY_B64", True), ("STRIPE_KEY2", True), ("PUBLIC_KEY", True),
    ("sig", True), ("x-amz-sig", True), ("AWS_ACCESS_KEY_ID", True),
    ("KEYBOARD_LAYOUT", False), ("MONKEY", False), ("monkey", False), ("TURKEY", False),
    ("KEY_PATH", False), ("KEY_ID", False), ("keycloak_url", False), ("design", False),
    ("signal", False), ("SIGTERM", False), ("MODE", False),
])
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_key_labels_are_masked_by_name() -> None:
    report = RedactionReport()
    out = redact_mapping({"com.example.key": "CANARY1", "com.example.keyboard": "us",
                          "ENCRYPTION_KEY": "CANARY2"}, report=report)
    assert out == {"com.example.key": MASK, "com.example.keyboard": "us", "ENCRYPTION_KEY": MASK}
    assert report.to_dict() == {"labels": {"ENCRYPTION_KEY": 1, "com.example.key": 1}}


def test_pem_lines_one_at_a_time() -> None:
    """A log read line by line: the redactor carries the block; redact_text on each line
    alone still masks the full-width body lines (the safety net of rule 11)."""
    stamp = "2024-05-01T12:00:00.123456789Z "
    lines = [stamp + x for x in ["boot", *PEM_KEY.splitlines(), "token=CANARYt ready"]]
    report = RedactionReport()
    out = redact_lines(lines, report=report)
    assert "CANARY" not in repr(out) and len(out) == len(lines)
    assert out[1] == stamp + "-----BEGIN RSA PRIVATE KEY-----" and out[2] == stamp + MASK
    assert out[-2] == stamp + "-----END RSA PRIVATE KEY-----"
    assert out[-1] == stamp + "token=*** ready"
    assert report.to_dict() == {"logs": {"private-key": 1, "token": 1}}
    alone = [redact_text(x) for x in PEM_KEY.splitlines()]
    assert alone[1:-2] == [MASK] * 4  # the short last line needs the redactor's state
    assert alone[-2] == "CANARYq8Zt=="
    assert redact_lines(out) == out
    cert = redact_lines(CERTIFICATE.splitlines())
    assert cert == CERTIFICATE.splitlines()  # a certificate stays readable


def test_line_redactor_ends_a_block_at_a_line_that_is_not_base64() -> None:
    lines = ["-----BEGIN EC PRIVATE KEY-----", "CANARYabc123XYZ", "GET /health 200",
             "password:", "   CANARY2", "   CANARY3", "port: 5432"]
    report = RedactionReport()
    out = redact_lines(lines, report=report)
    assert out == ["-----BEGIN EC PRIVATE KEY-----", MASK, "GET /health 200", "password:",
                   "   ***", "   ***", "port: 5432"]
    assert report.to_dict() == {"logs": {"password": 1, "private-key": 1}}


def test_build_failed_masks_its_message_and_log_tail() -> None:
    lines = ["Step 4/4 : RUN mysql -h db -pCANARY1 < init.sql", *PEM_KEY.splitlines(),
             "ERROR 1045: access denied"]
    err = errors.BuildFailed(
        "t:1", "The command '/bin/sh -c mysql -h db -pCANARY1 < init.sql' returned a non-zero "
        "code: 1", lines)
    text = str(err)
    assert "CANARY" not in text + err.engine_message + repr(err.log_tail)
    assert "-p***" in text and "non-zero code: 1" in text and "access denied" in text
    assert len(err.log_tail) == len(lines) and err.log_tail[2] == MASK


class _FakeApi:
    """The two calls :func:`opskit.act.images.build` makes, with a canned build stream."""

    def __init__(self, stream: list[dict[str, Any]]) -> None:
        self.stream = stream

    def build(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        yield from self.stream

    def inspect_image(self, ref: str) -> dict[str, Any]:
        raise AssertionError(f"no image lookups expected, got {ref}")


@pytest.mark.parametrize("fails", [True, False])
def test_build_log_is_masked_at_the_source(tmp_path: Path, fails: bool) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY x /x\n")
    (tmp_path / "x").write_text("x")
    stream: list[dict[str, Any]] = [
        {"stream": "Step 1/2 : RUN curl -u admin:CANARY1 http://h/\n"},
        {"stream": "\n".join(PEM_KEY.splitlines()[:3]) + "\n"},
        {"stream": "\n".join(PEM_KEY.splitlines()[3:]) + "\nSIGNING_KEY=CANARY2\n"}]
    stream += ([{"error": "The command '/bin/sh -c curl -u admin:CANARY1 http://h/' "
                "returned a non-zero code: 3"}] if fails else
               [{"aux": {"ID": "sha256:" + "ab" * 32}}, {"stream": "Successfully built abab\n"}])
    engine = SimpleNamespace(api=_FakeApi(stream), scope="fixA", host="unix://fake")
    seen: list[BuildProgress] = []
    try:
        result = build(engine, tmp_path, tag="t:1", progress=seen.append)  # type: ignore[arg-type]
        shown = repr(result)
        assert not fails and result.image_id == "sha256:" + "ab" * 32
    except errors.BuildFailed as exc:
        assert fails
        shown = f"{exc} {exc.engine_message} {exc.log_tail!r}"
    shown += repr(seen)
    assert "CANARY" not in shown
    assert "admin:***" in shown and "SIGNING_KEY=***" in shown and "PRIVATE KEY-----" in shown


@pytest.mark.parametrize("text", [
    "mysql " * 20_000, "curl -u " * 15_000, "-----BEGIN RSA PRIVATE KEY-----" * 3_000,
    "-----BEGIN CERTIFICATE-----\n" * 3_000, "password:\n" * 10_000, "password:\n  " * 10_000,
    "".join(f"{' ' * (i % 50)}token:\n" for i in range(10_000)), "&sig=" * 20_000,
    "Ab1" * 40_000, ("Ab1" * 22 + "\n") * 2_000, "hooks.slack.com/services/" * 5_000,
    "mysql -p" + "'" * 100_000, "AIza" * 30_000])
def test_time_stays_linear_on_the_new_shapes(text: str) -> None:
    started = time.monotonic()
    out = redact_text(text)
    redact_lines(text.splitlines()[:5_000])
    assert time.monotonic() - started < 1.5
    assert len(out) <= len(text) + 3
