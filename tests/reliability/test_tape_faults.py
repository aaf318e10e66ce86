"""RELIABILITY.md TD1, TD2, TD4, TD5 (TD3 is the chunking property in tests/tape/test_writer.py)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import pytest

from emerald.errors import CorruptFileError
from emerald.tape.coverage import audit, coverage
from emerald.tape.manifest import load_manifest
from emerald.tape.reader import Tape
from emerald.tape.writer import TapeWriter, write_tape
from emerald.testing.tapes import T0, make_trades

V, S = "binance-usdm", "BTCUSDT"
HOUR = 3600 * 10**9


def _build(root: Path, days: int = 4) -> None:
    write_tape(root, "trades", V, S, make_trades(days * 1440, mean_gap_ns=60 * 10**9))


def _victim(root: Path) -> Path:
    files = sorted((root / "trades").rglob("*.parquet"))
    assert len(files) >= 4
    return files[1]


def _truncate(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _flip_footer(p: Path) -> None:
    data = bytearray(p.read_bytes())
    for i in range(len(data) - 40, len(data) - 12):
        data[i] ^= 0xFF
    p.write_bytes(bytes(data))


def _zero(p: Path) -> None:
    p.write_bytes(b"")


def _flip_page(p: Path) -> None:  # same size, valid footer: only the hash can tell
    data = bytearray(p.read_bytes())
    data[200] ^= 0xFF
    p.write_bytes(bytes(data))


@pytest.mark.parametrize("mutate,verify", [(_truncate, "footer"), (_flip_footer, "footer"), (_zero, "footer"),
                                           (_flip_page, "hash")])
def test_td1_corrupt_file_strict_raises_lenient_quarantines(tmp_path: Path, mutate, verify) -> None:
    _build(tmp_path)
    victim = _victim(tmp_path)
    rel = victim.relative_to(tmp_path).as_posix()
    man = load_manifest(tmp_path)
    files_total, manifest_rows = len(man["files"]), sum(f["rows"] for f in man["files"].values())
    victim_rows = man["files"][rel]["rows"]
    mutate(victim)
    with pytest.raises(CorruptFileError) as err:
        Tape(tmp_path, verify=verify).read_arrow("trades")
    assert str(victim) in str(err.value)
    lenient = Tape(tmp_path, strict=False, verify=verify)
    t = lenient.read_arrow("trades")
    assert [p.path for p in lenient.problems] == [rel]
    files_ok = len(load_manifest(tmp_path)["files"])
    assert files_ok + len(lenient.problems) == files_total
    assert t.num_rows + lenient.problems[0].rows == manifest_rows and lenient.problems[0].rows == victim_rows
    assert (tmp_path / "_quarantine" / "_files" / rel).exists() and not victim.exists()
    assert rel in load_manifest(tmp_path)["quarantined_files"]
    assert audit(tmp_path).ok  # what is left is sound


def test_td1_stray_temp_file_is_never_read_and_is_reported(tmp_path: Path) -> None:
    _build(tmp_path)
    d = _victim(tmp_path).parent
    stray = d / ".tmp-deadbeef.parquet"
    stray.write_bytes(_victim(tmp_path).read_bytes()[:100])
    rows = sum(f["rows"] for f in load_manifest(tmp_path)["files"].values())
    assert Tape(tmp_path).read_arrow("trades").num_rows == rows
    a = audit(tmp_path)
    assert not a.ok and a.stray_files == [stray.relative_to(tmp_path).as_posix()]
    a2 = audit(tmp_path, lenient=True)
    assert a2.stray_files and not stray.exists()
    assert (tmp_path / "_quarantine" / "_stray" / stray.relative_to(tmp_path)).exists()
    assert audit(tmp_path).ok


_KILL_SCRIPT = r"""
import sys, numpy as np
from emerald.tape.writer import TapeWriter
from emerald.testing.tapes import make_trades
root = sys.argv[1]
for i in range(10_000):
    with TapeWriter(root) as w:
        w.write("trades", "binance-usdm", "BTCUSDT", make_trades(20_000, seed=i % 7, mean_gap_ns=10**10))
    if i == 0:
        print("ready", flush=True)  # one commit is on disk: every kill from now on hits a live tape
"""


def test_td1_killing_the_writer_never_leaves_a_readable_half_file(tmp_path: Path) -> None:
    """SIGKILL the writer 50 times at random moments: the manifest always parses, every file it
    lists verifies its sha256, and whatever else is on disk is a temp file or a complete orphan."""
    rng = np.random.default_rng(20261121)
    root = tmp_path / "tape"
    survived = 0
    for k in range(50):
        proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(root)], stdout=subprocess.PIPE,
                                env={**os.environ, "PYTHONHASHSEED": "0"})
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(float(rng.uniform(0.0, 0.4)))  # a commit takes ~0.05-0.2 s: kills land at every stage
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        if not (root / "_manifest.json").exists():
            continue
        survived += 1
        man = orjson.loads((root / "_manifest.json").read_bytes())
        for rel, info in man["files"].items():
            data = (root / rel).read_bytes()
            assert hashlib.sha256(data).hexdigest() == info["sha256"], f"kill {k}: {rel}"
        Tape(root, verify="hash").read_arrow("trades")
    assert survived == 50
    a = audit(root)
    assert a.bad_files == []
    assert all(s.split("/")[-1].startswith((".tmp-", "part-")) for s in a.stray_files)


def test_td2_outputs_do_not_depend_on_the_machine_time_zone(tmp_path: Path) -> None:
    script = r"""
import sys, numpy as np
from emerald.tape.timeutil import local_strings_to_ns
from emerald.tape.writer import write_tape
ts = local_strings_to_ns(["2023-10-29 00:30:00", "2023-10-29 01:30:00", "2023-10-29 02:30:00",
                          "2024-03-31 00:30:00", "2024-03-31 02:30:00"], "%Y-%m-%d %H:%M:%S", "Europe/London")
print(",".join(map(str, ts)))
write_tape(sys.argv[1], "funding", "binance-usdm", "BTCUSDT", {"ts_event": ts, "rate": np.full(5, 1e-4),
           "interval_ns": np.full(5, 8 * 3600 * 10**9), "next_funding_ts": ts, "is_settlement": np.ones(5, bool)})
"""
    outs, hashes = set(), set()
    for tz in ("UTC", "America/New_York", "Asia/Kolkata", "Pacific/Chatham"):
        root = tmp_path / tz.replace("/", "_")
        res = subprocess.run([sys.executable, "-c", script, str(root)], capture_output=True, check=True,
                             env={**os.environ, "TZ": tz})
        outs.add(res.stdout)
        hashes.add(load_manifest(root)["content_hash"])
    assert len(outs) == 1 and len(hashes) == 1
    ts = [int(x) for x in outs.pop().decode().strip().split(",")]
    iso = [str(np.datetime64(t, "ns")) for t in ts]
    # 01:30 on 2023-10-29 happens twice in London: the earlier (BST) instant is taken
    assert iso[:3] == ["2023-10-28T23:30:00.000000000", "2023-10-29T00:30:00.000000000",
                       "2023-10-29T02:30:00.000000000"]
    assert iso[3:] == ["2024-03-31T00:30:00.000000000", "2024-03-31T01:30:00.000000000"]


def test_td2_naive_times_need_a_zone_and_units_are_explicit() -> None:
    from emerald.errors import DataError
    from emerald.tape.timeutil import guess_int_unit, int_to_ns, local_strings_to_ns

    with pytest.raises(DataError, match="declare one with --tz.*field `time`"):
        local_strings_to_ns(["2024-01-01 00:00:00"], "%Y-%m-%d %H:%M:%S", None, path="x.csv")
    ms, us, ns = 1_680_652_700_423, 1_680_652_700_423_575, 1_680_652_700_423_575_000
    assert [guess_int_unit(np.array([v])) for v in (ms, us, ns)] == ["ms", "us", "ns"]
    assert int_to_ns(np.array([ms]), "ms")[0] == ms * 10**6


def test_td4_injected_gaps_are_all_detected(tmp_path: Path) -> None:
    d = make_trades(5000, mean_gap_ns=2 * 10**9)  # ~2.8 h, max natural gap well under 60 s
    ts = d["ts_event"]
    holes = [(500, 5 * 60), (1500, 3600), (4200, 61)]  # (row, seconds removed)
    keep = np.ones(ts.size, dtype=bool)
    injected = []
    for row, secs in holes:
        lo, hi = ts[row], ts[row] + secs * 10**9
        keep &= ~((ts > lo) & (ts < hi))
        injected.append(lo)
    write_tape(tmp_path, "trades", V, S, {k: v[keep] for k, v in d.items()})
    (cov,) = coverage(tmp_path, "trades")
    assert len(cov.gaps) == len(holes)
    assert [g.start for g in cov.gaps] == sorted(injected)
    assert all(g.end - g.start > 60 * 10**9 for g in cov.gaps)


def test_td5_missing_funding_settlements_are_reported_never_zero(tmp_path: Path) -> None:
    interval = 8 * HOUR
    first = (T0 // interval + 1) * interval
    settle = first + np.arange(15) * interval  # 5 days
    present = np.delete(settle, [4, 9])
    with TapeWriter(tmp_path) as w:
        w.write("funding", V, S, {"ts_event": present, "rate": np.full(present.size, 1e-4),
                                  "interval_ns": np.full(present.size, interval), "next_funding_ts": present + interval,
                                  "is_settlement": np.ones(present.size, bool)})
        trades = make_trades(100)
        trades["ts_event"] = np.linspace(settle[0] - 10**9, settle[-1] + 10**9, 100).astype(np.int64)
        w.write("trades", V, S, trades)
    (cov,) = coverage(tmp_path, "funding")
    f = cov.funding
    assert f is not None and f["missing"] == 2 and f["expected"] == 15
    missing = [str(np.datetime64(int(t) // 10**9, "s")) + "Z" for t in settle[[4, 9]]]
    assert f["missing_list"] == missing
    assert f["coverage"] < 1.0
    rates = Tape(tmp_path).read_numpy("funding", V, S)["rate"]
    assert rates.size == 13 and not np.any(rates == 0)  # nothing invented
