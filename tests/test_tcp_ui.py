"""The tcp_info columns, the details panel's TCP internals and closing one connection, through Pilot, against a
real paced loopback transfer between two processes."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import wait_for
from textual.widgets import SelectionList

from netscope.app.netscope_app import NetscopeApp
from netscope.app.screens.columns import ColumnsScreen
from netscope.app.screens.confirm_close import ConfirmCloseScreen
from netscope.app.screens.details import DetailsScreen
from netscope.collectors.session.config import load_config

SIZE = (160, 45)
MIB = 1 << 20
TOTAL = 6 * MIB
SECONDS = 4.0

# Sends TOTAL bytes to its one client, paced over SECONDS, then keeps running (and says whether its connection
# was closed under it) until killed.
SENDER = textwrap.dedent("""
    import socket, sys, time
    host, size, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    listener = socket.create_server((host, 0))
    print(listener.getsockname()[1], flush=True)
    conn, _ = listener.accept()
    chunk = 64 << 10
    chunks = size // chunk
    start = time.monotonic()
    try:
        for index in range(chunks):
            delay = start + index * seconds / chunks - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            conn.sendall(b"x" * chunk)
        print("sent", flush=True)
        conn.recv(1)  # blocks until the connection is closed one way or another
        print("eof", flush=True)
    except OSError as error:  # a program that survives losing one connection, as servers do
        print(f"error {error.errno}", flush=True)
    time.sleep(120)
""")
# Reads everything, then waits for the connection to end and says how it ended.
RECEIVER = textwrap.dedent("""
    import socket, sys
    host, port = sys.argv[1], int(sys.argv[2])
    conn = socket.create_connection((host, port))
    print(conn.getsockname()[1], flush=True)
    received = 0
    try:
        while True:
            data = conn.recv(1 << 16)
            if not data:
                print("eof", flush=True)
                break
            received += len(data)
    except OSError as error:
        print(f"error {error.errno} after {received}", flush=True)
""")


class Transfer:
    def __init__(self) -> None:
        self.host = f"127.{random.randint(100, 249)}.{random.randint(0, 255)}.1"
        self.sender = subprocess.Popen(
            [sys.executable, "-c", SENDER, self.host, str(TOTAL), str(SECONDS)], stdout=subprocess.PIPE, text=True
        )
        assert self.sender.stdout is not None
        self.port = int(self.sender.stdout.readline())
        self.receiver = subprocess.Popen(
            [sys.executable, "-c", RECEIVER, self.host, str(self.port)], stdout=subprocess.PIPE, text=True
        )
        assert self.receiver.stdout is not None
        self.client_port = int(self.receiver.stdout.readline())

    def stop(self) -> None:
        for process in (self.sender, self.receiver):
            process.kill()
            process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()


@pytest.fixture
def transfer() -> Iterator[Transfer]:
    started = Transfer()
    yield started
    started.stop()


def sender_row(app: NetscopeApp, transfer: Transfer) -> int | None:
    for index, row in enumerate(app.table.rows):
        if row.local_port == transfer.port and row.remote_port == transfer.client_port:
            return index
    return None


def cells(app: NetscopeApp, index: int) -> list[str]:
    return app.table.row_text(index).split()


async def test_columns_show_the_transfer_climbing_and_the_total_matches(
    transfer: Transfer, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    app = NetscopeApp(interval=0.25, filter_text=f"ip:{transfer.host} established", config_file=config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 2)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ColumnsScreen))
        chooser = app.screen.query_one(SelectionList)
        for key in ("sent", "send_rate", "rtt"):
            chooser.select(key)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.table.metric_columns == ["sent", "send_rate", "rtt"])
        header = "".join(segment.text for segment in app.table.render_line(0))
        assert "Sent" in header and "Send/s" in header and "RTT" in header
        assert load_config(config).columns == ["sent", "send_rate", "rtt"]  # remembered

        # While the transfer runs: a rate in the megabytes per second on the sender's row.
        def sending_fast() -> bool:
            row = sender_row(app, transfer)
            if row is None:
                return False
            _, rate = app.session.metrics_of(app.table.rows[row].key)
            return rate is not None and (rate.send_rate or 0) > 0.3 * TOTAL / SECONDS

        await wait_for(pilot, sending_fast)
        row = sender_row(app, transfer)
        assert row is not None and cells(app, row)[-2].endswith("M")  # e.g. "1.6M" bytes a second
        # Done: the total is the bytes sent (TOTAL), the Sent column says so, and the rate falls back to 0.
        assert transfer.sender.stdout is not None and transfer.sender.stdout.readline().strip() == "sent"

        def finished() -> bool:
            found = sender_row(app, transfer)
            if found is None:
                return False
            info, rate = app.session.metrics_of(app.table.rows[found].key)
            return info is not None and info.bytes_acked == TOTAL and rate is not None and rate.send_rate == 0

        await wait_for(pilot, finished)
        row = sender_row(app, transfer)
        assert row is not None and cells(app, row)[-3] == "6.3M"  # 6,291,456 bytes, decimal units
        # The receiving end sent nothing but its SYN, which the kernel counts as one byte acked; its rtt is a time.
        other = 1 - row
        assert cells(app, other)[-3] == "1" and cells(app, other)[-1].endswith(("us", "ms"))

        await pilot.press("s")  # sort by the next column ... up to "Sent" works like any column
        app.table.sort_by("sent", reverse=True)
        await pilot.pause(0.3)
        assert sender_row(app, transfer) == 0

        # Details: the connection's TCP internals, live.
        app.table.move_cursor(0)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailsScreen))
        screen = app.screen
        assert isinstance(screen, DetailsScreen)
        await wait_for(pilot, lambda: "rtt" in str(screen.tcp_info.render()))
        text = str(screen.tcp_info.render())
        assert "6,291,456" in text and "cwnd" in text


@pytest.mark.root  # SOCK_DESTROY needs CAP_NET_ADMIN
async def test_x_closes_just_that_connection_and_the_programs_keep_running(transfer: Transfer) -> None:
    app = NetscopeApp(interval=0.25, filter_text=f"ip:{transfer.host}")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 3)  # the listener and both ends
        listener = next(i for i, row in enumerate(app.table.rows) if row.state == "LISTEN")
        app.table.move_cursor(listener)
        await pilot.press("x")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmCloseScreen)
        assert any("listening socket" in message for message in app.notices.messages)

        row = sender_row(app, transfer)
        assert row is not None
        app.table.move_cursor(row)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmCloseScreen))
        assert str(transfer.port) in str(app.screen.query_one("#confirm-body").render())
        await pilot.press("n")
        await pilot.pause(0.2)
        assert sender_row(app, transfer) is not None

        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmCloseScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: any(message.startswith("Closed") for message in app.notices.messages))
        # Both programs live on; the receiver saw a reset, the sender an abort on its own socket.
        assert transfer.receiver.stdout is not None
        assert transfer.receiver.stdout.readline().startswith("error 104")  # ECONNRESET
        assert transfer.sender.stdout is not None
        line = transfer.sender.stdout.readline().strip()
        if line == "sent":  # a slow machine: the transfer ended before the close
            line = transfer.sender.stdout.readline().strip()
        assert line == "error 103"  # ECONNABORTED, on its own socket only
        assert transfer.sender.poll() is None
        await wait_for(pilot, lambda: sender_row(app, transfer) is None or app.table.is_closed(
            app.table.rows[sender_row(app, transfer) or 0]))


async def test_in_a_replay_nothing_is_closed(tmp_path: Path) -> None:
    from fixed_views import record_fixed

    from netscope.collectors.recording import ReplaySource

    path = tmp_path / "fixed.nsrec"
    record_fixed(path)
    app = NetscopeApp(ReplaySource(path, playing=False), filter_text="established")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.refresh_count >= 1 and app.table.row_count > 0)
        await pilot.press("x")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmCloseScreen)
        assert any("This is a recording" in message for message in app.notices.messages)


async def test_bandwidth_per_process_and_host_in_the_top_view(transfer: Transfer) -> None:
    app = NetscopeApp(interval=0.25, filter_text=f"ip:{transfer.host}")
    collector = app.source.source  # type: ignore[attr-defined]  # the ProcessCollector inside the RecordingTee
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 3)
        assert not collector.tcp_info  # nothing shows tcp_info: it is not read
        await pilot.press("6")
        await wait_for(pilot, lambda: app.focused is app.top_view.table)
        await pilot.press("g", "g", "g", "g")
        assert app.top_view.grouping == "process_rate" and collector.tcp_info

        def busiest() -> str:
            groups = app.top_view.rates_shown
            fast = [g for g in groups if g.send_rate > 0.3 * TOTAL / SECONDS]
            return fast[0].key if fast else ""

        await wait_for(pilot, lambda: busiest().endswith(f"({transfer.sender.pid})"))
        # The table shows it: the sender's row sends megabytes a second, the receiver's receives them; they lead.
        table = app.top_view.rate_table
        rows = {str(row[0]): [str(cell) for cell in row] for row in map(table.get_row_at, range(table.row_count))}
        # (named by the interpreter's file name: python3, or python in a venv)
        sender = next(row for key, row in rows.items() if key.endswith(f" ({transfer.sender.pid})"))
        receiver = next(row for key, row in rows.items() if key.endswith(f" ({transfer.receiver.pid})"))
        assert sender[2].endswith("MB/s") and receiver[3].endswith("MB/s")
        assert {str(table.get_row_at(0)[0]), str(table.get_row_at(1)[0])} == {sender[0], receiver[0]}

        await pilot.press("g")
        assert app.top_view.grouping == "remote_rate"
        # Per remote host: the receiver's peer is `host`; the sender's is the receiver's address, which the kernel
        # chose as 127.0.0.1 (loopback's source address for all of 127.0.0.0/8).
        def received_from_host() -> bool:
            by_key = {group.key: group for group in app.top_view.rates_shown}
            host = by_key.get(transfer.host)
            return host is not None and host.recv_rate > 0.3 * TOTAL / SECONDS

        await wait_for(pilot, received_from_host)
        keys = [group.key for group in app.top_view.rates_shown]
        app.top_view.rate_table.move_cursor(row=keys.index(transfer.host))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.active_view == "connections")
        assert app.filter.text == f"ip:{transfer.host} rip:{transfer.host}"
        await pilot.press("6", "g")  # back to the socket counts: tcp_info is no longer read
        assert app.top_view.grouping == "remote_ip"
        await wait_for(pilot, lambda: not collector.tcp_info)
