"""The Vast.ai simulator's world: market, rentals and their lifecycle, faults, billing.

Rentals follow contract §7.2 on the simulator's clock: accepted (``actual_status``
null) → ``loading`` with Docker pull lines in ``status_msg`` → ``running``; the
``ports`` mapping appears shortly after running and maps the requested ComfyUI
port to a real local port where a ComfyUI simulator answers (token from
``OPEN_BUTTON_TOKEN``). Billing accrues per simulated second (§13.4): storage
while the rental exists and its host is not offline, ``dph_base`` while running.
Faults (§13.3) are kept as :class:`Fault` entries matched per rental, machine,
host, label, offer or endpoint, with a rate and a count. Besides the contract's faults:
``no_space`` on a running rental (its disk fills up: the status message says so and its
ComfyUI's saves fail), ``comfy_crash`` (its ComfyUI dies and its supervisor restarts it
after ``params.restart_after`` simulated seconds), and ``create_listeners`` (called with
each new rental before the create answer goes out). Stop and start (§5.6, F17, F19): a
stopped rental frees its GPU and bills storage; a start loads for ``Timing.resume``, or
waits while the GPU is held (``gpu_taken``), and runs again at a new port (and address on
a host without a static IP), its disk as it was.

About 800 lines on purpose: one rental's state machine (boot, faults, stop/start, reboot,
billing) shares its one lifecycle task and status writes; split, each part would reach
into the others' task handling.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import secrets
import shutil
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from warmpool.sim import vastai_machine
from warmpool.sim.clock import Clock
from warmpool.sim.vastai_catalogue import Machine, Offer, generate_machines, offers_for

logger = logging.getLogger(__name__)

RENTAL_FAULTS = frozenset(
    {"no_space", "stuck_loading", "late_ports", "offline", "destroy_retry", "pull_error",
     "comfy_crash",
     # a hostile host: its portal ignores ENABLE_HTTPS (plain HTTP), or serves a
     # certificate of its own instead of the one it was given (a man in the middle)
     "plain_http", "foreign_cert"}
)  # fmt: skip
#: Faults drawn when a stopped rental is started (F17: its GPU was rented by someone else).
START_FAULTS = frozenset({"gpu_taken"})
REQUEST_FAULTS = frozenset({"rate_limit", "server_error", "slow", "offer_taken", "create_lost"})
FAULT_KINDS = RENTAL_FAULTS | REQUEST_FAULTS | START_FAULTS
NO_SPACE_MSG = (
    "Error response from daemon: failed to register layer: write "
    "/opt/conda/lib/libcudnn_engines_precompiled.so.9: no space left on device"
)
PULL_ERROR_MSG = (
    "Error response from daemon: manifest for {image} not found: manifest unknown: manifest unknown"
)
#: What a running machine reports once its disk is full (and its ComfyUI's saves raise).
DISK_FULL_MSG = "Error: write /workspace/ComfyUI/output: no space left on device"
DISK_FULL_ERROR = "[Errno 28] No space left on device: '/workspace/ComfyUI/output'"
LAYER_STEPS = ("Pulling fs layer", "Downloading", "Verifying Checksum", "Download complete")


class ComfyHandle(Protocol):
    """What the simulator needs of a started ComfyUI simulator."""

    port: int

    async def stop(self) -> None: ...


@runtime_checkable
class CrashableComfy(ComfyHandle, Protocol):
    """A ComfyUI simulator that can crash and come back (the ``comfy_crash`` and running
    ``no_space`` faults; :class:`~warmpool.sim.comfyui.ComfyServer` is one)."""

    async def crash(self) -> None: ...
    async def restart(self) -> None: ...
    def fail_node(self, node_type: str = ..., *, exception_type: str = ..., message: str = ...,
                  after_steps: int = ...) -> None: ...  # fmt: skip


class ComfyStarter(Protocol):
    """(token, clock, workspace or None, host, tls) → a started ComfyUI on ``host``; with a
    workspace, ComfyUI lives in ``<workspace>/ComfyUI`` and lists the models there; with
    ``tls`` (certificate and key files) it serves HTTPS with them (the Instance Portal's
    Caddy with ``ENABLE_HTTPS``)."""

    def __call__(
        self,
        token: str | None,
        clock: Clock,
        workspace: Path | None,
        /,
        *,
        host: str = ...,
        tls: tuple[Path, Path] | None = ...,
    ) -> Awaitable[ComfyHandle]:
        """``host`` is passed only when the rental has its own address (after a start),
        ``tls`` only when the rental serves HTTPS."""
        ...


@dataclasses.dataclass
class Timing:
    """Simulated-second ranges (uniform) of the lifecycle steps (contract §13.2)."""

    loading_after: tuple[float, float] = (5.0, 25.0)
    pull: tuple[float, float] = (60.0, 240.0)
    ports_after: tuple[float, float] = (0.0, 10.0)
    reboot: tuple[float, float] = (10.0, 40.0)
    unknown_before_offline: float = 30.0
    #: Simulated seconds before a requested log file appears at its ``result_url`` (S3).
    logs_after: float = 20.0
    resume: tuple[float, float] = (5.0, 60.0)
    """A start of a stopped rental whose GPU is free: ``loading`` this long (the image and
    the disk are on the machine), then running (contract §13.2: 5-60 s)."""
    gpu_taken: float = 0.0
    """Probability that a start finds the machine's GPU rented by someone else (F17): it
    waits forever (``intended_status=running``, ``cur_state=stopped``)."""

    def update(self, data: dict[str, Any]) -> None:
        for field in dataclasses.fields(self):
            if field.name in data:
                value = data[field.name]
                if isinstance(value, list | tuple):
                    lo, hi = float(value[0]), float(value[-1])
                    if lo < 0 or hi < lo:
                        raise ValueError(f"bad range for {field.name}")
                    setattr(self, field.name, (lo, hi))
                elif field.name == "gpu_taken" and not 0.0 <= float(value) <= 1.0:
                    raise ValueError("gpu_taken is a probability between 0 and 1")
                else:
                    setattr(self, field.name, float(value))


@dataclasses.dataclass
class Fault:
    """One injected fault: what, where it applies, how often, how many times."""

    kind: str
    endpoint: str | None = None
    instance_id: int | None = None
    label: str | None = None
    label_prefix: str | None = None
    machine_id: int | None = None
    host_id: int | None = None
    offer_id: int | None = None
    rate: float = 1.0
    count: int | None = None
    params: dict[str, Any] = dataclasses.field(default_factory=dict)

    def applies(self, **facts: Any) -> bool:
        for name in ("endpoint", "instance_id", "label", "machine_id", "host_id", "offer_id"):
            wanted = getattr(self, name)
            if wanted is None or wanted == "*":
                continue
            got = facts.get(name)
            if isinstance(got, tuple):  # endpoint: (short name, template)
                if wanted not in got:
                    return False
            elif got != wanted:
                return False
        if self.label_prefix is not None:
            label = facts.get("label")
            if not isinstance(label, str) or not label.startswith(self.label_prefix):
                return False
        return True


@dataclasses.dataclass
class Rental:
    id: int
    offer: Offer
    label: str | None
    image: str
    env: dict[str, str]
    runtype: str
    onstart: str | None
    args: list[str] | None
    disk: float
    bid_price: float | None
    created_at: float
    api_key: str
    actual_status: str | None = None
    intended_status: str = "running"
    cur_state: str = "running"
    status_msg: str | None = None
    ports: dict[str, list[dict[str, str]] | None] | None = None
    running_since: float | None = None
    accrued: float = 0.0
    billed_until: float = 0.0
    flags: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    log: list[str] = dataclasses.field(default_factory=list)
    comfy: ComfyHandle | None = None
    task: asyncio.Task[None] | None = None
    workspace: Path | None = None  # the container's /workspace, when it provisions models
    provisioning: asyncio.Task[int | None] | None = None
    destroyed_at: float | None = None
    public_ipaddr: str | None = None
    """The address after a start on a dynamic-IP host (F19); None: the machine's."""
    starts: int = 0
    stopped_at: float | None = None
    gpu_taken: bool = False
    """The last start found the GPU rented by someone else: it waits (F17)."""

    @property
    def machine(self) -> Machine:
        return self.offer.machine

    @property
    def dph_base(self) -> float:
        return self.bid_price if self.bid_price is not None else self.offer_row_base

    @property
    def offer_row_base(self) -> float:
        return round(self.machine.dph_per_gpu * self.offer.num_gpus, 4)

    @property
    def storage_rate(self) -> float:
        return self.disk * self.machine.storage_cost / 720.0

    @property
    def address(self) -> str:
        """Where the rental answers: its own address after a restart, else the machine's."""
        return self.public_ipaddr or self.machine.public_ipaddr

    def requested_ports(self) -> list[str]:
        """Container ports asked for with ``-p A:B`` env keys (and 22 for ssh runtypes)."""
        ports: list[str] = []
        for key in self.env:
            parts = key.split()
            if len(parts) == 2 and parts[0] == "-p" and ":" in parts[1]:
                inner = parts[1].split(":", 1)[1]
                ports.append(inner if "/" in inner else f"{inner}/tcp")
        if "ssh" in self.runtype and "22/tcp" not in ports:
            ports.append("22/tcp")
        return ports

    def comfy_port_key(self) -> str | None:
        tcp = [p for p in self.requested_ports() if p.endswith("/tcp") and p != "22/tcp"]
        return "8188/tcp" if "8188/tcp" in tcp else (tcp[0] if tcp else None)

    def row(self, now: float, *, with_ports: bool = True) -> dict[str, Any]:
        """The instance object of contract §6."""
        m = self.machine
        offer = self.offer.row(allocated_storage=self.disk, now=now, bid=self.bid_price is not None)
        row = {
            **{k: offer[k] for k in _OFFER_FIELDS_IN_INSTANCE},
            "id": self.id,
            "actual_status": self.actual_status,
            "intended_status": self.intended_status,
            "cur_state": self.cur_state,
            "next_state": self.cur_state,
            "status_msg": self.status_msg,
            "label": self.label,
            "image_uuid": self.image,
            "image_runtype": self.runtype,
            "image_args": list(self.args or []),
            "onstart": self.onstart,
            "extra_env": [[k, v] for k, v in self.env.items()],
            "template_id": None,
            "template_hash_id": None,
            "template_name": None,
            "public_ipaddr": self.address if self.actual_status is not None else None,
            "local_ipaddrs": "172.17.0.4 10.12.0.7 \n",
            "gpu_totalram": m.gpu_ram * self.offer.num_gpus,
            "gpu_util": 0.0 if self.actual_status == "running" else None,
            "gpu_temp": 38.0 if self.actual_status == "running" else None,
            "cpu_util": 0.02 if self.actual_status == "running" else None,
            "mem_usage": None,
            "mem_limit": None,
            "disk_space": self.disk,
            "disk_usage": 21.3 if self.actual_status == "running" else -1,
            "disk_util": 0.085 if self.actual_status == "running" else -1,
            "direct_port_start": 40400 if m.direct_port_count else -1,
            "direct_port_end": 40400 + m.direct_port_count - 1 if m.direct_port_count else -1,
            "ssh_host": "ssh4.vast.ai",
            "ssh_port": 30000 + self.id % 10000,
            "ssh_idx": "4",
            "jupyter_token": "0b7d5e2c9f14a6830e1d4b7a92c6f5e3",
            "dph_base": self.dph_base,
            "dph_total": round(self.dph_base + self.storage_rate, 6),
            "storage_total_cost": round(self.storage_rate, 6),
            "is_bid": self.bid_price is not None,
            "start_date": self.created_at,
            "end_date": m.end_date,
            "duration": max(0.0, m.end_date - now),
            "uptime_mins": (
                round((now - self.running_since) / 60.0, 2)
                if self.running_since is not None and self.actual_status == "running"
                else None
            ),
        }
        if with_ports:
            row["ports"] = self.ports
        return row


_OFFER_FIELDS_IN_INSTANCE = (
    "machine_id",
    "host_id",
    "bundle_id",
    "num_gpus",
    "gpu_name",
    "gpu_arch",
    "gpu_ram",
    "compute_cap",
    "cuda_max_good",
    "driver_version",
    "cpu_name",
    "cpu_cores_effective",
    "cpu_ram",
    "inet_up",
    "inet_down",
    "inet_up_cost",
    "inet_down_cost",
    "direct_port_count",
    "static_ip",
    "storage_cost",
    "min_bid",
    "reliability2",
    "verification",
    "geolocation",
    "country_code",
)


class World:
    """Everything the simulator knows; the HTTP layer only translates to and from it."""

    def __init__(
        self,
        *,
        clock: Clock,
        seed: int = 0,
        timing: Timing | None = None,
        comfy: ComfyStarter | None = None,
        machines: list[Machine] | None = None,
        balance: float = 1000.0,
        workspaces: Path | None = None,
        provision_timeout: float = 300.0,
    ) -> None:
        self.clock = clock
        self._workspaces = workspaces
        self._own_workspaces = workspaces is None
        self.provision_timeout = provision_timeout
        self.seed = seed
        self.timing = timing or Timing()
        self.comfy = comfy
        self._initial_machines = machines
        self._initial_balance = balance
        self.credit_stops = 0  # rentals stopped because the credit ran out
        self.ports_in_show = True
        #: Called with every new rental right after it exists, before the create answer
        #: is sent (chaos runs kill the operator there: a create whose answer it never saw).
        self.create_listeners: list[Callable[[Rental], None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._reset_market()

    def _reset_market(self) -> None:
        self.rnd = random.Random(self.seed)
        self.machines = self._initial_machines or generate_machines(self.seed, now=self.clock.now())
        self.offers: dict[int, Offer] = {o.id: o for o in offers_for(self.machines)}
        self.taken: set[int] = set()  # offers gone from the market (taken by someone else)
        self.rentals: dict[int, Rental] = {}
        self.destroyed: list[Rental] = []
        self.faults: list[Fault] = []
        self.requests: Counter[str] = Counter()
        self.balance = self._initial_balance
        self.credit_stops = 0
        self.next_id = 25_100_000 + self.rnd.randrange(1000)
        self.logs: dict[str, tuple[float, str]] = {}

    async def reset(self) -> None:
        await self.close()
        self._reset_market()

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        for rental in list(self.rentals.values()):
            await self._stop_rental(rental)
        if self._own_workspaces and self._workspaces is not None:
            shutil.rmtree(self._workspaces, ignore_errors=True)
            self._workspaces = None

    def workspace_for(self, rental: Rental) -> Path:
        """The rental's container workspace (created on first use, kept across reboots)."""
        if rental.workspace is None:
            if self._workspaces is None:
                self._workspaces = Path(tempfile.mkdtemp(prefix="vastai-sim-"))
            rental.workspace = self._workspaces / f"rental-{rental.id}"
            rental.workspace.mkdir(parents=True, exist_ok=True)
        return rental.workspace

    # ------------------------------------------------------------ market

    def busy_machines(self) -> set[int]:
        """Machines whose GPUs are held: a stopped rental holds none (its disk stays), so
        its machine is on the market again until it is started."""
        return {r.machine.machine_id for r in self.rentals.values() if r.cur_state != "stopped"}

    def available_offers(self) -> list[Offer]:
        busy = self.busy_machines()
        return [
            o
            for o in self.offers.values()
            if o.id not in self.taken and o.machine.machine_id not in busy
        ]

    def offer_available(self, offer_id: int) -> Offer | None:
        return next((o for o in self.available_offers() if o.id == offer_id), None)

    # ------------------------------------------------------------ faults

    def add_fault(self, fault: Fault) -> list[int]:
        """Register a fault; rental faults naming live rentals apply to them at once."""
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}")
        if not 0.0 <= fault.rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        applied: list[int] = []
        targeted = fault.instance_id is not None or fault.label is not None
        if fault.kind in RENTAL_FAULTS and targeted:
            for rental in list(self.rentals.values()):
                if self._matches_rental(fault, rental) and self._draw(fault):
                    self._apply_now(fault, rental)
                    applied.append(rental.id)
        if not (targeted and applied):  # otherwise kept for future rentals / requests
            self.faults.append(fault)
        return applied

    def _matches_rental(self, fault: Fault, rental: Rental) -> bool:
        return fault.applies(
            instance_id=rental.id,
            label=rental.label,
            machine_id=rental.machine.machine_id,
            host_id=rental.machine.host_id,
            offer_id=rental.offer.id,
        )

    def _draw(self, fault: Fault) -> bool:
        if fault.count is not None and fault.count <= 0:
            return False
        if fault.rate < 1.0 and self.rnd.random() >= fault.rate:
            return False
        if fault.count is not None:
            fault.count -= 1
        return True

    def take_fault(self, kind: str, **facts: Any) -> Fault | None:
        """The first matching fault of ``kind`` that fires now (counts it down)."""
        for fault in list(self.faults):
            if fault.kind == kind and fault.applies(**facts) and self._draw(fault):
                if fault.count == 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _apply_now(self, fault: Fault, rental: Rental) -> None:
        rental.flags[fault.kind] = dict(fault.params)
        if fault.kind == "offline" and rental.actual_status == "running":
            self._restart_task(rental, self._go_offline(rental))
        elif fault.kind in ("no_space", "pull_error") and rental.actual_status in (None, "loading"):
            self._restart_task(rental, self._fail_loading(rental, fault.kind))
        elif fault.kind == "no_space" and rental.actual_status == "running":
            self._disk_full(rental)
        elif fault.kind == "comfy_crash" and rental.actual_status == "running":
            self._in_background(self._crash_comfy(rental, fault.params))

    def _in_background(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _disk_full(self, rental: Rental) -> None:
        """A running machine's disk fills up: the status says so, saves fail from now on."""
        self.set_status(rental, "running", DISK_FULL_MSG)
        comfy = rental.comfy
        if isinstance(comfy, CrashableComfy):
            comfy.fail_node("SaveImage", exception_type="OSError", message=DISK_FULL_ERROR)

    async def _crash_comfy(self, rental: Rental, params: dict[str, Any]) -> None:
        """Its ComfyUI dies now (port closed, queue and history lost); the image's
        supervisor starts it again after ``restart_after`` simulated seconds (default 30;
        a negative value: never)."""
        comfy = rental.comfy
        if not isinstance(comfy, CrashableComfy):
            return
        await comfy.crash()
        rental.log.append("comfyui exited with code -9 (killed)")
        restart_after = float(params.get("restart_after", 30.0))
        if restart_after < 0:
            return
        await self.clock.sleep(restart_after)
        if rental.comfy is comfy and rental.id in self.rentals:
            await comfy.restart()
            rental.log.append("comfyui restarted by the supervisor")

    # ------------------------------------------------------------ rentals

    def create(self, offer: Offer, body: dict[str, Any]) -> Rental:
        now = self.clock.now()
        self.next_id += 1 + self.rnd.randrange(40)
        env = {str(k): str(v) for k, v in (body.get("env") or {}).items()}
        rental = Rental(
            id=self.next_id,
            offer=offer,
            label=body.get("label"),
            image=str(body.get("image")),
            env=env,
            runtype=str(body.get("runtype") or ("args" if body.get("args") else "ssh")),
            onstart=body.get("onstart"),
            args=body.get("args"),
            disk=float(body.get("disk") or 10.0),
            bid_price=body.get("price"),
            created_at=now,
            billed_until=now,
            api_key=secrets.token_hex(16),
            intended_status=str(body.get("target_state") or "running"),
        )
        facts = {
            "label": rental.label,
            "machine_id": offer.machine.machine_id,
            "host_id": offer.machine.host_id,
            "offer_id": offer.id,
        }
        for kind in RENTAL_FAULTS:
            fault = self.take_fault(kind, **facts)
            if fault is not None:
                rental.flags[kind] = dict(fault.params)
        self.rentals[rental.id] = rental
        self._restart_task(rental, self._boot(rental, cached=False))
        for listener in list(self.create_listeners):
            listener(rental)
        return rental

    def _restart_task(self, rental: Rental, coro: Awaitable[None]) -> None:
        old = rental.task
        rental.task = asyncio.ensure_future(coro)
        if old is not None and not old.done():
            old.cancel()

    def accrue(self, rental: Rental, now: float | None = None) -> None:
        """Add the cost since the last accrual at the rates of the current status."""
        now = self.clock.now() if now is None else now
        dt = max(0.0, now - rental.billed_until)
        rental.billed_until = max(rental.billed_until, now)
        if rental.actual_status == "offline":
            return  # not billed while the host is offline
        per_hour = rental.storage_rate
        if rental.actual_status in ("running", "frozen"):
            per_hour += rental.dph_base
        rental.accrued += per_hour * dt / 3600.0

    def set_status(self, rental: Rental, status: str | None, msg: str | None = None) -> None:
        self.accrue(rental)
        rental.actual_status = status
        if msg is not None:
            rental.status_msg = msg
            rental.log.append(msg.strip())

    async def _sleep_range(self, span: tuple[float, float]) -> None:
        await self.clock.sleep(self.rnd.uniform(*span))

    async def _boot(self, rental: Rental, *, cached: bool) -> None:
        """null → loading (pull lines) → running → ports (→ faults)."""
        try:
            if rental.intended_status == "stopped":
                self.set_status(rental, "stopped", "")
                rental.cur_state = "stopped"
                return
            await self._sleep_range(self.timing.loading_after if not cached else (1.0, 3.0))
            self.set_status(rental, "loading")
            if "stuck_loading" in rental.flags:
                self.set_status(rental, "loading", "a3ed95caeb02: Pulling fs layer")
                await asyncio.Event().wait()
            if "pull_error" in rental.flags:
                await self._fail_loading(rental, "pull_error")
            pull = self.rnd.uniform(*self.timing.pull) * (0.1 if cached else 1.0)
            layers = [secrets.token_hex(6) for _ in range(4)]
            steps = [f"{layer}: {step}" for step in LAYER_STEPS for layer in layers]
            for line in steps:
                self.set_status(rental, "loading", line)
                await self.clock.sleep(pull * 0.8 / len(steps))
            if "no_space" in rental.flags:
                await self._fail_loading(rental, "no_space")
            for layer in layers:
                self.set_status(rental, "loading", f"{layer}: Extracting")
                await self.clock.sleep(pull * 0.2 / len(layers))
            await self._run(rental)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must not kill the server
            logger.exception("rental %s lifecycle failed", rental.id)

    async def _fail_loading(self, rental: Rental, kind: str) -> None:
        msg = NO_SPACE_MSG if kind == "no_space" else PULL_ERROR_MSG.format(image=rental.image)
        self.set_status(rental, rental.actual_status or "loading", msg)
        rental.actual_status = "loading"
        await asyncio.Event().wait()  # stays loading forever, as the real service does

    async def _run(self, rental: Rental) -> None:
        image = rental.image.replace(":", "_")
        self.set_status(rental, "running", f"success, running {image}/{rental.runtype}\n")
        rental.running_since = self.clock.now()
        comfy_key = rental.comfy_port_key()
        if self.comfy is not None and comfy_key is not None and rental.comfy is None:
            token = rental.env.get("OPEN_BUTTON_TOKEN")
            if rental.env.get("ENABLE_AUTH", "").lower() == "false":
                token = None
            provisions = vastai_machine.provisions(rental.env) and bool(rental.onstart)
            workspace = self.workspace_for(rental) if provisions else None
            options: dict[str, Any] = {}  # passed only when set (starters of 3 args)
            if rental.public_ipaddr is not None:  # a new address after a start (F19)
                options["host"] = rental.address
            tls = None
            if vastai_machine.serves_tls(rental.env, rental.onstart):
                # The onstart line writes the pair before the portal's Caddy serves it.
                tls = await vastai_machine.install_tls(
                    rental.onstart or "", rental.env, self.workspace_for(rental), log=rental.log
                )
                if "plain_http" in rental.flags:
                    tls = None
                elif "foreign_cert" in rental.flags:
                    tls = vastai_machine.foreign_tls(self.workspace_for(rental))
            if tls is not None:
                options["tls"] = tls
            rental.comfy = await self.comfy(token, self.clock, workspace, **options)
            if workspace is not None and rental.onstart:
                rental.provisioning = asyncio.ensure_future(
                    vastai_machine.run_provisioning(
                        rental.onstart,
                        rental.env,
                        workspace,
                        timeout=self.provision_timeout,
                        log=rental.log,
                    )
                )
        late = rental.flags.get("late_ports")
        wait = float(late.get("seconds", 120.0)) if late is not None else 0.0
        await self.clock.sleep(max(wait, self.rnd.uniform(*self.timing.ports_after)))
        rental.ports = self._port_map(rental, comfy_key)
        crash = rental.flags.get("comfy_crash")
        if crash is not None:
            await self.clock.sleep(float(crash.get("after", 60.0)))
            await self._crash_comfy(rental, crash)
        offline = rental.flags.get("offline")
        if offline is not None:
            await self.clock.sleep(float(offline.get("after", 60.0)))
            await self._go_offline(rental)

    def _port_map(
        self, rental: Rental, comfy_key: str | None
    ) -> dict[str, list[dict[str, str]] | None]:
        if rental.machine.direct_port_count <= 0:
            return {}
        mapping: dict[str, list[dict[str, str]] | None] = {}
        for n, key in enumerate(rental.requested_ports()[:64]):
            if key == comfy_key and rental.comfy is not None:
                host_port = rental.comfy.port
            else:
                host_port = 40400 + (rental.id % 50 + rental.starts * 7) % 50 * 10 + n
            mapping[key] = [{"HostIp": "0.0.0.0", "HostPort": str(host_port)}]
        return mapping

    async def _stop_provisioning(self, rental: Rental) -> None:
        proc, rental.provisioning = rental.provisioning, None
        if proc is not None and not proc.done():
            proc.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await proc

    async def _go_offline(self, rental: Rental) -> None:
        """The host stops reporting: unknown, then offline; ComfyUI goes away."""
        if rental.comfy is not None:
            await rental.comfy.stop()
            rental.comfy = None
        self.set_status(rental, "unknown")
        await self.clock.sleep(self.timing.unknown_before_offline)
        self.set_status(rental, "offline")
        rental.ports = None

    async def _stop_rental(self, rental: Rental) -> None:
        task, rental.task = rental.task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._stop_provisioning(rental)
        if rental.comfy is not None:
            with contextlib.suppress(Exception):
                await rental.comfy.stop()
            rental.comfy = None

    async def destroy(self, rental: Rental) -> None:
        self.accrue(rental)
        self.rentals.pop(rental.id, None)
        rental.destroyed_at = self.clock.now()
        rental.cur_state = "unloaded"
        await self._stop_rental(rental)
        if rental.workspace is not None:
            shutil.rmtree(rental.workspace, ignore_errors=True)
        self.destroyed.append(rental)

    async def set_state(self, rental: Rental, state: str) -> None:
        """``PUT /instances/{id}/ {"state": ...}``: stop or start (contract §5.6, §7.2).

        Stop: the container exits, the GPU is released (the machine's offers are on the
        market again), the disk is kept and billed. Start: when the machine's GPU is free
        the rental loads for :attr:`Timing.resume` and runs again — the disk as it was
        (models already there), a new ComfyUI port and, on a host without a static IP, a
        new ``public_ipaddr`` (F19). When the GPU was rented meanwhile (by a rental of ours
        or, as drawn from ``gpu_taken`` faults and :attr:`Timing.gpu_taken`, by someone
        else) it waits: ``intended_status=running``, ``cur_state=stopped`` (F17).
        """
        if state == "stopped":
            rental.intended_status = "stopped"
            if rental.cur_state == "stopped" and rental.task is None:
                return
            await self._stop_rental(rental)
            self.set_status(rental, "exited", "")
            rental.cur_state = "stopped"
            rental.ports = None
            rental.gpu_taken = False
            rental.stopped_at = self.clock.now()
            return
        rental.intended_status = "running"
        if rental.cur_state != "stopped" or rental.task is not None:
            return  # running, or a start already under way
        facts = {
            "instance_id": rental.id,
            "label": rental.label,
            "machine_id": rental.machine.machine_id,
            "host_id": rental.machine.host_id,
            "offer_id": rental.offer.id,
        }
        taken = "gpu_taken" in rental.flags or self.take_fault("gpu_taken", **facts) is not None
        taken = taken or (self.timing.gpu_taken > 0 and self.rnd.random() < self.timing.gpu_taken)
        rental.flags.pop("gpu_taken", None)
        self._restart_task(rental, self._resume(rental, taken=taken))

    async def _resume(self, rental: Rental, *, taken: bool) -> None:
        """A start: wait for the GPU (forever when someone else took it), load, run."""
        try:
            rental.gpu_taken = taken
            if taken:
                await asyncio.Event().wait()
            while rental.machine.machine_id in self._held_by_others(rental):
                rental.gpu_taken = True  # "scheduling": another rental holds the GPU
                await self.clock.sleep(5.0)
            rental.gpu_taken = False
            rental.cur_state = "running"
            rental.starts += 1
            if not rental.machine.static_ip:
                rental.public_ipaddr = (
                    f"127.0.{self.rnd.randrange(1, 255)}.{rental.starts % 250 + 2}"
                )
            self.set_status(rental, "loading", "starting the container")
            await self._sleep_range(self.timing.resume)
            await self._run(rental)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must not kill the server
            logger.exception("rental %s start failed", rental.id)

    def _held_by_others(self, rental: Rental) -> set[int]:
        return {
            r.machine.machine_id
            for r in self.rentals.values()
            if r is not rental and r.cur_state != "stopped"
        }

    async def reboot(self, rental: Rental, *, recycle: bool = False) -> None:
        await self._stop_provisioning(rental)
        if rental.comfy is not None:
            await rental.comfy.stop()
            rental.comfy = None
        self.set_status(rental, "rebooting")
        rental.ports = None
        self._restart_task(rental, self._boot(rental, cached=not recycle))

    # ------------------------------------------------------------ reporting

    def snapshot(self) -> dict[str, Any]:
        now = self.clock.now()
        for rental in self.rentals.values():
            self.accrue(rental, now)

        def describe(r: Rental) -> dict[str, Any]:
            return {
                "id": r.id,
                "label": r.label,
                "offer_id": r.offer.id,
                "machine_id": r.machine.machine_id,
                "host_id": r.machine.host_id,
                "gpu_name": r.machine.gpu_name,
                "num_gpus": r.offer.num_gpus,
                "image": r.image,
                "actual_status": r.actual_status,
                "intended_status": r.intended_status,
                "cur_state": r.cur_state,
                "status_msg": r.status_msg,
                "ports": r.ports,
                "comfy_port": r.comfy.port if r.comfy is not None else None,
                "public_ipaddr": r.address,
                "starts": r.starts,
                "stopped_at": r.stopped_at,
                "gpu_taken": r.gpu_taken,
                "storage_per_hour": round(r.storage_rate, 6),
                "dph_total": round(r.dph_base + r.storage_rate, 6),
                "accrued_cost": round(r.accrued, 6),
                "created_at": r.created_at,
                "destroyed_at": r.destroyed_at,
                "faults": sorted(r.flags),
            }

        spent = sum(r.accrued for r in [*self.rentals.values(), *self.destroyed])
        return {
            "now": now,
            "time_scale": self.clock.time_scale,
            "offers": [o.row(allocated_storage=8.0, now=now) for o in self.available_offers()],
            "rentals": [describe(r) for r in self.rentals.values()],
            "destroyed": [describe(r) for r in self.destroyed],
            "requests": dict(self.requests),
            "faults": [dataclasses.asdict(f) for f in self.faults],
            "total_cost": round(spent, 6),
            "balance": round(self.balance - spent, 6),
            "credit_stops": self.credit_stops,
        }

    async def enforce_credit(self) -> list[Rental]:
        """Out of credit (contract §7.2, F18): every rental still running or starting is
        stopped as by ``PUT state=stopped`` (its GPU no longer billed, its disk still
        billed, ``intended_status`` stopped); returns those stopped now. A rental already
        stopped stays so; a start is refused while the credit stays at or below zero."""
        if self.balance - self.spent() > 0:
            return []
        stopping = [r for r in self.rentals.values()
                    if r.intended_status != "stopped" or r.cur_state != "stopped"]  # fmt: skip
        for rental in stopping:
            await self.set_state(rental, "stopped")
            rental.status_msg = "stopped: account out of credit"
            self.credit_stops += 1
        return stopping

    def spent(self) -> float:
        for rental in self.rentals.values():
            self.accrue(rental)
        return sum(r.accrued for r in [*self.rentals.values(), *self.destroyed])
