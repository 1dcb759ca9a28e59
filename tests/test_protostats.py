"""Protocol statistics (`netstat -s`): captured /proc/net/{snmp,netstat,snmp6} text, broken text, real traffic."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from netscope.collectors.protostats import (
    GAUGES,
    LABELS,
    ProtocolCounter,
    ProtocolStatsCollector,
    RawCounter,
    StatsSnapshot,
    group_of_snmp6_name,
    parse_netstat,
    parse_snmp,
    parse_snmp6,
)

# --- Captured from this machine (Linux 6.18, x86-64) with `cat /proc/net/{snmp,netstat,snmp6}`, byte for byte. ---

CAPTURED_SNMP = (
    "Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos "
    "InDiscards InDelivers OutRequests OutDiscards OutNoRoutes ReasmTimeout ReasmReqds ReasmOKs "
    "ReasmFails FragOKs FragFails FragCreates OutTransmits\n"
    "Ip: 2 64 988744 0 0 0 0 0 988742 988038 0 0 0 0 0 0 0 0 0 988038\n"
    "Icmp: InMsgs InErrors InCsumErrors InDestUnreachs InTimeExcds InParmProbs InSrcQuenchs InRedirects "
    "InEchos InEchoReps InTimestamps InTimestampReps InAddrMasks InAddrMaskReps OutMsgs OutErrors "
    "OutRateLimitGlobal OutRateLimitHost OutDestUnreachs OutTimeExcds OutParmProbs OutSrcQuenchs "
    "OutRedirects OutEchos OutEchoReps OutTimestamps OutTimestampReps OutAddrMasks OutAddrMaskReps\n"
    "Icmp: 1 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    "IcmpMsg: InType3\n"
    "IcmpMsg: 1\n"
    "Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets "
    "CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\n"
    "Tcp: 1 200 120000 -1 181037 181014 0 100231 0 988863 988158 0 0 50185 0\n"
    "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti "
    "MemErrors\n"
    "Udp: 59 0 0 60 0 0 0 0 0\n"
    "UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors "
    "IgnoredMulti MemErrors\n"
    "UdpLite: 0 0 0 0 0 0 0 0 0\n"
)

CAPTURED_NETSTAT = (
    "TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed EmbryonicRsts PruneCalled RcvPruned "
    "OfoPruned OutOfWindowIcmps LockDroppedIcmps ArpFilter TW TWRecycled TWKilled PAWSActive PAWSEstab "
    "BeyondWindow TSEcrRejected PAWSOldAck PAWSTimewait DelayedACKs DelayedACKLocked DelayedACKLost "
    "ListenOverflows ListenDrops TCPHPHits TCPPureAcks TCPHPAcks TCPRenoRecovery TCPSackRecovery "
    "TCPSACKReneging TCPSACKReorder TCPRenoReorder TCPTSReorder TCPFullUndo TCPPartialUndo TCPDSACKUndo "
    "TCPLossUndo TCPLostRetransmit TCPRenoFailures TCPSackFailures TCPLossFailures TCPFastRetrans "
    "TCPSlowStartRetrans TCPTimeouts TCPLossProbes TCPLossProbeRecovery TCPRenoRecoveryFail "
    "TCPSackRecoveryFail TCPRcvCollapsed TCPBacklogCoalesce TCPDSACKOldSent TCPDSACKOfoSent "
    "TCPDSACKRecv TCPDSACKOfoRecv TCPAbortOnData TCPAbortOnClose TCPAbortOnMemory TCPAbortOnTimeout "
    "TCPAbortOnLinger TCPAbortFailed TCPMemoryPressures TCPMemoryPressuresChrono TCPSACKDiscard "
    "TCPDSACKIgnoredOld TCPDSACKIgnoredNoUndo TCPSpuriousRTOs TCPMD5NotFound TCPMD5Unexpected "
    "TCPMD5Failure TCPSackShifted TCPSackMerged TCPSackShiftFallback TCPBacklogDrop PFMemallocDrop "
    "TCPMinTTLDrop TCPDeferAcceptDrop IPReversePathFilter TCPTimeWaitOverflow TCPReqQFullDoCookies "
    "TCPReqQFullDrop TCPRetransFail TCPRcvCoalesce TCPOFOQueue TCPOFODrop TCPOFOMerge TCPChallengeACK "
    "TCPSYNChallenge TCPFastOpenActive TCPFastOpenActiveFail TCPFastOpenPassive TCPFastOpenPassiveFail "
    "TCPFastOpenListenOverflow TCPFastOpenCookieReqd TCPFastOpenBlackhole TCPSpuriousRtxHostQueues "
    "BusyPollRxPackets TCPAutoCorking TCPFromZeroWindowAdv TCPToZeroWindowAdv TCPWantZeroWindowAdv "
    "TCPSynRetrans TCPOrigDataSent TCPHystartTrainDetect TCPHystartTrainCwnd TCPHystartDelayDetect "
    "TCPHystartDelayCwnd TCPACKSkippedSynRecv TCPACKSkippedPAWS TCPACKSkippedSeq TCPACKSkippedFinWait2 "
    "TCPACKSkippedTimeWait TCPACKSkippedChallenge TCPWinProbe TCPKeepAlive TCPMTUPFail TCPMTUPSuccess "
    "TCPDelivered TCPDeliveredCE TCPAckCompressed TCPZeroWindowDrop TCPRcvQDrop TCPWqueueTooBig "
    "TCPFastOpenPassiveAltKey TcpTimeoutRehash TcpDuplicateDataRehash TCPDSACKRecvSegs "
    "TCPDSACKIgnoredDubious TCPMigrateReqSuccess TCPMigrateReqFailure TCPPLBRehash TCPAORequired "
    "TCPAOBad TCPAOKeyNotFound TCPAOGood TCPAODroppedIcmps\n"
    "TcpExt: 0 0 0 0 0 0 0 0 0 0 130869 0 0 0 0 0 0 0 0 817 23 0 0 0 33 312786 26 0 0 0 0 0 0 0 0 0 0 0 "
    "0 0 0 0 0 2 0 0 0 0 0 29 0 0 0 0 50015 74 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1620 0 "
    "0 0 0 0 0 0 0 0 0 0 0 2 0 1 72 72 8 0 262053 0 0 0 0 0 0 0 0 0 0 0 0 0 0 443015 0 0 0 0 0 0 2 0 0 "
    "0 0 0 0 0 0 0 0 0\n"
    "IpExt: InNoRoutes InTruncatedPkts InMcastPkts OutMcastPkts InBcastPkts OutBcastPkts InOctets "
    "OutOctets InMcastOctets OutMcastOctets InBcastOctets OutBcastOctets InCsumErrors InNoECTPkts "
    "InECT1Pkts InECT0Pkts InCEPkts ReasmOverlaps\n"
    "IpExt: 0 0 2 2 0 0 122632208 54415712 80 80 0 0 0 988744 0 0 0 0\n"
    "MPTcpExt: MPCapableSYNRX MPCapableSYNTX MPCapableSYNACKRX MPCapableACKRX MPCapableFallbackACK "
    "MPCapableFallbackSYNACK MPCapableSYNTXDrop MPCapableSYNTXDisabled MPCapableEndpAttempt "
    "MPFallbackTokenInit MPTCPRetrans MPJoinNoTokenFound MPJoinSynRx MPJoinSynBackupRx MPJoinSynAckRx "
    "MPJoinSynAckBackupRx MPJoinSynAckHMacFailure MPJoinAckRx MPJoinAckHMacFailure MPJoinRejected "
    "MPJoinSynTx MPJoinSynTxCreatSkErr MPJoinSynTxBindErr MPJoinSynTxConnectErr DSSNotMatching "
    "DSSCorruptionFallback DSSCorruptionReset InfiniteMapTx InfiniteMapRx DSSNoMatchTCP DataCsumErr "
    "OFOQueueTail OFOQueue OFOMerge NoDSSInWindow DuplicateData AddAddr AddAddrTx AddAddrTxDrop EchoAdd "
    "EchoAddTx EchoAddTxDrop PortAdd AddAddrDrop MPJoinPortSynRx MPJoinPortSynAckRx MPJoinPortAckRx "
    "MismatchPortSynRx MismatchPortAckRx RmAddr RmAddrDrop RmAddrTx RmAddrTxDrop RmSubflow MPPrioTx "
    "MPPrioRx MPFailTx MPFailRx MPFastcloseTx MPFastcloseRx MPRstTx MPRstRx SubflowStale SubflowRecover "
    "SndWndShared RcvWndShared RcvWndConflictUpdate RcvWndConflict MPCurrEstab Blackhole "
    "MPCapableDataFallback MD5SigFallback DssFallback SimultConnectFallback FallbackFailed WinProbe\n"
    "MPTcpExt: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 "
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
)

CAPTURED_SNMP6 = (
    "Ip6InReceives                   \t190\n"
    "Ip6InHdrErrors                  \t0\n"
    "Ip6InTooBigErrors               \t0\n"
    "Ip6InNoRoutes                   \t0\n"
    "Ip6InAddrErrors                 \t0\n"
    "Ip6InUnknownProtos              \t0\n"
    "Ip6InTruncatedPkts              \t0\n"
    "Ip6InDiscards                   \t0\n"
    "Ip6InDelivers                   \t184\n"
    "Ip6OutForwDatagrams             \t0\n"
    "Ip6OutRequests                  \t199\n"
    "Ip6OutDiscards                  \t0\n"
    "Ip6OutNoRoutes                  \t0\n"
    "Ip6ReasmTimeout                 \t0\n"
    "Ip6ReasmReqds                   \t0\n"
    "Ip6ReasmOKs                     \t0\n"
    "Ip6ReasmFails                   \t0\n"
    "Ip6FragOKs                      \t0\n"
    "Ip6FragFails                    \t0\n"
    "Ip6FragCreates                  \t0\n"
    "Ip6InMcastPkts                  \t6\n"
    "Ip6OutMcastPkts                 \t16\n"
    "Ip6InOctets                     \t16092\n"
    "Ip6OutOctets                    \t16844\n"
    "Ip6InMcastOctets                \t432\n"
    "Ip6OutMcastOctets               \t1256\n"
    "Ip6InBcastOctets                \t0\n"
    "Ip6OutBcastOctets               \t0\n"
    "Ip6InNoECTPkts                  \t190\n"
    "Ip6InECT1Pkts                   \t0\n"
    "Ip6InECT0Pkts                   \t0\n"
    "Ip6InCEPkts                     \t0\n"
    "Ip6OutTransmits                 \t199\n"
    "Icmp6InMsgs                     \t3\n"
    "Icmp6InErrors                   \t1\n"
    "Icmp6OutMsgs                    \t17\n"
    "Icmp6OutErrors                  \t0\n"
    "Icmp6InCsumErrors               \t0\n"
    "Icmp6OutRateLimitHost           \t0\n"
    "Icmp6InDestUnreachs             \t1\n"
    "Icmp6InPktTooBigs               \t0\n"
    "Icmp6InTimeExcds                \t0\n"
    "Icmp6InParmProblems             \t0\n"
    "Icmp6InEchos                    \t0\n"
    "Icmp6InEchoReplies              \t0\n"
    "Icmp6InGroupMembQueries         \t0\n"
    "Icmp6InGroupMembResponses       \t0\n"
    "Icmp6InGroupMembReductions      \t0\n"
    "Icmp6InRouterSolicits           \t0\n"
    "Icmp6InRouterAdvertisements     \t0\n"
    "Icmp6InNeighborSolicits         \t0\n"
    "Icmp6InNeighborAdvertisements   \t0\n"
    "Icmp6InRedirects                \t0\n"
    "Icmp6InMLDv2Reports             \t2\n"
    "Icmp6OutDestUnreachs            \t1\n"
    "Icmp6OutPktTooBigs              \t0\n"
    "Icmp6OutTimeExcds               \t0\n"
    "Icmp6OutParmProblems            \t0\n"
    "Icmp6OutEchos                   \t0\n"
    "Icmp6OutEchoReplies             \t0\n"
    "Icmp6OutGroupMembQueries        \t0\n"
    "Icmp6OutGroupMembResponses      \t0\n"
    "Icmp6OutGroupMembReductions     \t0\n"
    "Icmp6OutRouterSolicits          \t1\n"
    "Icmp6OutRouterAdvertisements    \t0\n"
    "Icmp6OutNeighborSolicits        \t5\n"
    "Icmp6OutNeighborAdvertisements  \t0\n"
    "Icmp6OutRedirects               \t0\n"
    "Icmp6OutMLDv2Reports            \t10\n"
    "Icmp6InType1                    \t1\n"
    "Icmp6InType143                  \t2\n"
    "Icmp6OutType1                   \t1\n"
    "Icmp6OutType133                 \t1\n"
    "Icmp6OutType135                 \t5\n"
    "Icmp6OutType143                 \t10\n"
    "Udp6InDatagrams                 \t0\n"
    "Udp6NoPorts                     \t0\n"
    "Udp6InErrors                    \t0\n"
    "Udp6OutDatagrams                \t0\n"
    "Udp6RcvbufErrors                \t0\n"
    "Udp6SndbufErrors                \t0\n"
    "Udp6InCsumErrors                \t0\n"
    "Udp6IgnoredMulti                \t0\n"
    "Udp6MemErrors                   \t0\n"
    "UdpLite6InDatagrams             \t0\n"
    "UdpLite6NoPorts                 \t0\n"
    "UdpLite6InErrors                \t0\n"
    "UdpLite6OutDatagrams            \t0\n"
    "UdpLite6RcvbufErrors            \t0\n"
    "UdpLite6SndbufErrors            \t0\n"
    "UdpLite6InCsumErrors            \t0\n"
    "UdpLite6MemErrors               \t0\n"
)


# --- Parsers on captured text ---------------------------------------------------------------------------------


def _by_group(counters: list[RawCounter]) -> dict[str, list[RawCounter]]:
    groups: dict[str, list[RawCounter]] = {}
    for counter in counters:
        groups.setdefault(counter.group, []).append(counter)
    return groups


def test_snmp_gives_every_pair_in_the_kernels_order() -> None:
    counters, warnings = parse_snmp(CAPTURED_SNMP)
    assert warnings == []
    groups = _by_group(counters)
    assert list(groups) == ["Ip", "Icmp", "IcmpMsg", "Tcp", "Udp", "UdpLite"]
    assert {group: len(found) for group, found in groups.items()} == {
        "Ip": 20,
        "Icmp": 29,
        "IcmpMsg": 1,
        "Tcp": 15,
        "Udp": 9,
        "UdpLite": 9,
    }
    assert counters[0] == RawCounter("Ip", "Forwarding", 2)
    assert counters[-1] == RawCounter("UdpLite", "MemErrors", 0)
    assert groups["IcmpMsg"] == [RawCounter("IcmpMsg", "InType3", 1)]
    tcp = {c.name: c.value for c in groups["Tcp"]}
    assert [c.name for c in groups["Tcp"]][:5] == ["RtoAlgorithm", "RtoMin", "RtoMax", "MaxConn", "ActiveOpens"]
    assert tcp["MaxConn"] == -1  # the one negative value the kernel prints
    assert (tcp["ActiveOpens"], tcp["PassiveOpens"], tcp["EstabResets"], tcp["OutRsts"]) == (
        181037,
        181014,
        100231,
        50185,
    )


def test_netstat_file_gives_tcpext_ipext_and_mptcpext() -> None:
    counters, warnings = parse_netstat(CAPTURED_NETSTAT)
    assert warnings == []
    groups = _by_group(counters)
    assert {group: len(found) for group, found in groups.items()} == {"TcpExt": 135, "IpExt": 18, "MPTcpExt": 76}
    assert list(groups) == ["TcpExt", "IpExt", "MPTcpExt"]
    values = {(c.group, c.name): c.value for c in counters}
    assert values[("TcpExt", "TW")] == 130869
    assert values[("TcpExt", "TCPDelivered")] == 443015
    assert values[("IpExt", "InOctets")] == 122632208
    assert groups["TcpExt"][0].name == "SyncookiesSent" and groups["TcpExt"][-1].name == "TCPAODroppedIcmps"


def test_snmp6_groups_come_from_the_name_prefix() -> None:
    counters, warnings = parse_snmp6(CAPTURED_SNMP6)
    assert warnings == []
    groups = _by_group(counters)
    assert {group: len(found) for group, found in groups.items()} == {
        "Ip6": 33,
        "Icmp6": 42,
        "Udp6": 9,
        "UdpLite6": 8,
    }
    assert list(groups) == ["Ip6", "Icmp6", "Udp6", "UdpLite6"]
    values = {c.name: c for c in counters}
    assert values["Ip6InReceives"] == RawCounter("Ip6", "Ip6InReceives", 190)
    assert values["Icmp6OutType143"] == RawCounter("Icmp6", "Icmp6OutType143", 10)
    assert values["UdpLite6MemErrors"].group == "UdpLite6"


@pytest.mark.parametrize(
    ("name", "group"),
    [
        ("Ip6InReceives", "Ip6"),
        ("Icmp6InType133", "Icmp6"),
        ("Icmp6OutMLDv2Reports", "Icmp6"),
        ("Udp6RcvbufErrors", "Udp6"),
        ("UdpLite6InErrors", "UdpLite6"),
        ("SctpCurrEstab", "Sctp"),  # /proc/net/sctp/snmp
        ("Foo6Bar", "Foo6"),  # an IPv6 group from a future kernel
        ("Weird", "Weird"),
        ("X", "X"),
    ],
)
def test_group_of_snmp6_name(name: str, group: str) -> None:
    assert group_of_snmp6_name(name) == group


# --- Parsers on broken text: skip what cannot be matched up, keep the rest, never raise ---------------------

GOOD_TCP = "Tcp: ActiveOpens CurrEstab\nTcp: 7 3\n"


@pytest.mark.parametrize(
    ("bad", "skipped"),
    [
        ("Ip: Forwarding DefaultTTL InReceives\nIp: 1 64\n", 2),  # fewer values than names
        ("Ip: Forwarding DefaultTTL\nIp: 1 64 9\n", 2),  # more values than names
        ("Ip: Forwarding DefaultTTL\nIp: 1 x\n", 2),  # not a number
        ("Ip: Forwarding DefaultTTL\nIp: 1 1.5\n", 2),
        # int() would take the next three; the kernel never prints them
        ("Ip: Forwarding DefaultTTL\nIp: 1 1_000\n", 2),
        ("Ip: Forwarding DefaultTTL\nIp: 1 +5\n", 2),
        ("Ip: Forwarding DefaultTTL\nIp: 1 \u0661\n", 2),
        ("Ip: Forwarding DefaultTTL\n", 1),  # names with no values line: the next group must survive
        ("Ip: 1 64\n", 1),  # values with no names line
        ("Ip Forwarding DefaultTTL\nIp 1 64\n", 2),  # no colon
        ("Ip: Forwarding DefaultTTL\nIcmp: 1 64\n", 2),  # the lines disagree on the group: each is alone
        (": A\n: 1\n", 2),  # an empty group
        ("Ip: 1 2\nIp: 3 4\n", 2),  # numbers as names
        ("\x00\xff\ufffd garbage\n", 1),
    ],
)
def test_broken_pairs_are_skipped_and_the_rest_kept(bad: str, skipped: int) -> None:
    counters, warnings = parse_snmp(bad + GOOD_TCP, "snmp-under-test")
    assert counters == [RawCounter("Tcp", "ActiveOpens", 7), RawCounter("Tcp", "CurrEstab", 3)]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"snmp-under-test: skipped {skipped} malformed line")
    # The same damage after a good group does not disturb it either.
    counters, warnings = parse_snmp(GOOD_TCP + bad, "snmp-under-test")
    assert counters[:2] == [RawCounter("Tcp", "ActiveOpens", 7), RawCounter("Tcp", "CurrEstab", 3)]
    assert len(warnings) == 1


def test_snmp_edge_cases_that_are_not_errors() -> None:
    assert parse_snmp("") == ([], [])
    assert parse_snmp("\n\n") == ([], [])
    # IcmpMsg comes in several pairs once more than 16 message types were seen; all are kept.
    text = "IcmpMsg: InType0 InType3\nIcmpMsg: 5 6\nIcmpMsg: OutType0\nIcmpMsg: 7\n"
    assert parse_snmp(text) == (
        [
            RawCounter("IcmpMsg", "InType0", 5),
            RawCounter("IcmpMsg", "InType3", 6),
            RawCounter("IcmpMsg", "OutType0", 7),
        ],
        [],
    )
    # Values are 64-bit and may be negative; blank lines between pairs (old 2.6 kernels) are fine.
    assert parse_snmp("\nTcp: MaxConn Big\n\nTcp: -1 18446744073709551615\n") == (
        [RawCounter("Tcp", "MaxConn", -1), RawCounter("Tcp", "Big", 18446744073709551615)],
        [],
    )
    # A group with no counters at all (both lines just "Group:") yields nothing and no complaint.
    assert parse_snmp("UdpLite:\nUdpLite:\n" + GOOD_TCP)[0][0] == RawCounter("Tcp", "ActiveOpens", 7)


@pytest.mark.parametrize(
    "bad",
    [
        "Ip6InReceives",  # no value
        "Ip6InReceives 1 2",  # two values
        "Ip6InReceives abc",
        "Ip6InReceives 1.0",
        "6Ip6InReceives 1",  # not a name
        "Ip6-InReceives 1",
        "\x00\x01\x02",
    ],
)
def test_broken_snmp6_lines_are_skipped(bad: str) -> None:
    text = f"Ip6InReceives\t5\n{bad}\nUdp6NoPorts 2\n"
    counters, warnings = parse_snmp6(text, "snmp6-under-test")
    assert counters == [RawCounter("Ip6", "Ip6InReceives", 5), RawCounter("Udp6", "Udp6NoPorts", 2)]
    assert warnings == [f"snmp6-under-test: skipped 1 malformed line, e.g. {bad.strip()!r}"]


def test_a_warning_quotes_a_long_line_only_in_part() -> None:
    _, warnings = parse_snmp6("x" * 5000 + " y\nAlso bad\n")
    assert len(warnings) == 1 and len(warnings[0]) < 150 and "skipped 2 malformed lines" in warnings[0]


# --- The collector on this machine's files ---------------------------------------------------------------------


def _independent_keys(proc_net: Path) -> list[tuple[str, str]]:
    """(group, name) in file order, read without the code under test: zip names and values lines."""
    keys: list[tuple[str, str]] = []
    for name in ("snmp", "netstat"):
        lines = (proc_net / name).read_text().splitlines()
        for header, values in zip(lines[::2], lines[1::2], strict=True):
            group = header.split(":")[0]
            assert values.split(":")[0] == group
            keys += [(group, counter) for counter in header.split()[1:]]
    for name in ("snmp6", "sctp/snmp"):
        if (proc_net / name).exists():
            for line in (proc_net / name).read_text().splitlines():
                counter = line.split()[0]
                group = re.match(r"[A-Za-z]+?6(?=[A-Z])", counter) or re.match(r"[A-Z][a-z]+", counter)
                assert group, counter
                keys.append((group.group(0), counter))
    return keys


def _netstat_sections() -> set[str]:
    """The group headings `netstat -s` and `netstat -s -6` print ("Ip:", "TcpExt:", "Ip6:", ...)."""
    sections: set[str] = set()
    for args in (["-s"], ["-s", "-6"]):
        out = subprocess.run(["netstat", *args], capture_output=True, text=True, timeout=30, check=True).stdout
        sections |= {line[:-1] for line in out.splitlines() if re.fullmatch(r"[A-Za-z0-9]+:", line)}
    return sections


def test_a_real_collect_has_every_counter_of_the_files_in_their_order() -> None:
    proc_net = Path("/proc/net")
    before = _independent_keys(proc_net)
    snapshot = ProtocolStatsCollector().collect()
    after = _independent_keys(proc_net)
    collected = [(c.group, c.name) for c in snapshot.counters]
    # Counters only ever appear (a first ICMP of some type adds an IcmpMsg name), so the sample lies between.
    assert set(before) <= set(collected) <= set(after)
    assert len(collected) == len(set(collected))
    assert [key for key in collected if key in before] == before  # the kernel's order, group by group
    groups = list(dict.fromkeys(group for group, _ in collected))
    assert {"Ip", "Icmp", "Tcp", "Udp", "UdpLite", "TcpExt", "IpExt"} <= set(groups)
    if (proc_net / "snmp6").exists():
        assert {"Ip6", "Icmp6", "Udp6", "UdpLite6"} <= set(groups)
        assert groups.index("Ip6") > groups.index("TcpExt")  # snmp, then netstat, then snmp6
    assert snapshot.warnings == []
    assert all(isinstance(c, ProtocolCounter) for c in snapshot.counters)


@pytest.mark.skipif(shutil.which("netstat") is None, reason="net-tools' netstat is not installed")
def test_the_groups_are_the_sections_of_netstat_s() -> None:
    before = _netstat_sections()
    groups = {c.group for c in ProtocolStatsCollector().collect().counters}
    after = _netstat_sections()
    # netstat prints a heading for every group in the files, even an all-zero one such as UdpLite or MPTcpExt;
    # it prints "Tcp:" again under -6 (the same counters), which our IPv4 Tcp group covers.
    assert before <= groups <= after


def test_the_first_sample_has_no_movement_and_labels_and_gauges_are_set() -> None:
    snapshot = ProtocolStatsCollector().collect()
    assert isinstance(snapshot, StatsSnapshot)
    assert all(c.delta == 0 and c.rate == 0.0 for c in snapshot.counters)
    by_key = {(c.group, c.name): c for c in snapshot.counters}
    assert by_key[("Tcp", "RetransSegs")].label == "segments retransmitted"
    assert by_key[("Tcp", "AttemptFails")].label == "failed connection attempts"
    assert by_key[("TcpExt", "ListenOverflows")].label == "times the listen queue of a socket overflowed"
    assert by_key[("Udp", "NoPorts")].label == "packets to unknown port received"
    assert by_key[("Tcp", "MaxConn")].value == -1 and by_key[("Tcp", "MaxConn")].is_gauge
    for key in (("Ip", "Forwarding"), ("Ip", "DefaultTTL"), ("Tcp", "RtoMin"), ("Tcp", "CurrEstab")):
        assert by_key[key].is_gauge, key
    assert not by_key[("Tcp", "ActiveOpens")].is_gauge and not by_key[("TcpExt", "TCPMemoryPressures")].is_gauge
    assert {key for key, c in by_key.items() if c.is_gauge} == GAUGES & set(by_key)
    labelled = [c for c in snapshot.counters if c.label]
    assert 40 <= len(LABELS) <= 80
    assert len(labelled) >= 40, "the labels must match the names this kernel really uses"
    assert all(c.label == LABELS.get((c.group, c.name), "") for c in snapshot.counters)
    assert by_key[("TcpExt", "TCPHPHits")].label == ""  # unlabelled counters keep ""


# --- Real traffic moves the counters ---------------------------------------------------------------------------


def _moved(
    collect: Callable[[], StatsSnapshot], action: Callable[[], None]
) -> dict[tuple[str, str], ProtocolCounter]:
    """Sample, act, sample again; the second sample by (group, name)."""
    collect()
    action()
    return {(c.group, c.name): c for c in collect().counters}


@pytest.fixture
def collector() -> Iterator[ProtocolStatsCollector]:
    yield ProtocolStatsCollector()


def _refused_address(family: socket.AddressFamily, host: str) -> Iterator[tuple[str, int]]:
    # A port held by a TCP socket that is bound but not listening: a SYN to it is answered with RST for sure,
    # and no other process can start listening on it meanwhile.
    holder = socket.socket(family, socket.SOCK_STREAM)
    try:
        holder.bind((host, 0))
        yield holder.getsockname()[:2]
    finally:
        holder.close()


def test_tcp_connections_move_active_and_passive_opens(collector: ProtocolStatsCollector) -> None:
    count = 25

    def connect_and_close() -> None:
        with socket.create_server(("127.0.0.1", 0), backlog=count) as server:
            port = server.getsockname()[1]
            for _ in range(count):
                client = socket.create_connection(("127.0.0.1", port), timeout=5)
                accepted, _ = server.accept()
                client.sendall(b"x")
                assert accepted.recv(1) == b"x"
                accepted.close()
                client.close()
        time.sleep(0.05)  # let the elapsed time be measurable

    counters = _moved(collector.collect, connect_and_close)
    active, passive = counters[("Tcp", "ActiveOpens")], counters[("Tcp", "PassiveOpens")]
    assert active.delta >= count and passive.delta >= count
    assert active.rate > 0 and passive.rate > 0
    assert active.rate >= active.delta / 60  # per second, not per sample: the sample took well under a minute
    assert counters[("Tcp", "OutSegs")].delta >= 3 * count
    assert all(c.delta >= 0 for c in counters.values() if not c.is_gauge)


def test_a_refused_connection_moves_attempt_fails_and_resets_sent(collector: ProtocolStatsCollector) -> None:
    def refused() -> None:
        for address in _refused_address(socket.AF_INET, "127.0.0.1"):
            for _ in range(3):
                with pytest.raises(ConnectionRefusedError), socket.create_connection(address, timeout=5):
                    pass

    counters = _moved(collector.collect, refused)
    assert counters[("Tcp", "AttemptFails")].delta >= 3
    assert counters[("Tcp", "OutRsts")].delta >= 3
    assert counters[("Tcp", "AttemptFails")].rate > 0


def test_udp_to_a_closed_port_moves_no_ports_and_destination_unreachable(
    collector: ProtocolStatsCollector,
) -> None:
    def send_to_nobody() -> None:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        address = probe.getsockname()
        probe.close()  # the port is free again: nobody receives what is sent to it
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for _ in range(3):
                sender.sendto(b"hello?", address)
        time.sleep(0.05)

    counters = _moved(collector.collect, send_to_nobody)
    assert counters[("Udp", "NoPorts")].delta >= 3
    assert counters[("Udp", "OutDatagrams")].delta >= 3
    assert counters[("Icmp", "OutDestUnreachs")].delta >= 1  # loopback is exempt from the per-host limit
    assert counters[("Icmp", "InDestUnreachs")].delta >= 1
    # "OutType3" is printed only once some ICMP type 3 went out: whether new or not, its delta counts our sends.
    assert counters[("IcmpMsg", "OutType3")].delta >= 1


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6 or not os.path.exists("/proc/net/snmp6"):
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="IPv6 is not available here (no ::1 or no /proc/net/snmp6)")
def test_ipv6_loopback_traffic_moves_ip6_counters(collector: ProtocolStatsCollector) -> None:
    def talk_over_ipv6() -> None:
        with socket.create_server(("::1", 0), family=socket.AF_INET6) as server:
            client = socket.create_connection(server.getsockname()[:2], timeout=5)
            accepted, _ = server.accept()
            for _ in range(10):
                client.sendall(b"ping")
                assert accepted.recv(4) == b"ping"
            accepted.close()
            client.close()
        for address in _refused_address(socket.AF_INET6, "::1"):
            with pytest.raises(ConnectionRefusedError), socket.create_connection(address, timeout=5):
                pass

    counters = _moved(collector.collect, talk_over_ipv6)
    assert counters[("Ip6", "Ip6InReceives")].delta >= 20
    assert counters[("Ip6", "Ip6OutRequests")].delta >= 20
    assert counters[("Ip6", "Ip6InReceives")].rate > 0
    assert counters[("Tcp", "AttemptFails")].delta >= 1  # TCP over IPv6 counts in the one Tcp group


# --- A made-up /proc: resets, gauges, sparse histograms, missing files -------------------------------------------


def _write_proc(root: Path, snmp: str, snmp6: str | None = None, netstat: str | None = None) -> None:
    (root / "net").mkdir(exist_ok=True)
    (root / "net" / "snmp").write_text(snmp)
    if netstat is not None:
        (root / "net" / "netstat").write_text(netstat)
    if snmp6 is not None:
        (root / "net" / "snmp6").write_text(snmp6)


def test_a_counter_that_goes_backwards_gives_zero_never_negative(tmp_path: Path) -> None:
    netstat = "TcpExt: ListenOverflows\nTcpExt: 5\n"
    _write_proc(
        tmp_path,
        "Tcp: ActiveOpens CurrEstab RetransSegs\nTcp: 1000 10 4294967290\n",
        "Ip6InReceives 50\n",
        netstat,
    )
    collector = ProtocolStatsCollector(str(tmp_path))
    first = collector.collect()
    assert [(c.name, c.delta, c.rate) for c in first.counters] == [
        ("ActiveOpens", 0, 0.0),
        ("CurrEstab", 0, 0.0),
        ("RetransSegs", 0, 0.0),
        ("ListenOverflows", 0, 0.0),
        ("Ip6InReceives", 0, 0.0),
    ]
    time.sleep(0.02)
    # ActiveOpens was reset; RetransSegs wrapped at 32 bits; CurrEstab, a level, fell; the rest rose.
    _write_proc(tmp_path, "Tcp: ActiveOpens CurrEstab RetransSegs\nTcp: 3 8 6\n", "Ip6InReceives 80\n", netstat)
    second = {c.name: c for c in collector.collect().counters}
    for name in ("ActiveOpens", "RetransSegs"):
        assert (second[name].delta, second[name].rate) == (0, 0.0), name
    assert (second["ActiveOpens"].value, second["RetransSegs"].value) == (3, 6)
    assert second["CurrEstab"].is_gauge and second["CurrEstab"].delta == -2 and second["CurrEstab"].rate < 0
    assert second["Ip6InReceives"].delta == 30 and second["Ip6InReceives"].rate > 0
    assert second["ListenOverflows"].delta == 0 and second["ListenOverflows"].rate == 0.0
    time.sleep(0.02)
    # After the reset the counter moves normally again, from its new value.
    _write_proc(tmp_path, "Tcp: ActiveOpens CurrEstab RetransSegs\nTcp: 10 8 7\n", "Ip6InReceives 80\n", netstat)
    third = {c.name: c for c in collector.collect().counters}
    assert (third["ActiveOpens"].delta, third["RetransSegs"].delta, third["CurrEstab"].delta) == (7, 1, 0)
    assert third["ActiveOpens"].rate > 0


def test_a_histogram_entry_that_appears_counts_from_zero(tmp_path: Path) -> None:
    _write_proc(tmp_path, "IcmpMsg: InType3\nIcmpMsg: 4\nTcp: ActiveOpens\nTcp: 1\n", "Icmp6InMsgs 1\n")
    collector = ProtocolStatsCollector(str(tmp_path))
    collector.collect()
    time.sleep(0.01)
    _write_proc(
        tmp_path,
        "IcmpMsg: InType3 OutType3\nIcmpMsg: 4 2\nTcp: ActiveOpens NewCounter\nTcp: 1 500\n",
        "Icmp6InMsgs 1\nIcmp6OutType1 6\n",
    )
    counters = {c.name: c for c in collector.collect().counters}
    assert counters["OutType3"].delta == 2 and counters["OutType3"].rate > 0
    assert counters["Icmp6OutType1"].delta == 6
    assert counters["NewCounter"].delta == 0  # not a histogram: no history, so no movement to claim
    assert counters["InType3"].delta == 0


def test_missing_files_are_warnings_in_words_not_exceptions(tmp_path: Path) -> None:
    snapshot = ProtocolStatsCollector(str(tmp_path)).collect()
    assert snapshot.counters == []
    assert len(snapshot.warnings) == 3
    assert "/net/snmp does not exist" in snapshot.warnings[0]
    assert "TcpExt" in snapshot.warnings[1]
    assert "IPv6 statistics are unavailable" in snapshot.warnings[2]
    _write_proc(tmp_path, GOOD_TCP)  # no IPv6, no netstat file: the rest still works
    snapshot = ProtocolStatsCollector(str(tmp_path)).collect()
    assert [(c.group, c.name, c.value) for c in snapshot.counters] == [
        ("Tcp", "ActiveOpens", 7),
        ("Tcp", "CurrEstab", 3),
    ]
    assert len(snapshot.warnings) == 2 and "IPv6" in snapshot.warnings[1]


def test_a_malformed_file_keeps_its_good_groups_and_says_which_file(tmp_path: Path) -> None:
    _write_proc(tmp_path, "Ip: A B\nIp: 1\n" + GOOD_TCP, "Ip6InReceives 1\nnonsense\n", "TcpExt: TW\nTcpExt: 4\n")
    snapshot = ProtocolStatsCollector(str(tmp_path)).collect()
    assert [c.name for c in snapshot.counters] == ["ActiveOpens", "CurrEstab", "TW", "Ip6InReceives"]
    assert [w.split(":")[0] for w in snapshot.warnings] == [
        str(tmp_path / "net" / "snmp"),
        str(tmp_path / "net" / "snmp6"),
    ]


def test_an_unreadable_file_is_a_warning(tmp_path: Path) -> None:
    _write_proc(tmp_path, GOOD_TCP, "Ip6InReceives 1\n", "TcpExt: TW\nTcpExt: 4\n")
    (tmp_path / "net" / "netstat").unlink()
    (tmp_path / "net" / "netstat").mkdir()  # reading a directory fails with an OSError other than "missing"
    snapshot = ProtocolStatsCollector(str(tmp_path)).collect()
    assert [c.name for c in snapshot.counters] == ["ActiveOpens", "CurrEstab", "Ip6InReceives"]
    assert len(snapshot.warnings) == 1 and snapshot.warnings[0].startswith("cannot read ")


def test_collect_is_fast() -> None:
    collector = ProtocolStatsCollector()
    collector.collect()
    started = time.perf_counter()
    for _ in range(20):
        collector.collect()
    per_collect = (time.perf_counter() - started) / 20
    assert per_collect < 0.05, f"{per_collect * 1000:.1f} ms per collect"
