"""Every Vast.ai call against respx: paths, bodies, headers, parsing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx
import pytest
import respx

from warmpool.operator import errors
from warmpool.operator.adapters import vastai


@dataclass
class Filters:
    gpu_names: list[str] = field(default_factory=lambda: ["RTX_4090", "RTX 3090"])
    min_gpu_ram_gb: float | None = 24
    num_gpus: int = 1
    min_reliability: float = 0.98
    min_direct_ports: int = 1
    max_price_per_hour: float | None = 0.6
    min_download_mbps: float | None = 500
    verified_only: bool = True
    countries: list[str] = field(default_factory=lambda: ["us", "CA"])
    excluded_countries: list[str] = field(default_factory=list)
    interruptible: bool = False
    bid_price: float | None = None


OFFER_ROW = {
    "id": "21837465",
    "machine_id": 41207,
    "host_id": 188342,
    "num_gpus": 1,
    "gpu_name": " RTX 4090 ",
    "gpu_ram": "24564",
    "dph_total": "0.432083",
    "reliability": 0.9962,
    "geolocation": "Oregon, US\n",
    "direct_port_count": None,
    "some_new_field": {"x": 1},
}

INSTANCE_ROW = {
    "id": 25103377,
    "machine_id": 41207,
    "actual_status": "running",
    "intended_status": "running",
    "cur_state": "running",
    "status_msg": "success, running img/args\n",
    "label": "warmpool.ns.sdxl.ginst-7x2k",
    "extra_env": [["-p 8188:8188", "1"], ["OPEN_BUTTON_TOKEN", "tok"]],
    "public_ipaddr": "203.0.113.58 ",
    "ports": {
        "8188/tcp": [{"HostIp": "0.0.0.0", "HostPort": "40417"}],
        "22/tcp": None,
    },
    "dph_total": 0.43,
    "start_date": 1764099311.52,
    "uptime_mins": None,
    "local_ipaddrs": "172.17.0.4 \n",
}


async def test_offer_query_from_pool_filters() -> None:
    query = vastai.build_offer_query(Filters(), disk_gb=250, limit=20)
    assert query == {
        "verified": {"eq": True},
        "external": {"eq": False},
        "rentable": {"eq": True},
        "rented": {"eq": False},
        "gpu_name": {"in": ["RTX 4090", "RTX 3090"]},
        "num_gpus": {"eq": 1},
        "gpu_ram": {"gte": 24000},
        "reliability": {"gte": 0.98},
        "direct_port_count": {"gte": 1},
        "dph_total": {"lte": 0.6},
        "inet_down": {"gte": 500},
        "geolocation": {"in": ["US", "CA"]},
        "disk_space": {"gte": 250},
        "type": "on-demand",
        "order": [["dph_total", "asc"]],
        "limit": 20,
        "allocated_storage": 250,
    }


async def test_offer_query_interruptible_with_exclusions() -> None:
    spec = Filters(
        gpu_names=[],
        min_gpu_ram_gb=None,
        max_price_per_hour=None,
        min_download_mbps=None,
        verified_only=False,
        countries=[],
        excluded_countries=["CN", "vn"],
        interruptible=True,
        bid_price=0.2,
    )
    query = vastai.build_offer_query(spec, disk_gb=100, order=[("score", "desc")])
    assert query["type"] == "bid"
    assert query["min_bid"] == {"lte": 0.2}
    assert query["geolocation"] == {"notin": ["CN", "VN"]}
    assert query["order"] == [["score", "desc"]]
    for absent in ("verified", "gpu_name", "gpu_ram", "dph_total", "inet_down"):
        assert absent not in query


async def test_search_offers(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter, vastai_key: str
) -> None:
    route = vastai_mock.post("/api/v0/bundles/").respond(200, json={"offers": [OFFER_ROW]})
    offers = await vastai_client.search_offers({"num_gpus": {"eq": 1}})
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {vastai_key}"
    assert vastai_key not in str(request.url)
    assert json.loads(request.content) == {"num_gpus": {"eq": 1}}
    [offer] = offers
    assert offer.id == 21837465
    assert offer.gpu_name == "RTX 4090"
    assert offer.gpu_ram == 24564.0
    assert offer.dph_total == pytest.approx(0.432083)
    assert offer.direct_port_count is None
    assert offer.country == "US"


async def test_search_offers_empty_and_malformed(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter
) -> None:
    vastai_mock.post("/api/v0/bundles/").mock(
        side_effect=[
            httpx.Response(200, json={"offers": []}),
            httpx.Response(200, json={"bundles": []}),
            httpx.Response(200, text="<html>oops</html>"),
            httpx.Response(200, json={"offers": [{"gpu_name": "no id"}]}),
        ]
    )
    assert await vastai_client.search_offers({}) == []
    for _ in range(3):
        with pytest.raises(errors.VastaiMalformedResponseError):
            await vastai_client.search_offers({})


async def test_create_instance(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter
) -> None:
    route = vastai_mock.put("/api/v0/asks/21837465/").respond(
        200, json={"success": True, "new_contract": 25103377, "instance_api_key": "ik"}
    )
    request = vastai.CreateInstanceRequest(
        image="ghcr.io/x/comfy:1",
        disk_gb=250,
        label="warmpool.ns.sdxl.ginst-1",
        env={**vastai.port_env(8188), "OPEN_BUTTON_TOKEN": "t0k"},
        onstart="echo hi",
    )
    created = await vastai_client.create_instance(21837465, request)
    assert created.instance_id == 25103377
    assert created.instance_api_key is not None
    assert created.instance_api_key.get_secret_value() == "ik"
    body = json.loads(route.calls.last.request.content)
    assert body == {
        "client_id": "me",
        "image": "ghcr.io/x/comfy:1",
        "disk": 250,
        "label": "warmpool.ns.sdxl.ginst-1",
        "env": {"-p 8188:8188": "1", "OPEN_BUTTON_TOKEN": "t0k"},
        "onstart": "echo hi",
        "runtype": "args",
        "cancel_unavail": True,
        "price": None,
    }


@pytest.mark.parametrize("status", [404, 409, 410], ids=["gone", "conflict", "unavailable"])
async def test_create_offer_unavailable(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter, status: int
) -> None:
    route = vastai_mock.put("/api/v0/asks/7/").respond(
        status, json={"success": False, "error": "no_such_ask", "msg": "no_such_ask 7"}
    )
    request = vastai.CreateInstanceRequest(image="i", disk_gb=10, label="l")
    with pytest.raises(errors.VastaiOfferUnavailableError) as info:
        await vastai_client.create_instance(7, request)
    assert info.value.status == status
    assert route.call_count == 1


async def test_create_logical_failure(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter
) -> None:
    vastai_mock.put("/api/v0/asks/7/").respond(200, json={"success": False, "msg": "no credit"})
    request = vastai.CreateInstanceRequest(image="i", disk_gb=10, label="l")
    with pytest.raises(errors.VastaiLogicalError, match="no credit"):
        await vastai_client.create_instance(7, request)


async def test_list_instances_follows_every_page(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter
) -> None:
    pages = {
        None: ({"instances": [{**INSTANCE_ROW, "id": 1}], "next_token": "t1"}),
        "t1": ({"instances": [{**INSTANCE_ROW, "id": 2}], "next_token": "t2"}),
        "t2": ({"instances": [{**INSTANCE_ROW, "id": 3}], "next_token": None}),
    }

    def answer(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("after_token")
        return httpx.Response(200, json={"success": True, **pages[token]})

    route = vastai_mock.get("/api/v1/instances/").mock(side_effect=answer)
    instances = await vastai_client.list_instances()
    assert [i.id for i in instances] == [1, 2, 3]
    assert route.call_count == 3
    first = route.calls[0].request.url.params
    assert json.loads(first["select_filters"]) == {}
    assert json.loads(first["order_by"]) == [{"col": "id", "dir": "asc"}]
    assert first["limit"] == "25"
    assert [c.request.url.params.get("after_token") for c in route.calls] == [None, "t1", "t2"]


async def test_list_instances_by_label(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter
) -> None:
    route = vastai_mock.get("/api/v1/instances/").respond(
        200,
        json={
            "instances": [INSTANCE_ROW, {**INSTANCE_ROW, "id": 9, "label": "someone.else"}],
            "next_token": None,
        },
    )
    found = await vastai_client.find_instances_by_label("warmpool.ns.sdxl.ginst-7x2k")
    assert [i.id for i in found] == [25103377]
    sent = json.loads(route.calls.last.request.url.params["select_filters"])
    assert sent == {"label": {"in": ["warmpool.ns.sdxl.ginst-7x2k"]}}


async def test_show_instance(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter
) -> None:
    route = vastai_mock.get("/api/v0/instances/25103377/").mock(
        side_effect=[
            httpx.Response(200, json={"instances": INSTANCE_ROW}),
            httpx.Response(200, json={"instances": [INSTANCE_ROW]}),
            httpx.Response(200, json={"instances": None}),
            httpx.Response(404, json={"error": "no_such_instance"}),
        ]
    )
    one = await vastai_client.show_instance(25103377)
    assert one is not None
    assert route.calls.last.request.url.params["owner"] == "me"
    assert one.label == "warmpool.ns.sdxl.ginst-7x2k"
    assert one.status_msg == "success, running img/args"
    assert one.public_ipaddr == "203.0.113.58"
    assert one.extra_env == {"-p 8188:8188": "1", "OPEN_BUTTON_TOKEN": "tok"}
    assert one.host_port("8188/tcp") == 40417
    assert one.host_port(8188) == 40417
    assert one.host_port("22/tcp") is None
    assert one.url_for(8188) == "http://203.0.113.58:40417"
    assert one.uptime_mins is None
    assert await vastai_client.show_instance(25103377) == one
    assert await vastai_client.show_instance(25103377) is None
    assert await vastai_client.show_instance(25103377) is None


async def test_instance_tolerates_missing_ports_and_odd_values() -> None:
    inst = vastai.Instance.model_validate(
        {"id": "5", "ports": None, "extra_env": None, "dph_total": "n/a", "num_gpus": "2"}
    )
    assert inst.id == 5
    assert inst.num_gpus == 2
    assert inst.dph_total is None
    assert inst.extra_env == {}
    assert inst.host_port(8188) is None
    assert inst.url_for(8188) is None
    running = vastai.Instance.model_validate(
        {"id": 6, "public_ipaddr": "1.2.3.4", "ports": {"8188/tcp": {"HostPort": 4000}}}
    )
    assert running.url_for("8188/tcp") == "http://1.2.3.4:4000"


async def test_label_instance(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter
) -> None:
    route = vastai_mock.put("/api/v0/instances/12/").respond(200, json={"success": True})
    await vastai_client.label_instance(12, "warmpool.a.b.c")
    assert json.loads(route.calls.last.request.content) == {"label": "warmpool.a.b.c"}


async def test_destroy_instance_and_already_gone(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter
) -> None:
    route = vastai_mock.delete("/api/v0/instances/12/").mock(
        side_effect=[
            httpx.Response(200, json={"success": True}),
            httpx.Response(404, json={"success": False, "error": "not_found"}),
        ]
    )
    assert await vastai_client.destroy_instance(12) is True
    assert await vastai_client.destroy_instance(12) is False
    assert route.call_count == 2


async def test_request_logs_polls_result_url_without_key(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter
) -> None:
    route = vastai_mock.put("/api/v0/instances/request_logs/12/").respond(
        200, json={"success": True, "result_url": "https://logs.test/abc.log"}
    )
    logs = vastai_mock.get("https://logs.test/abc.log").mock(
        side_effect=[httpx.Response(404), httpx.Response(200, text="line1\nline2\n")]
    )
    assert await vastai_client.request_logs(12, tail=50) == "line1\nline2\n"
    assert json.loads(route.calls.last.request.content) == {"tail": "50"}
    assert logs.call_count == 2
    assert "authorization" not in logs.calls.last.request.headers


async def test_request_logs_never_ready(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter
) -> None:
    vastai_mock.put("/api/v0/instances/request_logs/12/").respond(
        200, json={"success": True, "result_url": "https://logs.test/x.log"}
    )
    vastai_mock.get("https://logs.test/x.log").respond(404)
    with pytest.raises(errors.VastaiTimeoutError):
        await vastai_client.request_logs(12)


async def test_offer_query_from_the_real_crd_model() -> None:
    from warmpool.crds.gpupool import OfferSpec

    spec = OfferSpec.model_validate(
        {"gpuNames": ["RTX 4090"], "minGpuRamGb": 24, "excludedCountries": ["CN"]}
    )
    query = vastai.build_offer_query(spec, disk_gb=250)
    assert query["gpu_name"] == {"in": ["RTX 4090"]}
    assert query["gpu_ram"] == {"gte": 24000}
    assert query["geolocation"] == {"notin": ["CN"]}
    assert query["type"] == "on-demand"


async def test_list_all_instances_is_one_request_however_many(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter
) -> None:
    """The inventory's listing: one request for 60 instances (v1 would take three pages)."""
    rows = [{**INSTANCE_ROW, "id": n} for n in range(60)]
    route = vastai_mock.get("/api/v0/instances/").respond(
        200, json={"instances_found": 60, "instances": rows}
    )
    found = await vastai_client.list_all_instances()
    assert [i.id for i in found] == list(range(60))
    assert route.call_count == 1
    assert route.calls.last.request.url.params["owner"] == "me"


async def test_list_all_instances_falls_back_to_v1_for_good(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter
) -> None:
    legacy = vastai_mock.get("/api/v0/instances/").respond(
        404, json={"success": False, "error": "not_found", "msg": "gone"}
    )
    v1 = vastai_mock.get("/api/v1/instances/").respond(
        200, json={"instances": [INSTANCE_ROW], "next_token": None}
    )
    assert [i.id for i in await vastai_client.list_all_instances()] == [25103377]
    assert [i.id for i in await vastai_client.list_all_instances()] == [25103377]
    assert legacy.call_count == 1  # not asked again once refused
    assert v1.call_count == 2
