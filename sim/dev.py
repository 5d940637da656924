"""``warmpool-sim dev`` (``make demo``): the whole stack locally, at no cost.

In this process: the emulated Kubernetes API with the CRDs and the Vast.ai
simulator (which starts a ComfyUI simulator behind every running rental). As child
processes, exactly as they run in a cluster: ``warmpool-operator`` and
``warmpool-studio`` (the simulators never import the operator or the studio).
A sample GpuPool with one warm instance is declared; progress is printed until
it is Ready. Ctrl-C (or SIGTERM) stops every process.

``--oidc`` adds the bundled OpenID Connect provider (Node.js) and runs the studio in auth
mode oidc; ``--payments`` adds localstripe (a Stripe fake, ``warmpool-sim stripe``, a child
process) with a webhook to the studio, and switches prepaid credits on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import httpx

from warmpool.sim.cluster import RunningCluster, start_cluster
from warmpool.sim.oidc_provider import OidcProvider, start_provider
from warmpool.sim.payments import STRIPE_JS_PATH
from warmpool.sim.vastai import VastaiServer, start_vastai

API = "warmpool.dev/v1alpha1"

SAMPLE_POOL: dict[str, Any] = {
    "apiVersion": API,
    "kind": "GpuPool",
    "metadata": {"name": "sdxl", "namespace": "default"},
    "spec": {
        "replicas": 1,
        "maxReplicas": 3,
        "idleTimeout": "5m",
        "offer": {"gpuNames": ["RTX 4090", "RTX 3090", "RTX 5090"], "maxPricePerHour": 1.5},
        "template": {
            "diskGb": 60,
            "models": [{"folder": "checkpoints", "file": "sd_xl_base_1.0.safetensors"}],
        },
        "budget": {"maxHourlySpend": 5, "maxDailySpend": 60},
    },
}


def listening_socket(port: int) -> socket.socket:
    """A listening loopback socket on ``port`` (0: any free one), to hand to a child process.

    Binding here and passing the open socket on (socket activation) leaves no moment in which
    another process could take a port chosen for a child, as choosing a free port and letting
    the child bind it later would.
    """
    sock = socket.socket()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def bound_port(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def console_script(name: str) -> str:
    """The console script next to this interpreter (never ``python -m`` from the root)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found: run `make demo` (it installs the package)")
    return found


def say(text: str) -> None:
    print(text, flush=True)


class Stack:
    """The running pieces, stopped in reverse order."""

    def __init__(self) -> None:
        self.cluster: RunningCluster | None = None
        self.vastai: VastaiServer | None = None
        self.children: dict[str, asyncio.subprocess.Process] = {}
        self.oidc: OidcProvider | None = None

    async def spawn(
        self, name: str, argv: list[str], env: dict[str, str], *, listening: socket.socket
    ) -> None:
        """Start a child that serves on ``listening`` (inherited; this copy is then closed)."""
        with listening:
            self.children[name] = await asyncio.create_subprocess_exec(
                *argv, env=env, start_new_session=True, pass_fds=(listening.fileno(),)
            )

    async def stop(self) -> None:
        for proc in self.children.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for name, proc in self.children.items():
            try:
                await asyncio.wait_for(proc.wait(), timeout=15)
            except TimeoutError:
                say(f"{name} did not stop in 15 s; killing it")
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self.oidc is not None:
            await asyncio.to_thread(self.oidc.stop)
        if self.vastai is not None:
            await self.vastai.stop()
        if self.cluster is not None:
            await self.cluster.stop()


async def wait_http(url: str, *, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            try:
                if (await http.get(url)).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            if loop.time() > deadline:
                raise SystemExit(f"{url} did not answer within {timeout:.0f} s")
            await asyncio.sleep(0.2)


async def show_progress(stack: Stack, *, studio: str) -> None:
    """Print instance phase changes; say when the pool is Ready; watch the children."""
    assert stack.cluster is not None
    seen: dict[str, str] = {}
    announced = False
    while True:
        for name, proc in stack.children.items():
            if proc.returncode is not None:
                raise SystemExit(f"{name} exited with code {proc.returncode}")
        for inst in stack.cluster.list(API, "GpuInstance", "default"):
            status = inst.get("status") or {}
            phase = status.get("phase", "Pending")
            name = inst["metadata"]["name"]
            if seen.get(name) != phase:
                seen[name] = phase
                detail = status.get("message") or status.get("reason") or ""
                gpu = status.get("gpuName") or ""
                say(f"  instance {name}: {phase} {gpu} {detail}".rstrip())
        pool = stack.cluster.get(API, "GpuPool", "sdxl", "default") or {}
        ready = (pool.get("status") or {}).get("readyReplicas", 0)
        if ready and not announced:
            announced = True
            say(f"pool sdxl is Ready ({ready} warm instance). Generate at {studio}")
        await asyncio.sleep(1.0)


def prepare_state_dir() -> Path:
    """``.warmpool/`` in the working directory, with the artifact store inside."""
    state = Path(".warmpool").resolve()
    (state / "artifacts").mkdir(parents=True, exist_ok=True)
    return state


async def start_oidc(stack: Stack, studio_port: int, *, port: int) -> dict[str, str]:
    """Start the bundled OpenID Connect provider on ``port``; the studio's environment for
    it. Accounts are kept per issuer, whose URL names the port: a fixed port keeps a
    demo's accounts from one run to the next."""
    callback = f"http://127.0.0.1:{studio_port}/auth/callback"
    try:
        stack.oidc = await asyncio.to_thread(start_provider, redirect_uris=[callback], port=port)
    except RuntimeError as e:
        taken = f" (is port {port} taken? choose another with --oidc-port)" if port else ""
        raise SystemExit(f"--oidc: {e}{taken}") from e
    say(f"OpenID Connect provider  {stack.oidc.issuer}  (npm oidc-provider, dev interactions)")
    return {
        "WARMPOOL_STUDIO_AUTH": "oidc",
        "WARMPOOL_STUDIO_OIDC_ISSUER": stack.oidc.issuer,
        "WARMPOOL_STUDIO_OIDC_CLIENT_ID": stack.oidc.client_id,
        "WARMPOOL_STUDIO_OIDC_CLIENT_SECRET": stack.oidc.client_secret,
        "WARMPOOL_STUDIO_OIDC_SCOPES": "openid email profile groups",
    }


async def start_payments(stack: Stack, studio_port: int) -> dict[str, str]:
    """Start localstripe with a webhook to the studio; the studio's environment for it
    (fresh random keys each run: localstripe takes any ``sk_``/``pk_`` key)."""
    listening = listening_socket(0)
    base = f"http://127.0.0.1:{bound_port(listening)}"
    argv = [console_script("warmpool-sim"), "stripe", "--fd", str(listening.fileno())]
    await stack.spawn("localstripe", argv, dict(os.environ), listening=listening)
    await wait_http(f"{base}{STRIPE_JS_PATH}")
    hook = f"whsec_{secrets.token_hex(16)}"
    async with httpx.AsyncClient(timeout=10) as http:
        registered = await http.post(
            f"{base}/_config/webhooks/studio",
            data={"url": f"http://127.0.0.1:{studio_port}/payments/webhook", "secret": hook},
        )
    if registered.status_code != 200:
        raise SystemExit(f"--payments: localstripe refused the webhook ({registered.status_code})")
    say(f"Stripe (localstripe)     {base}  (a fake: card 4242 4242 4242 4242, any date, any CVC)")
    return {
        "WARMPOOL_STUDIO_PAYMENTS": "true",
        "WARMPOOL_STUDIO_STRIPE_SECRET_KEY": f"sk_test_{secrets.token_hex(12)}",
        "WARMPOOL_STUDIO_STRIPE_PUBLISHABLE_KEY": f"pk_test_{secrets.token_hex(12)}",
        "WARMPOOL_STUDIO_STRIPE_WEBHOOK_SECRET": hook,
        "WARMPOOL_STUDIO_STRIPE_API_BASE": base,
        "WARMPOOL_STUDIO_STRIPE_JS_URL": f"{base}{STRIPE_JS_PATH}",
        # localstripe's Stripe.js has no Payment Element: its Card Element and a token
        "WARMPOOL_STUDIO_STRIPE_FLOW": "card-token",
        "WARMPOOL_STUDIO_CREDIT_PACKS": "[5, 20, 50]",
        "WARMPOOL_STUDIO_CREDIT_MARKUP": "1.25",
    }


async def serve(
    *,
    studio_port: int,
    time_scale: float,
    kubeconfig: str,
    comfy_step_seconds: float | None = None,
    oidc: bool = False,
    oidc_port: int | None = None,
    payments: bool = False,
) -> None:
    """Run the stack until interrupted (``oidc``: with the bundled OpenID Connect provider,
    the studio in auth mode oidc: people sign up and in there; on ``oidc_port``, by default
    the studio's port + 1, any free one when that is 0; ``payments``: with localstripe,
    prepaid credits on)."""
    if oidc_port is None:
        oidc_port = studio_port + 1 if studio_port else 0
    for noisy in ("aiohttp.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    state = prepare_state_dir()
    stack = Stack()
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, lambda: main_task.cancel() if main_task else None)
    try:
        stack.cluster = await start_cluster()
        config = stack.cluster.write_kubeconfig(kubeconfig).resolve()
        api_key = secrets.token_hex(16)
        comfy = {} if comfy_step_seconds is None else {"step_seconds": comfy_step_seconds}
        try:
            studio_socket = listening_socket(studio_port)
        except OSError as exc:
            raise SystemExit(f"cannot listen on 127.0.0.1:{studio_port}: {exc.strerror}") from exc
        health_socket = listening_socket(0)
        studio_port, health_port = bound_port(studio_socket), bound_port(health_socket)
        log_level = os.environ.get("WARMPOOL_LOG_LEVEL", "WARNING").upper()  # both children
        stack.vastai = await start_vastai(
            api_key=api_key, time_scale=time_scale, comfy_options=comfy
        )
        say(f"emulated Kubernetes API  {stack.cluster.url}  (kubeconfig {config})")
        say(f"simulated Vast.ai        {stack.vastai.url}  (time x{time_scale:g})")
        env = {
            **os.environ,
            "KUBECONFIG": str(config),
            "WARMPOOL_KUBECONFIG": str(config),
            "WARMPOOL_VASTAI_URL": stack.vastai.url,
            "WARMPOOL_VASTAI_API_KEY": api_key,
            "WARMPOOL_ARTIFACTS_URL": f"file://{state / 'artifacts'}",
            # The studio's records (audit trail, usage ledger): an SQLite file.
            "WARMPOOL_STUDIO_RECORDS_URL": f"sqlite+aiosqlite:///{state / 'records.db'}",
            "WARMPOOL_RECONCILE_INTERVAL": "2",
            # The simulated machines are on 127.0.0.1, which production refuses.
            "WARMPOOL_ALLOWED_MACHINE_NETWORKS": '["127.0.0.0/8"]',
            "WARMPOOL_HEALTH_PORT": str(health_port),
            "WARMPOOL_HEALTH_FD": str(health_socket.fileno()),
            "WARMPOOL_LOG_LEVEL": log_level,
            "WARMPOOL_STUDIO_AUTH": "none",
            "WARMPOOL_STUDIO_NAMESPACE": "default",
        }
        if oidc:
            env.update(await start_oidc(stack, studio_port, port=oidc_port))
        if payments:
            env.update(await start_payments(stack, studio_port))
        studio_env = {k: v for k, v in env.items() if k != "WARMPOOL_HEALTH_FD"}
        await stack.spawn(
            "operator", [console_script("warmpool-operator")], env, listening=health_socket
        )
        await stack.spawn(
            "studio",
            [console_script("warmpool-studio"), "--fd", str(studio_socket.fileno()),
             "--log-level", log_level.lower()],
            studio_env,
            listening=studio_socket,
        )  # fmt: skip
        studio = f"http://127.0.0.1:{studio_port}/"
        await wait_http(f"{studio}healthz")
        if stack.cluster.get(API, "GpuPool", "sdxl", "default") is None:
            stack.cluster.create(SAMPLE_POOL)
        say(f"studio                   {studio}")
        if stack.oidc is not None:
            say(f"sign up / sign in        {studio}  (any login and password at the test "
                "provider; a login starting with 'admin' is an admin)")  # fmt: skip
        else:
            say(f"admin console            {studio}admin  (the local user is an admin)")
        if payments:
            say(f"credits                  {studio}credits  (buy a pack, then generate)")
        say(f"metrics                  http://127.0.0.1:{health_port}/metrics (operator), "
            f"{studio}metrics (studio)")  # fmt: skip
        say(f"kubectl:  KUBECONFIG={config} .venv/bin/kubectl get warmpool")
        say("warming up pool sdxl (1 instance) ... Ctrl-C stops everything")
        await show_progress(stack, studio=studio)
    except asyncio.CancelledError:
        say("stopping ...")
    finally:
        await stack.stop()
        say("stopped")
