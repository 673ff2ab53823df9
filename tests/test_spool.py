"""The disk spool: bounded, ordered, and whole after kill -9."""
from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import textwrap
import time

from sinks.spool import DiskSpool


def _batch(i: int) -> bytes:
    return gzip.compress(f"m,i={i} v={i}i {i}\n".encode() * 50, compresslevel=1)


def test_order_front_and_removal(tmp_path):
    sp = DiskSpool(tmp_path)
    for i in range(1, 4):
        sp.push(_batch(i), 50)
    sp.push_front(_batch(0), 50)
    seen = []
    while (head := sp.peek()) is not None:
        seq, payload, points = head
        seen.append(int(gzip.decompress(payload).split(b"i=")[1].split(b" ")[0]))
        sp.remove(seq)
    assert seen == [0, 1, 2, 3]
    assert sp.bytes == 0 and len(sp) == 0


def test_full_spool_drops_oldest_and_counts(tmp_path):
    size = len(_batch(1))
    sp = DiskSpool(tmp_path, max_bytes=size * 3 + 10)
    for i in range(1, 6):
        sp.push(_batch(i), 50)
    assert len(sp) == 3 and sp.dropped_batches == 2 and sp.dropped_points == 100
    assert gzip.decompress(sp.peek()[1]).startswith(b"m,i=3 ")


def test_drop_newest_policy_keeps_the_old_data(tmp_path):
    size = len(_batch(1))
    sp = DiskSpool(tmp_path, max_bytes=size * 2 + 10, policy="drop_newest")
    for i in range(1, 5):
        sp.push(_batch(i), 50)
    assert len(sp) == 2 and sp.dropped_batches == 2
    assert gzip.decompress(sp.peek()[1]).startswith(b"m,i=1 ")


def test_recovers_after_restart_and_discards_torn_writes(tmp_path):
    sp = DiskSpool(tmp_path)
    sp.push(_batch(1), 50)
    (tmp_path / "0000000000000999-50.tmp").write_bytes(b"half a batch")
    again = DiskSpool(tmp_path)
    assert len(again) == 1 and not list(tmp_path.glob("*.tmp"))
    again.push(_batch(2), 50)
    assert [gzip.decompress(again.peek()[1])[:6]] == [b"m,i=1 "]


def test_kill_9_mid_write_leaves_only_whole_batches(tmp_path):
    """A writer process is killed while pushing; every batch it reported is there and whole."""
    script = textwrap.dedent(f"""
        import gzip, sys
        sys.path.insert(0, {str(os.getcwd())!r})
        from sinks.spool import DiskSpool
        sp = DiskSpool({str(tmp_path)!r})
        for i in range(100000):
            sp.push(gzip.compress(b"m v=%di %d\\n" % (i, i) * 2000, compresslevel=1), 2000)
            print(i, flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    time.sleep(0.8)
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=10)
    reported = [int(x) for x in out.split()]
    assert len(reported) > 5, "the writer should have pushed some batches before the kill"
    sp = DiskSpool(tmp_path)
    assert len(sp) >= len(reported)  # the one in flight may have landed before the print
    values = []
    while (head := sp.peek()) is not None:
        seq, payload, points = head
        lines = gzip.decompress(payload).splitlines()  # raises if torn
        assert len(lines) == points == 2000
        values.append(int(lines[0].split(b"=")[1].split(b"i")[0]))
        sp.remove(seq)
    assert values == list(range(len(values)))  # in order, none missing, none twice


def test_a_full_disk_refuses_the_batch_whole_and_leaves_no_temporary(tmp_path):
    import pytest

    from sinks.spool import SpoolWriteError
    from testkit.tmpfs import Tmpfs

    with Tmpfs(tmp_path / "disk", size_kib=64) as disk:
        sp = DiskSpool(disk.path / "spool")
        filler = disk.fill()
        big = os.urandom(16 << 10)  # incompressible, bigger than any page left
        with pytest.raises(SpoolWriteError) as err:
            sp.push(big, 1)
        assert err.value.reason == "No space left on device" and sp.error == err.value.reason
        assert len(sp) == 0 and list((disk.path / "spool").iterdir()) == []
        filler.unlink()
        sp.push(big, 1)
        assert len(sp) == 1 and sp.error == "" and DiskSpool(disk.path / "spool").points == 1
