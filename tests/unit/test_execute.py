"""exec with no engine: the output cap keeps whole characters and says what was cut, and a
result's repr shows no secret (passwords in the command, env-style arguments, output).

exec on the real engine is tested in ../engine/test_execute.py.
"""

from __future__ import annotations

from opskit.act.execute import ExecResult, _Capped


def test_repr_without_an_engine() -> None:
    result = ExecResult(container="web-1", id="c" * 64,
                        command=("app", "--password", "CANARY4", "DATABASE_URL=postgres://u:"
                                 "CANARY3@db/x"), exit_code=0, stdout="Password=CANARY1\n",
                        stderr="", duration=0.5)
    text = repr(result)
    assert "CANARY" not in text
    assert "'--password', '***'" in text and "web-1" in text and "exit_code=0" in text


def test_the_cap_keeps_whole_characters_and_says_what_was_cut() -> None:
    capped = _Capped(5)
    for chunk in ("hé".encode(), "llo wörld".encode()):
        capped.add(chunk)
    assert (capped.kept, capped.dropped) == (5, 8)
    assert capped.text() == "héll\n[opskit: output cut at 5 bytes; 8 more bytes not kept]\n"
    cut = _Capped(3)
    cut.add("aé".encode())  # 3 bytes fit exactly
    cut.add(b"b")
    assert cut.text().startswith("a\u00e9\n[opskit: output cut at 3 bytes; 1 more")
    whole = _Capped(None)
    whole.add(b"x" * 10_000)
    assert whole.text() == "x" * 10_000 and whole.dropped == 0
    assert ExecResult(container="w", id="c", command=("x",), exit_code=0, stdout="", stderr="",
                      duration=0.1).truncated is False, "old constructors still work"
