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
        assert len(sp) == 0 and [f.name for f in (disk.path / "spool").iterdir()] == [".lock"]
        filler.unlink()
        sp.push(big, 1)
        assert len(sp) == 1 and sp.error == "" and DiskSpool(disk.path / "spool").points == 1


_HOLDER = """
import sys
sys.path.insert(0, {root!r})
from sinks.spool import DiskSpool
sp = DiskSpool({path!r})
for i in range({batches}):
    sp.push(("m v=%di %d\\n" % (i, i)).encode(), 1)
print("ready", flush=True)
sys.stdin.readline()
"""


def _holder(path, batches: int = 0) -> subprocess.Popen:
    """A process that opens the spool at ``path`` (pushing ``batches``) and holds it until its stdin closes."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER.format(root=os.getcwd(), path=str(path), batches=batches)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_a_spool_held_by_another_process_is_refused_naming_it(tmp_path):
    """Two writers on one directory would overwrite and remove each other's batches: the second is refused."""
    import pytest

    from sinks.spool import SpoolInUse

    proc = _holder(tmp_path)
    try:
        with pytest.raises(SpoolInUse) as err:
            DiskSpool(tmp_path)
        assert err.value.pid == proc.pid and f"in use by process {proc.pid}" in str(err.value)
        assert str(tmp_path) in str(err.value)
    finally:
        proc.communicate("\n", timeout=30)
    DiskSpool(tmp_path).push(_batch(1), 50)  # the holder exited: its lock went with it


def test_batches_left_in_a_shared_directory_are_taken_over_when_no_one_holds_it(tmp_path):
    """``adopt_from``: a process's own spool takes over, in order, what an older layout left in the
    config's spool_dir; not while a live process spools there."""
    base = tmp_path / "spool"
    _holder(base, batches=3).communicate("\n", timeout=30)   # wrote 3 batches, then exited
    live = _holder(tmp_path / "busy", batches=2)
    try:
        mine = DiskSpool(base / "shard-0", adopt_from=base)
        busy = DiskSpool(base / "shard-1", adopt_from=tmp_path / "busy")
        assert mine.adopted == 3 and len(mine) == 3 and not list(base.glob("*.lp.gz"))
        assert busy.adopted == 0 and len(busy) == 0 and len(list((tmp_path / "busy").glob("*.lp.gz"))) == 2
    finally:
        live.communicate("\n", timeout=30)
    values = []
    while (got := mine.peek()) is not None:
        values.append(got[1])
        mine.remove(got[0])
    assert values == [b"m v=0i 0\n", b"m v=1i 1\n", b"m v=2i 2\n"]
    again = DiskSpool(base / "shard-0", adopt_from=base)
    assert again.adopted == 0 and len(again) == 0  # nothing adopted twice
