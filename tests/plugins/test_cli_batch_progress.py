"""``satdelta batch`` progress: bars on a terminal (a real pty), nothing when piped.

The CLI runs as a subprocess with its stderr on a pseudo-terminal of 120 columns (stdout
stays a pipe, as when the table is redirected to a file); the pairs run block by block
(``--runner blocks``) so each shows its blocks going by.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from tests.conftest import make_pair
from tests.plugins.test_cli_batch import rows
from tests.plugins.test_cli_detect import satdelta

#: 1300 x 2400 pixels: 2 x 3 blocks of the block runner's 1024 px (the last row and column
#: of blocks wide enough not to join the ones before them: `blocks.SLIVER_FRACTION`).
SHAPE = (1300, 2400)
BLOCKS = 6


def _pairs(tmp_path: Path, n: int) -> Path:
    lines = ["name,before,after"]
    for i in range(n):
        folder = tmp_path / f"p{i}"
        folder.mkdir()
        before, after, _ = make_pair(folder, shape=SHAPE, shift=(0.4, -0.3 + 0.2 * i))
        lines.append(f"p{i},{before},{after}")
    csv = tmp_path / "pairs.csv"
    csv.write_text("\n".join(lines) + "\n")
    return csv


def on_terminal(*args: str | os.PathLike[str], timeout: float = 240) -> tuple[int, str, str]:
    """Run the CLI with stderr on a 120-column pty: (exit code, stdout, stderr as drawn)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    cmd = [sys.executable, "-m", "satdelta.plugins.cli.main", *map(str, args)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL
    )  # fmt: skip
    os.close(slave)
    drawn = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed its end
                    break
                if not chunk:
                    break
                drawn += chunk
            elif proc.poll() is not None:
                break
        out = proc.communicate(timeout=max(deadline - time.monotonic(), 1))[0]
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out.decode(), drawn.decode(errors="replace")


def _states(drawn: str) -> list[str]:
    """Every line state tqdm drew (split at carriage returns and cursor moves)."""
    plain = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "\n", drawn)
    return [s.strip() for s in re.split(r"[\r\n]+", plain) if s.strip()]


def _assert_blocks_shown(states: list[str], name: str) -> None:
    counts = [
        int(m.group(1))
        for s in states
        if (m := re.match(rf"{name} blocks:\s+\d+%\|.*\| (\d+)/{BLOCKS} \[", s))
    ]
    assert counts, states
    assert counts[-1] == BLOCKS  # the last block arrived
    assert counts == sorted(counts)
    # one line per stage of the pair, blocks with an ETA (elapsed<remaining)
    for stage in ("open", "align", "fit", "candidates", "write"):
        assert any(s.startswith(f"{name} {stage}") for s in states), (stage, states)
    assert any(re.search(rf"{name} blocks:.*\[\d\d:\d\d<\d\d:\d\d", s) for s in states)


def test_batch_bars_on_a_terminal_and_nothing_when_piped(tmp_path: Path) -> None:
    csv = _pairs(tmp_path, 2)
    out = tmp_path / "out"
    args = ("batch", csv, "-o", out, "--runner", "blocks", "--workers", "2", "--min-area", "300")
    code, stdout, drawn = on_terminal(*args)
    assert code == 0, drawn
    table = rows(stdout)  # the table on stdout is untouched by the bars
    assert set(table) == {"p0", "p1"} and {r[1] for r in table.values()} == {"done"}
    assert "\x1b" not in stdout and "\r" not in stdout
    states = _states(drawn)
    for name in ("p0", "p1"):
        _assert_blocks_shown(states, name)
    assert any(re.match(r"pairs\s*:\s+50%\|.*\| 1/2 \[", s) for s in states), states
    assert re.match(r"pairs\s*:\s+100%\|.*\| 2/2 \[", states[-1]), states[-1]
    # piped: the same table and an empty stderr
    res = satdelta(*args, "--force")
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    assert rows(res.stdout).keys() == table.keys()
    assert [r[2] for r in sorted(rows(res.stdout).values())] == [
        r[2] for r in sorted(table.values())
    ]


def test_batch_bars_on_a_dask_cluster(tmp_path: Path, dask_cluster) -> None:
    csv = _pairs(tmp_path, 1)
    code, stdout, drawn = on_terminal(
        "batch", csv, "-o", tmp_path / "out", "--runner", "blocks", "--min-area", "300",
        "--scheduler", dask_cluster.scheduler_address,
    )  # fmt: skip
    assert code == 0, drawn
    assert rows(stdout)["p0"][1] == "done"
    _assert_blocks_shown(_states(drawn), "p0")
