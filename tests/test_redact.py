"""RELIABILITY row 13: no secret value survives redaction, in text, env, argv, labels, inspect
payloads and WaitTimeout messages; the report counts by name, never by value."""

from __future__ import annotations

import contextlib
import copy
import json
import random
import string
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import opskit
from opskit import errors
from opskit.inspection import redacted_attrs
from opskit.redact import (
    MASK,
    RedactionReport,
    redact_argv,
    redact_env,
    redact_mapping,
    redact_text,
)

SCOPE = "fixA"
TEST_LABELS = {"opskit-test.session": SCOPE}

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
ROW13_COUNTS = {"Password": 1, "api_TOKEN": 1, "DATABASE_URL": 1, "--password": 1}


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
def test_row13_canaries_are_masked_and_counted_by_name(
        form: Callable[[], tuple[str, RedactionReport]]) -> None:
    out, report = form()
    assert "CANARY" not in out
    for name in CANARIES:
        assert name in out, "names stay visible"
    assert report.to_dict() == {"t": ROW13_COUNTS}
    assert "CANARY" not in repr(report.to_dict())


def test_argv_forms() -> None:
    report = RedactionReport()
    out = redact_argv(["app", "--password", "CANARY4", "-p", "CANARYp", "--token=CANARY2",
                       "sh", "-c", "app --password CANARY4 --db postgres://u:CANARY3@db/x"],
                      report=report)
    assert "CANARY" not in repr(out)
    assert out[:7] == ["app", "--password", MASK, "-p", MASK, "--token=***", "sh"]
    assert report.to_dict() == {"command": {"--password": 2, "-p": 1, "--token": 1,
                                            "url-credentials": 1}}


# -- property style: random secrets in every shape ----------------------------------------

BARE = string.ascii_letters + string.digits + "-_.~+/!$%*@#^=:()[]{}<>?|"
URLSAFE = string.ascii_letters + string.digits + "-_.~!$%*+=:;,&@"
TOKEN = string.ascii_letters + string.digits + "._~+/="
SPACED = BARE + "   "


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

def _payload() -> dict[str, Any]:
    return {
        "Id": "c" * 64, "Name": "/web-1", "Args": ["--password", "CANARY4"],
        "Config": {
            "Env": ["Password=CANARY1", "MODE=prod"],
            "Cmd": ["app", "--token=CANARY2"], "Entrypoint": ["/bin/sh", "-c"],
            "Healthcheck": {"Test": ["CMD-SHELL", "wget http://admin:CANARY3@x --header "
                                     "'X-Api-Key: CANARY9'"], "Interval": 1_000_000_000},
            "Labels": {"db_secret": "CANARY5", "tier": "web"}},
        "HostConfig": {"LogConfig": {"Type": "splunk", "Config": {
            "splunk-token": "CANARY10", "splunk-url": "https://admin:CANARY11@splunk:8088",
            "tag": "web"}}},
        "State": {"Status": "running", "Health": {"Status": "unhealthy", "Log": [
            {"ExitCode": 1, "Output": "Authorization: Bearer CANARY12abc"}]}},
    }


def test_redacted_attrs_covers_healthcheck_and_log_config() -> None:
    payload = _payload()
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


@pytest.mark.engine
def test_inspect_of_a_real_container_masks_healthcheck_and_log_options() -> None:
    try:
        ops = opskit.connect(scope=SCOPE)
    except opskit.EngineUnavailable as exc:
        pytest.skip(f"no Docker engine: {exc}")
    api = ops.engine.api
    payload = _payload()
    cid = api.create_container(
        "opskit/demo-web:latest", labels={**TEST_LABELS, "db_secret": "CANARY5"},
        healthcheck=payload["Config"]["Healthcheck"],
        environment=payload["Config"]["Env"],
        host_config=api.create_host_config(log_config=payload["HostConfig"]["LogConfig"]))["Id"]
    try:
        info = ops.inspect(cid)
        assert info.attrs["HostConfig"]["LogConfig"]["Config"]["splunk-token"] == MASK
        assert "CANARY" not in repr(info.attrs) + repr(info)
        assert "Password" in info.env_names
    finally:
        with contextlib.suppress(Exception):
            api.remove_container(cid, force=True)
        ops.close()


@pytest.mark.parametrize("text", ["a" * 100_000, "password=" * 10_000, "http://u:" + "a" * 100_000,
                                  "'" + "b" * 100_000, "--password " * 10_000,
                                  'password="' + "c" * 100_000, "x=" * 50_000])
def test_time_stays_linear_on_long_input(text: str) -> None:
    started = time.monotonic()
    out = redact_text(text)
    assert time.monotonic() - started < 1.0
    assert len(out) <= len(text)
