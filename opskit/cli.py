"""The ``opskit`` command: the library's verbs from a shell.

Every subcommand has ``--help``. Expected errors (an opskit error) print one message to stderr
and exit 1, without a traceback; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import ast
import keyword
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .act.chaos import FAULTS, undo_residue
from .act.manage import VERBS, Verb
from .base import errors
from .base import labels as L
from .engine.targets import list_raw, ref_from_summary, resolve
from .lab import run_lab
from .ops import as_spec, connect
from .spec.policy import RecoveryPolicy
from .spec.service import ServiceSpec

__all__ = ["main"]

COMMAND_OF: dict[Verb, str] = {"remove": "rm"}
"""Life-cycle verbs whose command is docker's short name (``opskit rm`` as ``docker rm``)."""


def _ops(args: argparse.Namespace) -> Any:

    return connect(args.host, scope=args.scope, timeout=args.timeout)


def _progress(line: Any) -> None:
    text = getattr(line, "line", None)
    if text is not None:
        step = getattr(line, "step", None)
        steps = getattr(line, "steps", None)
        prefix = f"{getattr(line, 'tag', '')}"
        if step and steps:
            prefix += f" [{step}/{steps}]"
        line = f"{prefix} {str(text).strip()}"
    print(str(line).rstrip(), file=sys.stderr, flush=True)


def cmd_demo(args: argparse.Namespace) -> int:
    tags = _ops(args).demo_images(progress=_progress, force=args.force)
    print("\n".join(tags))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    """``opskit build PATH -t TAG``."""
    bad = [kv for kv in args.build_arg if "=" not in kv]
    if bad:
        raise errors.InvalidSpec("build.args", f"{bad[0]!r} is not NAME=VALUE",
                                 allowed="--build-arg NAME=VALUE")
    buildargs = dict(kv.split("=", 1) for kv in args.build_arg)
    result = _ops(args).build(args.path, tag=args.tag, dockerfile=args.file, buildargs=buildargs,
                              progress=_progress)
    print(result.image_id)
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    wait = None if args.wait == "none" else args.wait
    dep = _ops(args).deploy(args.spec, wait=wait, timeout=args.timeout_deploy,
                            progress=_progress)
    for name, cid in zip(dep.containers, dep.ids, strict=False):
        print(f"{name}\t{cid[:12]}")
    return 0


def cmd_teardown(args: argparse.Namespace) -> int:
    for item in _ops(args).teardown(args.service, volumes=args.volumes):
        print(f"removed {item}")
    return 0


def cmd_ps(args: argparse.Namespace) -> int:

    ops = _ops(args)
    filters = {"label": [f"{L.MANAGED}=true", f"{L.SCOPE}={ops.engine.scope}"]} if args.mine else {}
    rows = [("NAME", "ID", "SERVICE", "IMAGE", "STATE", "STATUS", "PORTS")]
    for item in list_raw(ops.engine, filters=filters, all=args.all):
        if args.mine and ref_from_summary(item).owned_reason(ops.engine):
            continue
        ports = ",".join(f"{p.get('IP', '')}:{p['PublicPort']}->{p['PrivatePort']}/{p['Type']}"
                         for p in item.get("Ports") or [] if p.get("PublicPort"))
        rows.append(((item.get("Names") or ["/"])[0].lstrip("/"), item["Id"][:12],
                     (item.get("Labels") or {}).get(L.SERVICE, "-"), item.get("Image", ""),
                     item.get("State", ""), item.get("Status", ""), ports or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _lifecycle(verb: Verb) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        ops = _ops(args)
        failed = 0
        for target in args.targets:  # check every target before acting on any
            resolve(ops.engine, target, action=verb, allow_foreign=args.allow_foreign)
        for target in args.targets:
            try:
                results = ops.lifecycle(verb, target, allow_foreign=args.allow_foreign,
                                        timeout=getattr(args, "time", None),
                                        signal=getattr(args, "signal", "SIGKILL"))
            except errors.ActionFailed as exc:
                results = exc.results
            for r in results:
                outcome = "ok" if r.ok else "FAILED: " + r.error
                print(f"{COMMAND_OF.get(verb, verb)}\t{r.name}\t{outcome}\t{r.duration:.2f}s")
                failed += not r.ok
        return 1 if failed else 0

    return run


def cmd_exec(args: argparse.Namespace) -> int:
    """``opskit exec TARGET -- CMD...``: exits with the command's code."""
    command = args.command
    if not command:
        raise errors.InvalidTarget(args.target, "was given no command",
                                   hint="opskit exec web -- ls -l /")
    result = _ops(args).exec(args.target, command, user=args.user, workdir=args.workdir,
                             allow_foreign=args.allow_foreign)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return int(result.exit_code)


def cmd_cp(args: argparse.Namespace) -> int:
    ops = _ops(args)
    src_target, _, src_path = args.src.partition(":") if ":" in args.src else ("", "", args.src)
    dst_target, _, dst_path = args.dest.partition(":") if ":" in args.dest else ("", "", args.dest)
    if bool(src_target) == bool(dst_target):
        raise errors.InvalidTarget(f"{args.src} {args.dest}", "must name exactly one container "
                                   "side", hint="opskit cp ./file web:/data/  or  opskit cp "
                                   "web:/data/file ./")
    if dst_target:
        print(ops.copy_to(dst_target, src_path, dst_path, allow_foreign=args.allow_foreign))
    else:
        print(ops.copy_from(src_target, src_path, dst_path, allow_foreign=args.allow_foreign))
    return 0


def cmd_network(args: argparse.Namespace) -> int:
    ops = _ops(args)
    if args.net_cmd == "ls":
        for net in ops.networks():
            print(f"{net.name}\t{net.driver}\t{net.subnet or '-'}\t"
                  f"{'opskit' if net.managed else '-'}\t{','.join(net.containers)}")
    elif args.net_cmd == "create":
        print(ops.network_create(args.name, internal=args.internal, subnet=args.subnet).id)
    elif args.net_cmd == "connect":
        print("\n".join(ops.network_connect(args.name, args.target)))
    elif args.net_cmd == "disconnect":
        print("\n".join(ops.network_disconnect(args.name, args.target)))
    else:
        ops.network_remove(args.name)
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    """``opskit watch --service web --policy policy.yaml``: runs until SIGTERM or Ctrl-C."""


    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    policy = RecoveryPolicy.from_yaml(args.policy) if args.policy else RecoveryPolicy(
        dry_run=args.dry_run)
    if args.dry_run and not policy.dry_run:
        policy = RecoveryPolicy.from_dict({**policy.to_dict(), "dry_run": True})
    ops = _ops(args)
    specs = {}
    for path in args.spec:
        spec = as_spec(path)
        if args.dry_run and spec.recovery is not None:
            spec = ServiceSpec.from_dict({**spec.to_dict(), "recovery": {
                **spec.recovery.to_dict(), "dry_run": True}})
        specs[spec.name] = spec
    journal = ops.journal().start()
    watchdog = ops.watch(args.service or None, policy=policy, specs=specs,
                         relist_every=args.relist_every).start()
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    try:
        while not done.wait(args.status_every):
            st = watchdog.status()
            print(f"opskit watch: {len(st['watched'])} watched, {st['actions']} actions, "
                  f"quarantined: {', '.join(st['quarantined']) or 'none'}, "
                  f"left down: {', '.join(st['left_down']) or 'none'}, "
                  f"missing: {', '.join(st['missing']) or 'none'}, "
                  f"journal {'connected' if st['journal'].get('connected') else 'DISCONNECTED'}",
                  file=sys.stderr, flush=True)
    finally:
        watchdog.stop()
        journal.stop()
        print("opskit watch: stopped", file=sys.stderr, flush=True)
    return 0


def cmd_chaos(args: argparse.Namespace) -> int:
    """``opskit chaos KIND TARGET``, ``opskit chaos residue [--undo]``."""

    ops = _ops(args)
    if args.kind == "residue":
        for entry in ops.chaos_residue():
            state = "still in place" if entry["still_in_place"] else "gone"
            print(f"{entry['kind']}\t{entry['container']}\t{entry['state']}\t{state}")
            if args.undo:
                undo_residue(ops.engine, entry)
                print(f"undone\t{entry['container']}")
        return 0
    if not args.target:
        raise errors.InvalidTarget("", "is missing", hint="opskit chaos crash web")
    fault = ops.chaos(args.kind, args.target, network=args.network, seconds=args.seconds)
    print(f"{fault.kind}\t{fault.container}\t{fault.id}")
    if args.kind == "delay" and args.undo_after is None:
        time.sleep(args.seconds)  # the thaw's timer lives in this process: outlive it
        fault.undo()
        print(f"undone\t{fault.container}")
    if args.undo_after is not None:
        time.sleep(args.undo_after)
        fault.undo()
        print(f"undone\t{fault.container}")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    """``opskit record NAME --service web --since 30m``: write an incident bundle."""
    bundle = _ops(args).record(args.name, args.service or None, args.since, args.until,
                               path=args.output)
    print(bundle.path)
    return 0


def cmd_run_runbook(args: argparse.Namespace) -> int:
    """``opskit run-runbook NOTEBOOK -p name value``: papermill, the executed copy kept."""

    params = _parameters(args.parameter)  # before anything runs
    import papermill

    source = Path(args.notebook)
    if not source.is_file():
        raise errors.InvalidTarget(str(source), "is not a notebook file",
                                   hint="give the path of an .ipynb, e.g. "
                                   "notebooks/05-recovery-runbook.ipynb")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    output = Path(args.output or Path(args.runs) / f"{source.stem}-{stamp}.ipynb")
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        # without the widgets' state: it is plotly.js again for every figure (5 MB each)
        papermill.execute_notebook(str(source), str(output), parameters=params,
                                   cwd=str(source.parent), progress_bar=False,
                                   store_widget_state=False)
    except papermill.PapermillExecutionError as exc:
        print(f"opskit: runbook failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}; "
              f"the executed copy is {output}", file=sys.stderr)
        return 1
    print(output)
    return 0


def _parameters(pairs: Sequence[Sequence[str]]) -> dict[str, Any]:
    """``-p NAME VALUE`` pairs as papermill's parameters; papermill writes each name into the
    notebook as code, so a name must be a Python identifier (and not a keyword).

    Raises:
        InvalidSpec: a name is not an identifier.
    """

    for name, _ in pairs:
        if not name.isidentifier() or keyword.iskeyword(name):
            raise errors.InvalidSpec(
                "run-runbook -p", f"parameter name {name!r} is not a Python identifier, or is "
                "a keyword (papermill writes each name into the notebook as code); nothing "
                "was run",
                hint="use letters, digits and underscores, not starting with a digit and not a "
                "Python keyword, as in the notebook's parameters cell: -p service web")
    return {name: _literal(value) for name, value in pairs}


def _literal(text: str) -> Any:

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def cmd_lab(args: argparse.Namespace) -> int:

    return run_lab(port=args.port, ip=args.ip, token=args.token, open_browser=args.browser,
                   allow_remote=args.allow_remote)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``opskit`` command."""
    parser = argparse.ArgumentParser(
        prog="opskit", description="Keep Docker containers highly available.")
    parser.add_argument("-H", "--host", help="engine URL (default: DOCKER_HOST, then "
                        "DOCKER_CONTEXT or the docker CLI's current context, then the local "
                        "socket)")
    parser.add_argument("--scope", default="default", help="opskit scope to act in")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per engine call")
    parser.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    p = sub.add_parser("lab", help="open JupyterLab on the notebooks (127.0.0.1)")
    p.add_argument("--port", type=int, default=8888)
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on; another than "
                   "loopback exposes a kernel with the Docker socket (warned; refused as root)")
    p.add_argument("--allow-remote", action="store_true", help="let root serve the lab on a "
                   "non-loopback --ip (anyone with the token gets root through the socket)")
    p.add_argument("--token", default=None, help="access token (default: a random one)")
    p.add_argument("--browser", action="store_true", help="open a web browser")
    p.set_defaults(func=cmd_lab)

    p = sub.add_parser("demo", help="build the demo images offline (opskit/demo-*)")
    p.add_argument("--force", action="store_true", help="rebuild even when up to date")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("build", help="build an image (docker build), never pulling")
    p.add_argument("path")
    p.add_argument("-t", "--tag", required=True)
    p.add_argument("-f", "--file", default=None, help="Dockerfile name in the context")
    p.add_argument("--build-arg", action="append", default=[], metavar="K=V")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("deploy", help="deploy a service from a YAML spec, idempotently")
    p.add_argument("spec", help="path of a YAML spec")
    p.add_argument("--wait", choices=["healthy", "running", "none"], default="healthy")
    p.add_argument("--deploy-timeout", dest="timeout_deploy", type=float, default=60.0)
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("teardown", help="remove a service and the networks deploy made for it")
    p.add_argument("service")
    p.add_argument("--volumes", action="store_true", help="also remove its named volumes")
    p.set_defaults(func=cmd_teardown)

    p = sub.add_parser("ps", help="list containers (docker ps)")
    p.add_argument("-a", "--all", action="store_true", help="include stopped containers")
    p.add_argument("--mine", action="store_true", help="only opskit's containers")
    p.set_defaults(func=cmd_ps)

    for verb, text in VERBS.items():
        p = sub.add_parser(COMMAND_OF.get(verb, verb), help=text)
        p.add_argument("targets", nargs="+", metavar="TARGET",
                       help="container name, ID, or service name (all replicas)")
        p.add_argument("--allow-foreign", action="store_true",
                       help="also act on containers opskit did not create")
        if verb in ("stop", "restart"):
            p.add_argument("-t", "--time", type=float, default=None,
                           help="seconds to wait before killing")
        if verb == "kill":
            p.add_argument("-s", "--signal", default="SIGKILL")
        p.set_defaults(func=_lifecycle(verb))

    p = sub.add_parser("exec", help="run a command in a container: opskit exec TARGET -- CMD")
    p.add_argument("target")
    p.add_argument("command", nargs="*", help="the command, after --")
    p.add_argument("-u", "--user", default=None)
    p.add_argument("-w", "--workdir", default=None)
    p.add_argument("--allow-foreign", action="store_true")
    p.set_defaults(func=cmd_exec)

    p = sub.add_parser("cp", help="copy files: opskit cp SRC TARGET:DEST or TARGET:SRC DEST")
    p.add_argument("src")
    p.add_argument("dest")
    p.add_argument("--allow-foreign", action="store_true")
    p.set_defaults(func=cmd_cp)

    p = sub.add_parser("watch", help="watch services and recover them (runs until SIGTERM)")
    p.add_argument("--service", action="append", default=[], help="service to watch "
                   "(repeatable; default: every opskit service of the scope)")
    p.add_argument("--policy", default=None, help="a YAML RecoveryPolicy: the default")
    p.add_argument("--spec", action="append", default=[], metavar="YAML",
                   help="a service spec (repeatable): its `recovery` policy holds for its "
                   "service, and action=recreate uses it")
    p.add_argument("--dry-run", action="store_true", help="decide and record, never act")
    p.add_argument("--relist-every", type=float, default=5.0)
    p.add_argument("--status-every", type=float, default=10.0)
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("chaos", help="inject a fault into an opskit container, or list residue")
    p.add_argument("kind", choices=[*FAULTS, "residue"])
    p.add_argument("target", nargs="?", default="")
    p.add_argument("--network", default=None, help="for disconnect")
    p.add_argument("--seconds", type=float, default=2.0,
                   help="for delay: how long the processes stay stopped (2)")
    p.add_argument("--undo-after", type=float, default=None, metavar="SECONDS")
    p.add_argument("--undo", action="store_true", help="with residue: undo what is left")
    p.set_defaults(func=cmd_chaos)

    p = sub.add_parser("record", help="record an incident bundle (NAME.opsb), safe to share")
    p.add_argument("name")
    p.add_argument("--service", action="append", default=[], help="repeatable; default: all")
    p.add_argument("--since", default="30m")
    p.add_argument("--until", default=None)
    p.add_argument("-o", "--output", default=None, help="bundle path (default NAME.opsb)")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("run-runbook", help="run a notebook headless with papermill, keeping "
                       "the executed copy as the record")
    p.add_argument("notebook")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                   metavar=("NAME", "VALUE"))
    p.add_argument("--runs", default="runs", help="folder for executed copies")
    p.add_argument("-o", "--output", default=None)
    p.set_defaults(func=cmd_run_runbook)

    p = sub.add_parser("network", help="networks: ls, create, connect, disconnect, rm")
    nsub = p.add_subparsers(dest="net_cmd", required=True)
    nsub.add_parser("ls", help="list networks")
    q = nsub.add_parser("create", help="create a network")
    q.add_argument("name")
    q.add_argument("--internal", action="store_true")
    q.add_argument("--subnet", default=None)
    for name in ("connect", "disconnect"):
        q = nsub.add_parser(name, help=f"{name} a container")
        q.add_argument("name")
        q.add_argument("target")
    q = nsub.add_parser("rm", help="remove a network opskit created")
    q.add_argument("name")
    p.set_defaults(func=cmd_network)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``opskit`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(message)s")
    try:
        code: int = args.func(args)
    except errors.OpsKitError as exc:
        print(f"opskit: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("opskit: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
