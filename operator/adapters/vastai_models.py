"""Typed Vast.ai answers and the offer query builder (pure, no I/O).

The models tolerate what the real API sends: extra and missing fields, nulls,
numbers as strings, stray whitespace (strings are stripped), Docker-style
``ports``. See ``contracts/vastai-api.md`` §3, §5.1 and §6.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator

# ---------------------------------------------------------------- models


def lax_number(value: Any) -> Any:
    """Numbers as the API sends them: null, "", " 12.5 ", garbage → None or a number."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text) if text else None
        except ValueError:
            return None
    return None


def lax_int(value: Any) -> Any:
    number = lax_number(value)
    if isinstance(number, float) and number.is_integer():
        return int(number)
    return number


def _lax_str(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        return text or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


LaxFloat = Annotated[float | None, BeforeValidator(lax_number)]
LaxInt = Annotated[int | None, BeforeValidator(lax_int)]
LaxStr = Annotated[str | None, BeforeValidator(_lax_str)]
Id = Annotated[int, BeforeValidator(lax_int)]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class Offer(_Lenient):
    """One rentable offer ("ask") from ``POST /bundles/``."""

    id: Id
    machine_id: LaxInt = None
    host_id: LaxInt = None
    num_gpus: LaxInt = None
    gpu_name: LaxStr = None
    gpu_ram: LaxFloat = Field(None, description="MB per GPU")
    gpu_total_ram: LaxFloat = None
    cpu_ram: LaxFloat = None
    disk_space: LaxFloat = Field(None, description="GB free on the machine")
    inet_down: LaxFloat = Field(None, description="Mbit/s")
    inet_up: LaxFloat = None
    direct_port_count: LaxInt = None
    dph_base: LaxFloat = None
    dph_total: LaxFloat = Field(None, description="USD/hour incl. allocated storage")
    storage_cost: LaxFloat = None
    min_bid: LaxFloat = None
    is_bid: bool | None = None
    reliability: LaxFloat = None
    verification: LaxStr = None
    geolocation: LaxStr = None
    score: LaxFloat = None
    cuda_max_good: LaxFloat = None
    rentable: bool | None = None

    @property
    def country(self) -> str | None:
        """The trailing two-letter code of ``geolocation`` ("Oregon, US" → "US")."""
        if not self.geolocation:
            return None
        tail = self.geolocation.rsplit(",", 1)[-1].strip()
        return tail.upper() if len(tail) == 2 else None


class Account(_Lenient):
    """The account from ``GET /users/current/`` (contract §5.10): only what the operator
    reads. ``credit`` is the prepaid credit left; ``balance`` is read when it is absent."""

    id: LaxInt = None
    credit: LaxFloat = None
    balance: LaxFloat = None

    @property
    def remaining(self) -> float | None:
        """Dollars left on the account (``credit``, else ``balance``)."""
        return self.credit if self.credit is not None else self.balance


class PortBinding(_Lenient):
    host_ip: LaxStr = Field(None, alias="HostIp")
    host_port: LaxInt = Field(None, alias="HostPort")


def _pairs_to_env(value: Any) -> Any:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    if isinstance(value, list):
        env: dict[str, str] = {}
        for pair in value:
            if isinstance(pair, list | tuple) and len(pair) == 2:
                env[str(pair[0])] = "" if pair[1] is None else str(pair[1])
        return env
    return {}


class Instance(_Lenient):
    """One rental (contract) as the list and by-id endpoints describe it."""

    id: Id
    machine_id: LaxInt = None
    host_id: LaxInt = None
    bundle_id: LaxInt = None
    actual_status: LaxStr = None
    intended_status: LaxStr = None
    cur_state: LaxStr = None
    next_state: LaxStr = None
    status_msg: LaxStr = None
    label: LaxStr = None
    image_uuid: LaxStr = None
    image_runtype: LaxStr = None
    extra_env: Annotated[dict[str, str], BeforeValidator(_pairs_to_env)] = Field(
        default_factory=dict
    )
    public_ipaddr: LaxStr = None
    ports: dict[str, list[PortBinding] | None] | None = None
    direct_port_count: LaxInt = None
    num_gpus: LaxInt = None
    gpu_name: LaxStr = None
    gpu_ram: LaxFloat = None
    disk_space: LaxFloat = None
    dph_base: LaxFloat = None
    dph_total: LaxFloat = None
    storage_cost: LaxFloat = Field(None, description="$/GB/month of the disk")
    storage_total_cost: LaxFloat = Field(None, description="$/hour of the allocated disk")
    is_bid: bool | None = None
    reliability2: LaxFloat = None
    verification: LaxStr = None
    geolocation: LaxStr = None
    start_date: LaxFloat = None
    end_date: LaxFloat = None
    uptime_mins: LaxFloat = None

    @field_validator("ports", mode="before")
    @classmethod
    def _ports(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return None
        out: dict[str, Any] = {}
        for key, bindings in value.items():
            if isinstance(bindings, dict):
                bindings = [bindings]
            out[str(key).strip()] = bindings if isinstance(bindings, list) else None
        return out

    def host_port(self, container_port: int | str = "8188/tcp") -> int | None:
        """The public host port mapped to ``container_port`` ("8188/tcp" or 8188), or None."""
        key = f"{container_port}/tcp" if isinstance(container_port, int) else container_port
        for binding in (self.ports or {}).get(key) or []:
            if binding.host_port is not None and binding.host_ip != "::":
                return binding.host_port
        return None

    def url_for(
        self, container_port: int | str = "8188/tcp", *, scheme: str = "http"
    ) -> str | None:
        """``http://public_ipaddr:HostPort`` for a mapped port, None until both are known."""
        port = self.host_port(container_port)
        if port is None or not self.public_ipaddr:
            return None
        return f"{scheme}://{self.public_ipaddr}:{port}"


class CreateInstanceRequest(BaseModel):
    """What to launch on an offer (body of ``PUT /asks/{id}/``)."""

    model_config = ConfigDict(frozen=True)

    image: str = Field(min_length=1, max_length=1024)
    disk_gb: float = Field(ge=8)
    label: str = Field(min_length=1, max_length=256)
    env: dict[str, str] = Field(default_factory=dict)
    onstart: str | None = None
    runtype: str = "args"
    args: list[str] | None = None
    bid_price: float | None = Field(None, ge=0.001, le=128)
    cancel_unavail: bool = True

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "client_id": "me",
            "image": self.image,
            "disk": self.disk_gb,
            "label": self.label,
            "env": dict(self.env),
            "onstart": self.onstart,
            "runtype": self.runtype,
            "cancel_unavail": self.cancel_unavail,
            "price": self.bid_price,
        }
        if self.args is not None:
            body["args"] = list(self.args)
        return body


def port_env(container_port: int) -> dict[str, str]:
    """The env entry asking Vast.ai to publish a TCP port (``{"-p 8188:8188": "1"}``)."""
    return {f"-p {container_port}:{container_port}": "1"}


class CreatedInstance(BaseModel):
    """A successful create: the new contract id and its per-instance key."""

    model_config = ConfigDict(frozen=True)

    instance_id: int
    instance_api_key: SecretStr | None = None


# ---------------------------------------------------------------- offer query


class OfferFilter(Protocol):
    """The attributes of ``GpuPool.spec.offer`` the query builder reads."""

    @property
    def gpu_names(self) -> Sequence[str]: ...
    @property
    def min_gpu_ram_gb(self) -> float | None: ...
    @property
    def num_gpus(self) -> int: ...
    @property
    def min_reliability(self) -> float: ...
    @property
    def min_direct_ports(self) -> int: ...
    @property
    def max_price_per_hour(self) -> float | None: ...
    @property
    def min_download_mbps(self) -> float | None: ...
    @property
    def verified_only(self) -> bool: ...
    @property
    def countries(self) -> Sequence[str]: ...
    @property
    def excluded_countries(self) -> Sequence[str]: ...
    @property
    def interruptible(self) -> bool: ...
    @property
    def bid_price(self) -> float | None: ...


def build_offer_query(
    offer: OfferFilter,
    *,
    disk_gb: float,
    limit: int = 64,
    order: Sequence[tuple[str, str]] = (("dph_total", "asc"),),
) -> dict[str, Any]:
    """The ``POST /bundles/`` body for a pool's offer filters (pure).

    GPU RAM goes in MB (the API's unit), GPU names with spaces, countries as bare
    codes matched against the end of ``geolocation``; ``allocated_storage`` and a
    ``disk_space`` floor make ``dph_total`` include the disk we will rent.
    """
    query: dict[str, Any] = {
        "external": {"eq": False},
        "rentable": {"eq": True},
        "rented": {"eq": False},
        "num_gpus": {"eq": offer.num_gpus},
        "reliability": {"gte": offer.min_reliability},
        "direct_port_count": {"gte": offer.min_direct_ports},
        "disk_space": {"gte": disk_gb},
    }
    if offer.verified_only:
        query["verified"] = {"eq": True}
    if offer.gpu_names:
        query["gpu_name"] = {"in": [n.replace("_", " ").strip() for n in offer.gpu_names]}
    if offer.min_gpu_ram_gb is not None:
        query["gpu_ram"] = {"gte": offer.min_gpu_ram_gb * 1000}
    if offer.max_price_per_hour is not None:
        query["dph_total"] = {"lte": offer.max_price_per_hour}
    if offer.min_download_mbps is not None:
        query["inet_down"] = {"gte": offer.min_download_mbps}
    geo: dict[str, Any] = {}
    if offer.countries:
        geo["in"] = [c.strip().upper() for c in offer.countries]
    if offer.excluded_countries:
        geo["notin"] = [c.strip().upper() for c in offer.excluded_countries]
    if geo:
        query["geolocation"] = geo
    if offer.interruptible and offer.bid_price is not None:
        query["min_bid"] = {"lte": offer.bid_price}
    query["type"] = "bid" if offer.interruptible else "on-demand"
    query["order"] = [[field, direction] for field, direction in order]
    query["limit"] = limit
    query["allocated_storage"] = disk_gb
    return query
