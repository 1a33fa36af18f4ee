"""The sandbox's ledger: members and transactions in SQLite (WAL), money as integer micro-units.

Every balance change is one SQLite transaction that also writes the transaction row, so a crash
leaves either all of a cash-out or none of it, and the sum of all transaction amounts always
equals the sum of balances (``totals()["conserved"]``). Writes are opened with BEGIN IMMEDIATE
(the write lock is taken before reading the balance) and, within one process, serialised by a
Python lock so that busy threads queue fairly instead of polling SQLite's busy handler.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

MICROS = 1_000_000
# The largest amount (in units) the ledger takes: micro-units are stored as SQLite's 64-bit
# INTEGER (at most about 9.2e18), and a wallet balance of more than 10**12 is not plausible.
MAX_AMOUNT_DIGITS = 12
MAX_AMOUNT = 10**MAX_AMOUNT_DIGITS
MAX_AMOUNT_TEXT = 64  # characters of an amount given as text
_TOO_LARGE = f"amount must be at most 10**{MAX_AMOUNT_DIGITS} in magnitude"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS members (
    agent TEXT NOT NULL,
    username TEXT NOT NULL,
    balance INTEGER NOT NULL CHECK (balance >= 0),
    blocked INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (agent, username)
);
CREATE TABLE IF NOT EXISTS transactions (
    agent TEXT NOT NULL,
    trans_id TEXT NOT NULL,
    username TEXT NOT NULL,
    kind TEXT NOT NULL,
    amount INTEGER NOT NULL,
    balance_after INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (agent, trans_id)
);
CREATE INDEX IF NOT EXISTS transactions_member ON transactions (agent, username);
"""


def to_micros(value: Decimal | int | str) -> int:
    """Exact micro-units of an amount with at most 6 decimals and a magnitude of at most
    MAX_AMOUNT; ValueError otherwise.

    The bounds are checked on the digits and the exponent before any arithmetic, so that a
    value such as "1e999999" is refused at once instead of being expanded into a huge integer.
    """
    if isinstance(value, (bool, float)):
        raise ValueError("amounts must be Decimal, int or a decimal string, never float")
    if isinstance(value, int):
        if abs(value) > MAX_AMOUNT:
            raise ValueError(_TOO_LARGE)
        return value * MICROS
    if isinstance(value, str):
        if len(value) > MAX_AMOUNT_TEXT:
            raise ValueError(f"amount is longer than {MAX_AMOUNT_TEXT} characters")
        try:
            amount = Decimal(value)
        except (InvalidOperation, ValueError):
            raise ValueError("amount is not a decimal number") from None
    elif isinstance(value, Decimal):
        amount = value
    else:
        raise ValueError("amount must be a decimal number")
    if not amount.is_finite():
        raise ValueError("amount must be finite")
    sign, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)  # finite
    significant = len(digits)
    while significant and digits[significant - 1] == 0:  # 1.500 is 15e-1
        significant -= 1
        exponent += 1
    if not significant:
        return 0
    if exponent < -6:
        raise ValueError("amount has more than 6 decimal places")
    if exponent + significant > MAX_AMOUNT_DIGITS + 1:  # at least 10 * MAX_AMOUNT
        raise ValueError(_TOO_LARGE)
    # now at most MAX_AMOUNT_DIGITS + 6 digits: cheap, exact integer arithmetic
    micros = int("".join(map(str, digits[:significant]))) * int(10 ** (exponent + 6))
    if micros > MAX_AMOUNT * MICROS:
        raise ValueError(_TOO_LARGE)
    return -micros if sign else micros


def from_micros(micros: int) -> Decimal:
    """The Decimal of micro-units, without trailing zeros or exponent ('2323.582', '0')."""
    value = Decimal(micros).scaleb(-6).normalize()
    return Decimal(format(value, "f"))


def format_time(created_ms: int) -> str:
    """'YYYY-MM-DDTHH:mm:ss.SSSZ' in UTC, as the API writes transactionTime."""
    moment = datetime.fromtimestamp(created_ms / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{created_ms % 1000:03d}Z"


@dataclass(frozen=True)
class LedgerTransaction:
    """One row of the transactions table; amount < 0 is a withdrawal."""

    agent: str
    trans_id: str
    username: str
    kind: str
    amount: int
    balance_after: int
    created_ms: int


@dataclass(frozen=True)
class CashoutOutcome:
    """What a cash-out did: code 0 (with the row), 2, 8 or 19; ``repeat``: the transId existed."""

    code: int
    transaction: LedgerTransaction | None = None
    repeat: bool = False


class Ledger:
    """Members and transactions of any number of agents, in one SQLite file."""

    def __init__(self, path: str | Path, *, pool_size: int = 8) -> None:
        self.path = str(path)
        self._pool: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._all: list[sqlite3.Connection] = []
        self._made = threading.Lock()
        self._write = threading.Lock()
        self._pool_size = pool_size
        self._closed = False
        with self._connection() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)

    def __repr__(self) -> str:
        return f"Ledger(path={self.path!r})"

    def _new_connection(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit is atomic and survives a process crash; only a power
        # loss may roll back the latest commits (never half of one).
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise RuntimeError("ledger is closed")
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = self._new_connection()
            with self._made:
                self._all.append(conn)
        try:
            yield conn
        finally:
            if self._closed:
                conn.close()
            else:
                self._pool.put(conn)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception, a failed COMMIT included
        (a connection must never go back to the pool with a transaction still open)."""
        with self._write, self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):  # keep the original error
                        conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self._closed = True
        with self._made:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()

    # -- members

    def set_member(
        self, agent: str, username: str, balance: int, *, blocked: bool = False
    ) -> LedgerTransaction | None:
        """Create or update a member; a balance change is booked as an 'adjust' transaction so
        that the books stay balanced. Returns that transaction, if any."""
        if balance < 0:
            raise ValueError("balance must be >= 0")
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT balance FROM members WHERE agent=? AND username=?", (agent, username)
            ).fetchone()
            old = 0 if row is None else int(row[0])
            conn.execute(
                "INSERT INTO members (agent, username, balance, blocked) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (agent, username) DO UPDATE SET balance=excluded.balance, "
                "blocked=excluded.blocked",
                (agent, username, balance, int(blocked)),
            )
            if balance == old:
                return None
            tx = LedgerTransaction(
                agent, "adjust-" + uuid.uuid4().hex, username, "adjust",
                balance - old, balance, _now_ms(),
            )  # fmt: skip
            _insert(conn, tx)
            return tx

    def member(self, agent: str, username: str) -> tuple[int, bool] | None:
        """(balance in micro-units, blocked) or None."""
        with self._connection() as conn:
            row = conn.execute(
                "SELECT balance, blocked FROM members WHERE agent=? AND username=?",
                (agent, username),
            ).fetchone()
        return None if row is None else (int(row[0]), bool(row[1]))

    # -- transactions

    def find(self, agent: str, trans_id: str) -> LedgerTransaction | None:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT agent, trans_id, username, kind, amount, balance_after, created_ms "
                "FROM transactions WHERE agent=? AND trans_id=?",
                (agent, trans_id),
            ).fetchone()
        return None if row is None else LedgerTransaction(*row)

    def history(self, agent: str, username: str | None = None) -> list[LedgerTransaction]:
        """Transactions of an agent (or one member), oldest first."""
        sql = (
            "SELECT agent, trans_id, username, kind, amount, balance_after, created_ms "
            "FROM transactions WHERE agent=?"
        )
        args: tuple[str, ...] = (agent,)
        if username is not None:
            sql += " AND username=?"
            args += (username,)
        with self._connection() as conn:
            rows = conn.execute(sql + " ORDER BY rowid", args).fetchall()
        return [LedgerTransaction(*row) for row in rows]

    def cashout(self, agent: str, username: str, trans_id: str) -> CashoutOutcome:
        """Withdraw the whole balance in one transaction; a known transId is not re-applied."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT agent, trans_id, username, kind, amount, balance_after, created_ms "
                "FROM transactions WHERE agent=? AND trans_id=?",
                (agent, trans_id),
            ).fetchone()
            if row is not None:
                return CashoutOutcome(0, LedgerTransaction(*row), repeat=True)
            member = conn.execute(
                "SELECT balance, blocked FROM members WHERE agent=? AND username=?",
                (agent, username),
            ).fetchone()
            if member is None:
                return CashoutOutcome(8)
            balance, blocked = int(member[0]), bool(member[1])
            if blocked:
                return CashoutOutcome(19)
            if balance == 0:
                return CashoutOutcome(2)
            tx = LedgerTransaction(agent, trans_id, username, "cashout", -balance, 0, _now_ms())
            conn.execute(
                "UPDATE members SET balance=0 WHERE agent=? AND username=?", (agent, username)
            )
            _insert(conn, tx)
            return CashoutOutcome(0, tx)

    def totals(self, agent: str | None = None) -> dict[str, object]:
        """Sums for the conservation check (amounts as Decimal)."""
        where, args = ("WHERE agent=?", (agent,)) if agent is not None else ("", ())
        with self._connection() as conn:
            try:
                members, balances = conn.execute(
                    f"SELECT COUNT(*), COALESCE(SUM(balance), 0) FROM members {where}", args
                ).fetchone()
                count, credits, debits, cashouts = conn.execute(
                    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN amount > 0 THEN amount END), 0), "
                    "COALESCE(SUM(CASE WHEN amount < 0 THEN -amount END), 0), "
                    f"COALESCE(SUM(kind = 'cashout'), 0) FROM transactions {where}",
                    args,
                ).fetchone()
            except sqlite3.OperationalError as exc:  # a sum beyond 64 bits: add up in Python
                if "overflow" not in str(exc):
                    raise
                rows = conn.execute(f"SELECT balance FROM members {where}", args)
                members, balances = 0, 0
                for (balance,) in rows:
                    members, balances = members + 1, balances + balance
                rows = conn.execute(f"SELECT amount, kind FROM transactions {where}", args)
                count = credits = debits = cashouts = 0
                for amount, kind in rows:
                    count += 1
                    credits += max(amount, 0)
                    debits += max(-amount, 0)
                    cashouts += kind == "cashout"
        return {
            "members": int(members),
            "transactions": int(count),
            "cashouts": int(cashouts),
            "balance_total": from_micros(int(balances)),
            "credit_total": from_micros(int(credits)),
            "debit_total": from_micros(int(debits)),
            "conserved": int(credits) - int(debits) == int(balances),
        }


def _insert(conn: sqlite3.Connection, tx: LedgerTransaction) -> None:
    conn.execute(
        "INSERT INTO transactions (agent, trans_id, username, kind, amount, balance_after, "
        "created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (tx.agent, tx.trans_id, tx.username, tx.kind, tx.amount, tx.balance_after, tx.created_ms),
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
