"""What to buy: the cheapest set of servers that carries the replicas, and where the spares live.

A replica (its TP × PP group) lives inside one server. A configuration (a catalog server with a
number of accelerators) holds ⌊GPUs / GPUs per replica⌋ replicas. The choice is an exact
minimum-cost cover, solved by dynamic programming over the replicas still to place:

- ``none``: the servers together hold at least the replicas the peak needs;
- ``n_plus_1``: with any one server down the rest still hold them: the largest server L plus a
  cover of the need by servers no larger than L (so losing L, or any smaller one, leaves enough);
- ``ha_pair``: two independent halves in separate servers, each holding the need on its own: the
  cheapest half, bought twice.

Costs are per server over the horizon (:mod:`llmplan.cost.ownership` prices them); costs that a
deployment pays once whatever its size are the caller's. A multi-server deployment also pays a
fabric per server, so the cheapest single server is compared with the cheapest set.

For a large need the cover fills with the best cost-per-replica configuration down to a remainder
and solves the remainder exactly: an optimal cover never holds more than (slots of the best) − 1
servers of other kinds (any that many contain a subset whose slots sum to a multiple of the best's
slots, which the best configuration holds no dearer), so the remainder is bounded by the slot sizes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import LlmplanError

MODES = ("none", "n_plus_1", "ha_pair")


@dataclass(frozen=True)
class Config:
    """One buyable configuration: a catalog server with `gpus` accelerators of one kind."""

    server_id: str
    server_name: str
    kind: str  # board | pcie | workstation | appliance
    facility: str  # datacenter | office
    accelerator: str
    gpus: int
    slots: int  # replicas it holds
    gpu_price_usd: float  # per accelerator (appliance: the machine's all-in price)
    host_usd: float
    host_low_usd: float
    host_high_usd: float
    gpu_max_w: float  # per accelerator (appliance: the machine's maximum)
    host_max_w: float
    rack_units: int | None = None
    host_estimate: bool = False
    gpu_low_usd: float | None = None  # the price's plausible range (estimates); default the price
    gpu_high_usd: float | None = None

    @property
    def hardware_usd(self) -> float:
        return self.host_usd + self.gpus * self.gpu_price_usd

    @property
    def max_w(self) -> float:
        return self.host_max_w + self.gpus * self.gpu_max_w

    @property
    def label(self) -> str:
        return f"{self.server_id} with {self.gpus} × {self.accelerator}"


@dataclass(frozen=True)
class Purchase:
    """The servers bought and what they hold. `halves`: ha_pair's two identical halves."""

    lines: tuple[tuple[Config, int], ...]
    gpus_per_replica: int
    replicas_needed: int
    mode: str

    @property
    def servers(self) -> int:
        return sum(n for _, n in self.lines)

    @property
    def gpus(self) -> int:
        return sum(c.gpus * n for c, n in self.lines)

    @property
    def replicas(self) -> int:
        """Replicas placed: every free slot of every server runs one."""
        return sum(c.slots * n for c, n in self.lines)

    @property
    def largest_slots(self) -> int:
        return max(c.slots for c, _ in self.lines)

    @property
    def serving_replicas(self) -> int:
        """Replicas left in the worst single failure the mode plans for (none: all of them)."""
        if self.mode == "n_plus_1":
            return self.replicas - self.largest_slots
        if self.mode == "ha_pair":
            return self.replicas // 2
        return self.replicas

    @property
    def idle_gpus(self) -> int:
        """Accelerators that hold no replica (too few left in a server for a whole TP group)."""
        return self.gpus - self.replicas * self.gpus_per_replica

    @property
    def facility(self) -> str:
        return self.lines[0][0].facility

    def placement(self) -> str:
        """Where the replicas and the spares are, in words."""
        what = " + ".join(f"{n} × {c.label}" for c, n in self.lines)
        if self.mode == "n_plus_1":
            return (f"{what}: {self.replicas} replica(s) in {self.servers} servers; with any one server down "
                    f"{self.serving_replicas} replica(s) remain for the {self.replicas_needed} the peak needs (each "
                    "server's load is covered by the others)")
        if self.mode == "ha_pair":
            return (f"{what}: two independent halves of {self.servers // 2} server(s), each with "
                    f"{self.replicas // 2} replica(s) for the {self.replicas_needed} the peak needs")
        return f"{what}: {self.replicas} replica(s) for the {self.replicas_needed} the peak needs"


def check_failure_domains(p: Purchase) -> None:
    """An availability mode needs its spare capacity in another server."""
    if p.mode != "none" and p.servers < 2:
        raise LlmplanError(f"availability {p.mode} needs its spare capacity in another server: a single-server plan "
                           "goes down with its host, power supply or network link; buy at least 2 servers")
    if p.serving_replicas < p.replicas_needed:
        raise LlmplanError(f"availability {p.mode}: with a server down {p.serving_replicas} replica(s) remain, fewer "
                           f"than the {p.replicas_needed} the peak needs")


def min_cover(items: Sequence[tuple[int, float]], need: int) -> tuple[float, tuple[int, ...]]:
    """Cheapest counts of (slots, cost) items whose slots sum to at least `need` (items reusable)."""
    usable = [(s, c) for s, c in items if s >= 1]
    if need <= 0:
        return 0.0, tuple(0 for _ in items)
    if not usable:
        return math.inf, tuple(0 for _ in items)
    b = min(range(len(items)), key=lambda i: (items[i][1] / items[i][0], -items[i][0], i) if items[i][0] >= 1
            else (math.inf, 0, i))
    sb = items[b][0]
    smax = max(s for s, _ in usable)
    bulk = max(0, math.ceil((need - sb * smax) / sb))
    rem = need - bulk * sb
    best = [0.0] + [math.inf] * rem
    pick = [-1] * (rem + 1)
    for r in range(1, rem + 1):
        for i, (s, c) in enumerate(items):
            if s < 1:
                continue
            v = c + best[max(0, r - s)]
            if v < best[r] - 1e-9:
                best[r], pick[r] = v, i
    counts = [0] * len(items)
    r = rem
    while r > 0:
        i = pick[r]
        counts[i] += 1
        r = max(0, r - items[i][0])
    counts[b] += bulk
    return best[rem] + bulk * items[b][1], tuple(counts)


def _lines(configs: Sequence[Config], counts: Sequence[int]) -> tuple[tuple[Config, int], ...]:
    return tuple((c, n) for c, n in zip(configs, counts, strict=True) if n)


def choose(configs: Sequence[Config], need: int, mode: str, gpus_per_replica: int,
           unit_cost: Callable[[Config], float], single_saving: Callable[[Config], float] = lambda c: 0.0,
           max_servers: int | None = None) -> Purchase:
    """The cheapest purchase of `configs` (one accelerator, one facility) that places `need`
    replicas under `mode`. `unit_cost`: a server's cost over the horizon in a multi-server
    deployment; `single_saving`: what it saves when it is the only server (no fabric)."""
    if mode not in MODES:
        raise LlmplanError(f"availability mode {mode!r} is not one of {', '.join(MODES)}")
    usable = [c for c in configs if c.slots >= 1]
    if not usable:
        raise LlmplanError("no configuration holds a whole replica")
    gpr = gpus_per_replica
    if max_servers == 1 and mode != "none":
        raise LlmplanError(f"availability {mode} needs its spare capacity in another server: a single-server plan "
                           "goes down with its host, power supply or network link; allow at least 2 servers")
    costs = [unit_cost(c) for c in usable]
    items = [(c.slots, k) for c, k in zip(usable, costs, strict=True)]
    if mode == "ha_pair":
        total, counts = min_cover(items, need)
        best = _lines(usable, [2 * n for n in counts])
    elif mode == "n_plus_1":
        best, total = (), math.inf
        for j, big in enumerate(usable):
            sub = [(s, k) if s <= big.slots else (0, k) for s, k in items]
            rest, counts = min_cover(sub, need)
            if costs[j] + rest < total - 1e-9:
                with_big = list(counts)
                with_big[j] += 1
                best, total = _lines(usable, with_big), costs[j] + rest
    else:
        total, counts = min_cover(items, need)
        best = _lines(usable, counts)
        if sum(counts) > 1:
            singles = [(k - single_saving(c), c) for c, k in zip(usable, costs, strict=True) if c.slots >= need]
            if singles:
                k, c = min(singles, key=lambda t: (t[0], t[1].gpus, t[1].server_id))
                if k <= total + 1e-9:
                    best = ((c, 1),)
    p = Purchase(best, gpr, need, mode)
    if max_servers is not None and p.servers > max_servers:
        p = _fewest_servers(usable, need, mode, gpr)
        if p.servers > max_servers:
            raise LlmplanError(f"{need} replica(s) under availability {mode} need at least {p.servers} servers "
                               f"({p.placement()}), more than the {max_servers} allowed")
    return p


def _fewest_servers(configs: Sequence[Config], need: int, mode: str, gpr: int) -> Purchase:
    """The purchase with the fewest servers: the largest configuration only."""
    big = max(configs, key=lambda c: (c.slots, -c.hardware_usd))
    n = math.ceil(need / big.slots)
    n = {"n_plus_1": n + 1, "ha_pair": 2 * n}.get(mode, n)
    return Purchase(((big, n),), gpr, need, mode)
