"""The Vast.ai simulator's market: machines, and the offers (asks) they make.

A machine with N GPUs offers bundles of 1, 2, 4 … N GPUs; every offer of a
machine disappears from search while one of them is rented and comes back when
the rental is destroyed. The default catalogue is generated from a seed, so it
is the same for every run with the same seed (contract §13.5).
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

# (gpu_name, MB per GPU, compute_cap, $/h per GPU low..high, dlperf per GPU, tflops)
GPU_MODELS: tuple[tuple[str, int, int, float, float, float, float], ...] = (
    ("RTX 3090", 24576, 860, 0.13, 0.25, 28.0, 35.6),
    ("RTX 4090", 24564, 890, 0.28, 0.55, 68.1, 82.6),
    ("RTX 5090", 32607, 1200, 0.55, 0.95, 95.4, 104.8),
    ("RTX A6000", 49140, 860, 0.40, 0.65, 45.0, 38.7),
    ("L40S", 46068, 890, 0.70, 1.10, 80.2, 91.6),
    ("A100 SXM4", 81920, 800, 0.90, 1.60, 110.5, 19.5),
    ("A100 PCIE", 40960, 800, 0.65, 1.10, 90.3, 19.5),
    ("H100 SXM", 81559, 900, 1.80, 2.80, 180.0, 66.9),
    ("H100 NVL", 95830, 900, 2.10, 3.10, 190.0, 60.0),
)
LOCATIONS: tuple[str, ...] = (
    "Oregon, US",
    "Texas, US",
    "Virginia, US",
    "Quebec, CA",
    "Ontario, CA",
    "Bavaria, DE",
    "Hesse, DE",
    "North Holland, NL",
    "Ile-de-France, FR",
    "England, GB",
    "Stockholm, SE",
    "Tokyo, JP",
    "Seoul, KR",
    "Guangdong, CN",
    "Hanoi, VN",
    "New South Wales, AU",
    "Sao Paulo, BR",
)
CPUS = ("AMD EPYC 7B13 64-Core Processor", "AMD Ryzen 9 7950X", "Intel Xeon Gold 6342")


@dataclasses.dataclass
class Machine:
    """One physical host machine (the ``machine_id``) of a host account (``host_id``)."""

    machine_id: int
    host_id: int
    gpu_name: str
    gpu_ram: int
    num_gpus: int
    compute_cap: int
    dph_per_gpu: float
    dlperf_per_gpu: float
    tflops_per_gpu: float
    geolocation: str
    reliability: float
    verification: str
    direct_port_count: int
    inet_down: float
    inet_up: float
    disk_space: float
    disk_bw: float
    storage_cost: float
    cpu_name: str
    cpu_cores: int
    cpu_ram: int
    public_ipaddr: str
    driver_version: str
    cuda_max_good: float
    static_ip: bool
    end_date: float


@dataclasses.dataclass
class Offer:
    """One rentable bundle of a machine."""

    id: int
    machine: Machine
    num_gpus: int
    bundle_id: int

    def row(self, *, allocated_storage: float, now: float, bid: bool = False) -> dict[str, Any]:
        """The offer as ``POST /bundles/`` answers it (contract §5.1)."""
        m = self.machine
        share = self.num_gpus / m.num_gpus
        dph_base = round(m.dph_per_gpu * self.num_gpus, 4)
        storage_total = allocated_storage * m.storage_cost / 720.0
        dph_total = dph_base + storage_total
        dlperf = m.dlperf_per_gpu * self.num_gpus
        country = m.geolocation.rsplit(",", 1)[-1].strip()
        return {
            "id": self.id,
            "ask_contract_id": self.id,
            "bundle_id": self.bundle_id,
            "machine_id": m.machine_id,
            "host_id": m.host_id,
            "hosting_type": 0,
            "num_gpus": self.num_gpus,
            "gpu_name": m.gpu_name,
            "gpu_arch": "nvidia",
            "gpu_ram": m.gpu_ram,
            "gpu_total_ram": m.gpu_ram * self.num_gpus,
            "gpu_frac": share,
            "gpu_mem_bw": 900.0,
            "gpu_display_active": False,
            "compute_cap": m.compute_cap,
            "cuda_max_good": m.cuda_max_good,
            "driver_version": m.driver_version,
            "cpu_name": m.cpu_name,
            "cpu_arch": "amd64",
            "cpu_cores": m.cpu_cores,
            "cpu_cores_effective": round(m.cpu_cores * share, 1),
            "cpu_ghz": 3.2,
            "cpu_ram": int(m.cpu_ram * share),
            "disk_space": m.disk_space,
            "disk_bw": m.disk_bw,
            "inet_up": m.inet_up,
            "inet_down": m.inet_down,
            "inet_up_cost": 0.003,
            "inet_down_cost": 0.003,
            "direct_port_count": m.direct_port_count,
            "static_ip": m.static_ip,
            "public_ipaddr": m.public_ipaddr,
            "dph_base": dph_base,
            "storage_cost": m.storage_cost,
            "storage_total_cost": round(storage_total, 6),
            "dph_total": round(dph_total, 6),
            "min_bid": round(dph_base * 0.55, 4),
            "is_bid": bid,
            "dlperf": round(dlperf, 1),
            "dlperf_per_dphtotal": round(dlperf / dph_total, 2) if dph_total else 0.0,
            "score": round(dlperf / dph_total * m.reliability, 2) if dph_total else 0.0,
            "total_flops": round(m.tflops_per_gpu * self.num_gpus, 1),
            "reliability": m.reliability,
            "reliability2": m.reliability,
            "verification": m.verification,
            "verified": m.verification == "verified",
            "rentable": True,
            "rented": False,
            "external": False,
            "vms_enabled": False,
            "geolocation": m.geolocation,
            "country_code": country,
            "datacenter": None,
            "os_version": "22.04",
            "ubuntu_version": "22.04",
            "pci_gen": 4.0,
            "pcie_bw": 24.9,
            "has_avx": 1,
            "mobo_name": "ROMED8-2T",
            "start_date": now - 86400.0,
            "end_date": m.end_date,
            "duration": max(0.0, m.end_date - now),
            "cluster_id": None,
        }


def bundle_sizes(num_gpus: int) -> list[int]:
    sizes, n = [], 1
    while n < num_gpus:
        sizes.append(n)
        n *= 2
    return [*sizes, num_gpus]


def generate_machines(seed: int = 0, *, count: int = 22, now: float = 1.76e9) -> list[Machine]:
    """A realistic, reproducible spread of machines (some hosts own several)."""
    rnd = random.Random(seed)
    machines: list[Machine] = []
    host_ids = [180_000 + rnd.randrange(10_000) for _ in range(count * 2 // 3)]
    for n in range(count):
        name, ram, cap, lo, hi, dlperf, tflops = GPU_MODELS[n % len(GPU_MODELS)]
        gpus = rnd.choice((1, 1, 2, 4, 8) if "H100" not in name else (1, 2, 8))
        host = host_ids[n % len(host_ids)]
        verified = rnd.random() > 0.15
        machines.append(
            Machine(
                machine_id=40_000 + n * 37 + rnd.randrange(30),
                host_id=host,
                gpu_name=name,
                gpu_ram=ram,
                num_gpus=gpus,
                compute_cap=cap,
                dph_per_gpu=round(rnd.uniform(lo, hi), 3),
                dlperf_per_gpu=dlperf * rnd.uniform(0.9, 1.05),
                tflops_per_gpu=tflops,
                geolocation=LOCATIONS[(n * 7 + rnd.randrange(3)) % len(LOCATIONS)],
                reliability=round(rnd.choice((0.9995, 0.998, 0.995, 0.99, 0.985, 0.97, 0.93)), 4),
                verification="verified" if verified else rnd.choice(("unverified", "deverified")),
                direct_port_count=rnd.choice((0, 8, 20, 99, 99, 500)),
                inet_down=round(rnd.uniform(80, 3000), 1),
                inet_up=round(rnd.uniform(50, 1500), 1),
                disk_space=round(rnd.uniform(150, 2000), 1),
                disk_bw=round(rnd.uniform(800, 6000), 1),
                storage_cost=round(rnd.uniform(0.05, 0.5), 3),
                cpu_name=rnd.choice(CPUS),
                cpu_cores=rnd.choice((16, 32, 64, 128)),
                cpu_ram=rnd.choice((64_000, 128_000, 257_850, 515_000)),
                public_ipaddr="127.0.0.1",
                driver_version=rnd.choice(("550.127.05", "570.133.07", "575.57.08")),
                cuda_max_good=rnd.choice((12.4, 12.8, 12.9)),
                static_ip=rnd.random() > 0.5,
                end_date=now + rnd.uniform(7, 90) * 86400.0,
            )
        )
    return machines


def offers_for(machines: list[Machine], *, first_id: int = 21_800_000) -> list[Offer]:
    """Every bundle of every machine, with offer ids in their own id space."""
    offers: list[Offer] = []
    next_id = first_id
    for m in machines:
        for size in bundle_sizes(m.num_gpus):
            next_id += 1 + (m.machine_id % 7)
            offers.append(Offer(id=next_id, machine=m, num_gpus=size, bundle_id=next_id * 27 + 1))
    return offers
