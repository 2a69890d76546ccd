"""The middle of the emulated ADSL line: a user-space Ethernet bridge that adds delay, jitter and loss.

Runs in its own network namespace between the kiosk's and the agent's (the
kernel here has no ``netem``). It reads every frame from one interface with a
packet socket and writes it to the other after ``--delay`` seconds plus a
uniform 0..``--jitter`` (first in, first out, as a modem queue: jitter never
reorders), dropping IP packets with ``--loss`` (independent) or, with
``--burst`` > 1, in bursts of that mean length (Gilbert–Elliott with the same
mean rate). ARP and other non-IP frames pass unimpaired. The rate limits are
not here: they are kernel ``tbf`` queues on the kiosk's and the agent's own
interfaces (the modem's real queue).

Every second it appends ``{"t", "up", "down", "up_lost", "down_lost"}`` (bytes
forwarded kiosk → agent and back, packets dropped) to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
ETH_P_IP = 0x0800


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(memoryview(data).cast("H"))  # native order; folded and swapped below
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def fix_checksum(frame: bytes) -> bytes:
    """Recompute the TCP/UDP checksum of an IPv4 frame.

    A veth leaves checksums to "the hardware" (CHECKSUM_PARTIAL); a packet socket
    sees the frame before that, and the frame written out again would be dropped
    by the receiver for a bad checksum. Without ``ethtool`` to turn the offload
    off, the bridge fills the checksum in itself.
    """
    ihl = (frame[14] & 0x0F) * 4
    proto = frame[23]
    if proto not in (6, 17) or len(frame) < 14 + ihl + 8:
        return frame
    total_len = int.from_bytes(frame[16:18], "big")
    l4 = bytearray(frame[14 + ihl:14 + total_len])
    offset = 16 if proto == 6 else 6
    if len(l4) < offset + 2:
        return frame
    l4[offset:offset + 2] = b"\0\0"
    pseudo = frame[26:34] + bytes([0, proto]) + len(l4).to_bytes(2, "big")
    folded = _sum16(pseudo + bytes(l4))
    value = (~int.from_bytes(folded.to_bytes(2, sys.byteorder), "big")) & 0xFFFF
    if proto == 17 and value == 0:
        value = 0xFFFF
    l4[offset:offset + 2] = value.to_bytes(2, "big")
    return frame[:14 + ihl] + bytes(l4) + frame[14 + total_len:]


class Direction:
    def __init__(self, name: str, rx: socket.socket, tx: socket.socket, args: argparse.Namespace, seed: int) -> None:
        self.name = name
        self.rx = rx
        self.tx = tx
        self.delay = args.delay
        self.jitter = args.jitter
        self.loss = args.loss
        self.burst = args.burst
        self.rng = random.Random(seed)
        self.bad = False
        self.last_out = 0.0
        self.bytes = 0
        self.lost = 0

    def lose(self) -> bool:
        if self.loss <= 0:
            return False
        if self.burst <= 1:
            return self.rng.random() < self.loss
        # Gilbert–Elliott, every packet lost in the bad state: mean burst = 1/r, mean rate = p/(p+r)
        r = 1.0 / self.burst
        p = self.loss * r / (1 - self.loss)
        if self.bad:
            self.bad = self.rng.random() >= r
        else:
            self.bad = self.rng.random() < p
        return self.bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kiosk_if")
    parser.add_argument("agent_if")
    parser.add_argument("--delay", type=float, default=0.02, help="one-way delay, s")
    parser.add_argument("--jitter", type=float, default=0.0, help="extra delay, uniform 0..J s")
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument("--burst", type=float, default=1.0, help="mean loss burst length (packets)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    socks = []
    for name in (args.kiosk_if, args.agent_if):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((name, 0))
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        socks.append(s)
    up = Direction("up", socks[0], socks[1], args, args.seed)
    down = Direction("down", socks[1], socks[0], args, args.seed + 1)
    out = open(args.out, "a", encoding="utf-8")

    async def run() -> None:
        loop = asyncio.get_running_loop()

        def deliver(d: Direction, frame: bytes) -> None:
            try:
                d.tx.send(frame)
            except OSError as exc:  # a frame larger than the MTU (offloads): count it lost
                d.lost += 1
                print(f"line: {d.name}: {exc}", file=sys.stderr)

        def readable(d: Direction) -> None:
            while True:
                try:
                    frame, addr = d.rx.recvfrom(65535)
                except BlockingIOError:
                    return
                if addr[2] == PACKET_OUTGOING:
                    continue  # our own writes seen again
                now = time.monotonic()
                is_ip = len(frame) > 14 and int.from_bytes(frame[12:14], "big") == ETH_P_IP
                if is_ip and d.lose():
                    d.lost += 1
                    continue
                if is_ip:
                    frame = fix_checksum(frame)
                    at = max(d.last_out, now + d.delay + d.rng.uniform(0, d.jitter))
                    d.last_out = at
                    d.bytes += len(frame) - 14
                    loop.call_at(loop.time() + (at - now), deliver, d, frame)
                else:
                    deliver(d, frame)

        for d in (up, down):
            loop.add_reader(d.rx.fileno(), readable, d)
        while True:
            await asyncio.sleep(1.0)
            out.write(json.dumps({"t": time.monotonic(), "up": up.bytes, "down": down.bytes,
                                  "up_lost": up.lost, "down_lost": down.lost}) + "\n")
            out.flush()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    finally:
        out.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
