"""A flapping transfer switch floods the receiver; another device's traps still all get through."""
from __future__ import annotations

import asyncio
import socket

from collectors.snmp.traps.listener import TrapListener, TrapSettings
from tests.traps.conftest import capture, send, snmp_target
from testkit.wait import wait_until

FLOOD = 3000
QUIET = 20


def test_storm_from_one_device_does_not_starve_another(netsnmp_env):
    # one real datagram (net-snmp's), replayed: the flood costs the test nothing per trap
    datagram = capture(netsnmp_env, "snmptrap", "-v2c", "-c", "trapc", "|1.3.6.1.2.1.33.2.1")
    targets = [snmp_target("ats-1", "127.0.0.3", tags={"device": "ats-1"}),
               snmp_target("ups-1", "127.0.0.4", tags={"device": "ups-1"})]
    polls: list[str] = []

    async def main():
        got: list = []
        lis = await TrapListener(targets, got.extend, poll_now=lambda d: polls.append(d) or True,
                                 settings=TrapSettings(host="127.0.0.1", port=0, rate_per_s=5, burst=20,
                                                       poll_gap_s=1.0)).start()
        dest = ("127.0.0.1", lis.port)
        flooder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        flooder.bind(("127.0.0.3", 0))
        quiet = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        quiet.bind(("127.0.0.4", 0))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            for i in range(FLOOD):
                flooder.sendto(datagram, dest)
                if i % (FLOOD // QUIET) == 0:
                    quiet.sendto(datagram, dest)
                if i % 100 == 0:
                    await asyncio.sleep(0)  # let the receiver read: the socket buffer is finite
            st = lis.receiver.stats
            assert await wait_until(lambda: st.received + lis.limiter.limited == FLOOD + QUIET, timeout=30)
            elapsed = loop.time() - t0
        finally:
            flooder.close()
            quiet.close()
            lis.close()
        by_dev = {d: sum(1 for s in got if s.measurement == "ups" and s.tags["device"] == d) for d in ("ats-1", "ups-1")}
        assert by_dev["ups-1"] == QUIET  # every trap of the quiet device
        assert 20 <= by_dev["ats-1"] <= 20 + 5 * elapsed + 1  # the flooder gets its burst plus its rate
        assert lis.limiter.limited == FLOOD - by_dev["ats-1"]  # nothing dropped uncounted
        reported = sum(s.fields.get("suppressed", 0) for s in got if s.measurement == "trap")
        assert reported + sum(lis.limiter.pending().values()) == lis.limiter.limited
        stats = lis.stats_sample({"site": "t"})
        assert stats.fields["rate_limited"] == lis.limiter.limited
        assert stats.fields["received"] == FLOOD + QUIET
        # polls asked for: at most one per device per poll_gap_s, the flood included
        assert 1 <= polls.count("ats-1") <= elapsed / 1.0 + 1 and polls.count("ups-1") >= 1

    asyncio.run(main())


def test_informs_from_an_unknown_device_are_refused_without_reply(netsnmp_env):
    async def main():
        lis = await TrapListener([snmp_target("u", "127.0.0.1")], lambda s: None,
                                 settings=TrapSettings(host="127.0.0.1", port=0)).start()
        try:
            rc = await send(netsnmp_env, "snmpinform", "-v2c", "-c", "trapc", "--clientaddr=127.0.0.42", "-t", "0.3",
                            "-r", "0", f"127.0.0.1:{lis.port}", "", "1.3.6.1.2.1.33.2.1")
        finally:
            lis.close()
        assert rc != 0 and lis.receiver.stats.refused["unknown_sender"] == 1

    asyncio.run(main())
