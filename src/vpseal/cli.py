"""``vpseal`` / ``python -m vpseal``: cash out, query a transaction, run the sandbox, or the demo.

Credentials come only from the environment (VPSEAL_BASE_URL, VPSEAL_AGENT_ID, VPSEAL_API_KEY,
VPSEAL_SECRET), never from arguments: arguments end up in shell history and process lists.

Exit status: 0 success, 1 the API answered an error, 2 usage or configuration, 3 the outcome of
a cash-out is unknown (repeat it with the same --trans-id), 4 no usable answer, 130 interrupted
(Ctrl-C; for a cash-out the outcome is unknown too, and its transId is reported).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
from collections.abc import Sequence
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from vpseal._client_core import ENV_API_KEY, ENV_SECRET, new_trans_id
from vpseal._json import text as _json_text
from vpseal.api_errors import (
    APIError,
    BalanceNotEnough,
    OutcomeUnknown,
)
from vpseal.client import CashoutResult, Client, Transaction
from vpseal.errors import ConfigError, VPSealError

EXIT_OK, EXIT_API, EXIT_USAGE, EXIT_UNKNOWN, EXIT_TRANSPORT = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process ended by Ctrl-C
DEMO_USERNAME = "demo-player-001"
DEMO_BALANCE = "2323.582"


def _result_dict(result: CashoutResult) -> dict[str, Any]:
    return {
        "ok": True,
        "transId": result.trans_id,
        "amount": result.amount,
        "balance": result.balance,
        "logUUID": result.log_uuid,
        "attempts": result.attempts,
        "settledByQuery": result.settled_by_query,
    }


def _tx_dict(tx: Transaction) -> dict[str, Any]:
    return {
        "ok": True,
        "agent": tx.agent,
        "transId": tx.trans_id,
        "transactionTime": tx.transaction_time.isoformat(timespec="milliseconds"),
        "amount": tx.amount,
        "username": tx.username,
        "logUUID": tx.log_uuid,
    }


def _redact(text: str) -> str:
    """``text`` without the agent's API KEY or secret (as a last guard: messages and URLs
    should never hold them), so that an error line can be pasted into a ticket."""
    for name in (ENV_API_KEY, ENV_SECRET):
        value = os.environ.get(name, "").strip()
        if len(value) >= 4:
            text = text.replace(value, "***")
    return text


def _shown_url(url: str) -> str:
    """The base URL as it may be shown: no user:password@, query or fragment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    netloc = parts.netloc.rpartition("@")[2]
    return _redact(urlunsplit((parts.scheme, netloc, parts.path, "", "")))


def _fail(exc: VPSealError, as_json: bool, err: TextIO, base_url: str | None = None) -> int:
    """Report an error; return the exit status it deserves. ``base_url`` (the client's) is
    named when no usable answer came from it, so that a wrong or unreachable endpoint shows."""
    shown = _shown_url(base_url) if base_url is not None else None
    if isinstance(exc, APIError):
        status, shown = EXIT_API, None
        doc: dict[str, Any] = {"code": exc.code, "message": exc.message, "logUUID": exc.log_uuid}
    elif isinstance(exc, OutcomeUnknown):
        status = EXIT_UNKNOWN
        doc = {"transId": exc.trans_id, "reason": _redact(exc.reason)}
    elif isinstance(exc, ConfigError):
        status, shown, doc = EXIT_USAGE, None, {"message": _redact(str(exc))}
    else:
        status, doc = EXIT_TRANSPORT, {"message": _redact(str(exc))}
    if shown is not None:
        doc["baseURL"] = shown
    if as_json:
        print(_json_text({"ok": False, "error": type(exc).__name__, **doc}))
    else:
        line = f"vpseal: {type(exc).__name__}: {_redact(str(exc))}"
        if shown is not None and shown not in line:
            line += f" (base URL {shown})"
        print(line, file=err)
        if isinstance(exc, OutcomeUnknown):
            print(
                f"vpseal: repeat with --trans-id {exc.trans_id} (never cashes out twice), "
                "or run: vpseal check USERNAME " + exc.trans_id,
                file=err,
            )
    return status


def _interrupted(as_json: bool, trans_id: str | None = None, username: str = "") -> int:
    """Ctrl-C: one line (or one JSON object), exit 130. For a cash-out, a request may already
    have reached the server: its transId is reported so that it can be settled later."""
    if trans_id is None:
        if as_json:
            print(_json_text({"ok": False, "error": "Interrupted", "interrupted": True}))
        else:
            print("vpseal: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if as_json:
        print(_json_text({
            "ok": False, "error": "OutcomeUnknown", "interrupted": True, "outcome": "unknown",
            "transId": trans_id, "reason": "interrupted",
        }))  # fmt: skip
    else:
        print(
            f"vpseal: interrupted: the outcome of cash-out {trans_id} is unknown; repeat with "
            f"--trans-id {shlex.quote(trans_id)} (never cashes out twice) or run: vpseal check "
            f"{shlex.quote(username)} {shlex.quote(trans_id)}",
            file=sys.stderr,
        )
    return EXIT_INTERRUPTED


def _cmd_cashout(args: argparse.Namespace) -> int:
    # The transId is chosen here, not in the client, so that an interrupted run can still name
    # it: a request may already have reached the server.
    trans_id = args.trans_id if args.trans_id is not None else new_trans_id()
    base_url = None
    try:
        with Client() as client:
            base_url = client.base_url
            result = client.cashout(args.username, trans_id)
    except VPSealError as exc:
        return _fail(exc, args.json, sys.stderr, base_url)
    except KeyboardInterrupt:
        return _interrupted(args.json, trans_id, args.username)
    if args.json:
        print(_json_text(_result_dict(result)))
    else:
        print(f"cashed out {result.amount} (balance now {result.balance})")
        print(f"  transId {result.trans_id}  logUUID {result.log_uuid}")
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    base_url = None
    try:
        with Client() as client:
            base_url = client.base_url
            tx = client.check_transaction(args.username, args.trans_id)
    except VPSealError as exc:
        return _fail(exc, args.json, sys.stderr, base_url)
    except KeyboardInterrupt:
        return _interrupted(args.json)
    if args.json:
        print(_json_text(_tx_dict(tx)))
    else:
        kind = "withdrawal" if tx.amount < 0 else "deposit"
        print(f"{kind} of {abs(tx.amount)} for {tx.username} at {tx.transaction_time.isoformat()}")
        print(f"  agent {tx.agent}  transId {tx.trans_id}  logUUID {tx.log_uuid}")
    return EXIT_OK


# ------------------------------------------------------------------------------ sandbox


def _sandbox_config(args: argparse.Namespace) -> Any:
    from vpseal.sandbox import DEMO_API_KEY, DEMO_SECRET, FaultRule, SandboxConfig

    members: dict[str, str] = {}
    for item in args.member:
        name, sep, balance = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--member expects NAME=BALANCE, got {item!r}")
        members[name] = balance
    return SandboxConfig(
        host=args.host,
        port=args.port,
        db=args.db,
        agent_id=args.agent_id,
        api_key=os.environ.get("VPSEAL_SANDBOX_API_KEY", DEMO_API_KEY),
        secret=os.environ.get("VPSEAL_SANDBOX_SECRET", DEMO_SECRET),
        token_ttl=args.token_ttl,
        lock_hold=args.lock_hold,
        repeat=args.repeat,
        faults=[FaultRule.parse(spec) for spec in args.fault],
        seed=args.seed,
        members=members,
    )


def _cmd_sandbox(args: argparse.Namespace) -> int:
    from vpseal.sandbox import DEMO_API_KEY, DEMO_SECRET, Sandbox

    try:  # a bad option, port or --db file (LedgerOpenError is an OSError)
        config = _sandbox_config(args)
        sandbox = Sandbox(config)
    except (ValueError, TypeError, OSError) as exc:
        print(f"vpseal sandbox: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        sandbox.bind()
    except (OSError, OverflowError) as exc:  # e.g. the port is taken: remove the ledger too
        sandbox.close()
        where = f"{config.host} port {config.port}"
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        print(f"vpseal sandbox: cannot listen on {where}: {reason}", file=sys.stderr)
        return EXIT_USAGE
    demo = config.api_key == DEMO_API_KEY and config.secret == DEMO_SECRET
    print(f"vpseal sandbox listening on {sandbox.base_url}")
    print(f"  ledger: {sandbox.db_path}")
    print('  admin:  POST /_admin/members {"username", "balance"}, GET /_admin/ledger,')
    print("          POST|GET|DELETE /_admin/faults, POST /_admin/tokens/revoke")
    label = "DEMO credentials (public, for this sandbox only)" if demo else "credentials"
    print(f"  {label}:")
    print(f"    export VPSEAL_BASE_URL={sandbox.base_url}")
    print(f"    export VPSEAL_AGENT_ID={config.agent_id}")
    if demo:
        print(f"    export VPSEAL_API_KEY={DEMO_API_KEY}")
        print(f"    export VPSEAL_SECRET={DEMO_SECRET}")
    else:
        print("    VPSEAL_API_KEY / VPSEAL_SECRET: the values of VPSEAL_SANDBOX_API_KEY/_SECRET")
    sys.stdout.flush()
    with contextlib.suppress(KeyboardInterrupt):
        sandbox.serve_forever()
    return EXIT_OK


# ------------------------------------------------------------------------------ demo


def _show_cashout(result: CashoutResult, out: TextIO) -> None:
    print(f"    withdrew {result.amount}, balance now {result.balance}", file=out)
    print(f"    transId {result.trans_id}, logUUID {result.log_uuid}", file=out)


def _demo_run(client: Client, username: str, out: TextIO, local: bool) -> int:
    print(f"1. Cash out everything {username} has", file=out)
    result = client.cashout(username)
    _show_cashout(result, out)
    print("2. Query that transaction", file=out)
    tx = client.check_transaction(username, result.trans_id)
    when = tx.transaction_time.isoformat(timespec="milliseconds")
    print(f"    {tx.amount} for {tx.username} (agent {tx.agent}) at {when}", file=out)
    if not local:
        return EXIT_OK
    print("3. Send the same transId again (a retry): the same result, not a second withdrawal",
          file=out)  # fmt: skip
    _show_cashout(client.cashout(username, result.trans_id), out)
    print("4. Cash out again with a new transId: nothing left", file=out)
    try:
        client.cashout(username)
    except BalanceNotEnough as exc:
        print(f"    code {exc.code}: {exc.message}", file=out)
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    out = sys.stdout
    try:
        if os.environ.get("VPSEAL_BASE_URL"):
            username = args.username or os.environ.get("VPSEAL_DEMO_USERNAME")
            if not username:
                print("vpseal demo: VPSEAL_BASE_URL is set, so the demo talks to that endpoint"
                      " and needs a USERNAME argument or VPSEAL_DEMO_USERNAME",
                      file=sys.stderr)  # fmt: skip
                return EXIT_USAGE
            with Client() as client:
                print(f"Talking to {client.base_url} as agent {client.agent_id}", file=out)
                return _demo_run(client, username, out, local=False)
        from vpseal.sandbox import Sandbox

        username = args.username or DEMO_USERNAME
        with Sandbox(members={username: DEMO_BALANCE}) as sandbox:
            print(f"No VPSEAL_BASE_URL set: started a local sandbox at {sandbox.base_url}",
                  file=out)  # fmt: skip
            print(f"  with demo agent {sandbox.config.agent_id} and member {username} holding "
                  f"{DEMO_BALANCE}", file=out)  # fmt: skip
            with Client(**sandbox.client_kwargs()) as client:
                status = _demo_run(client, username, out, local=True)
            totals = sandbox.totals()
            print(f"Ledger: {totals['cashouts']} cash-out, {totals['members']} member, "
                  f"balances {totals['balance_total']}, books balanced: {totals['conserved']}",
                  file=out)  # fmt: skip
            return status
    except VPSealError as exc:
        return _fail(exc, False, sys.stderr)


# ------------------------------------------------------------------------------ parser


def version_text() -> str:
    """``vpseal --version``: the version and the engine in use (with its OpenSSL)."""
    import vpseal

    engine = vpseal.backend()
    if engine == "native":
        engine = f"native engine, {vpseal.openssl_version()}"
    else:
        engine = "fallback engine on pycryptodome"
    python = ".".join(map(str, sys.version_info[:3]))
    return f"vpseal {vpseal.__version__} ({engine}; Python {python})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vpseal",
        description="VP wallet API client and local sandbox. Credentials come from "
        "VPSEAL_BASE_URL, VPSEAL_AGENT_ID, VPSEAL_API_KEY and VPSEAL_SECRET.",
    )
    parser.add_argument("--version", action="version", version=version_text())
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("cashout", help="withdraw a member's whole balance")
    p.add_argument("username")
    p.add_argument("--trans-id", help="idempotency key (default: a new random one)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_cashout)

    p = sub.add_parser("check", help="query one transaction")
    p.add_argument("username")
    p.add_argument("trans_id", metavar="TRANS_ID")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("sandbox", help="run a local server that speaks the API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8787, help="0: any free port (default 8787)")
    p.add_argument("--db", help="SQLite ledger file (default: a temporary one)")
    p.add_argument("--agent-id", default=None, help="agent id (default: the demo agent)")
    p.add_argument("--member", action="append", default=[], metavar="NAME=BALANCE",
                   help="seed a member (repeatable)")  # fmt: skip
    p.add_argument("--token-ttl", type=float, default=3600.0, help="token expiresIn, seconds")
    p.add_argument("--lock-hold", type=float, default=0.0,
                   help="seconds a cash-out holds the wallet lock (shows code 20)")  # fmt: skip
    p.add_argument("--repeat", choices=("same-result", "code-3"), default="same-result",
                   help="answer to a repeated transId")  # fmt: skip
    p.add_argument("--fault", action="append", default=[], metavar="SPEC",
                   help="e.g. drop:p=0.1  delay:seconds=2,count=3  http_error:status=503  "
                   "code:code=20,p=0.2 (repeatable)")  # fmt: skip
    p.add_argument("--seed", type=int, default=None, help="seed for fault probabilities")
    p.set_defaults(func=_cmd_sandbox)

    p = sub.add_parser("demo", help="cash out and query against a local sandbox (or VPSEAL_*)")
    p.add_argument("username", nargs="?", help="member (required when VPSEAL_BASE_URL is set)")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "sandbox" and args.agent_id is None:
        from vpseal.sandbox import DEMO_AGENT_ID

        args.agent_id = DEMO_AGENT_ID
    try:
        status: int = args.func(args)
    except KeyboardInterrupt:  # the commands that can move money report it themselves
        print("vpseal: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `vpseal demo | head`: the reader left; no traceback for that
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_API
    return status


__all__ = ["build_parser", "main", "version_text"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
