"""``warmpool-sim``: the simulators, the emulated Kubernetes API and the dev stack."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="warmpool-sim",
        description="Local simulators of Vast.ai and ComfyUI, an emulated Kubernetes API, "
        "and the whole local stack.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("vastai", help="the Vast.ai simulator alone")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8581)
    p.add_argument("--api-key", default=None, help="accept only this key (default: any)")
    p.add_argument("--time-scale", type=float, default=1.0, help="simulated seconds per second")

    p = sub.add_parser("comfyui", help="one ComfyUI simulator alone")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8188)
    p.add_argument("--token", default=None, help="require this Bearer token")
    p.add_argument("--time-scale", type=float, default=1.0, help="simulated seconds per second")
    p.add_argument(
        "--comfy-version",
        default="0.38.1",
        help="ComfyUI version to speak: 0.38.x (default) or 0.3.64 (its recorded catalogue)",
    )

    p = sub.add_parser("cluster", help="the emulated Kubernetes API with the CRDs installed")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8443)
    p.add_argument("--kubeconfig", default=".warmpool/kubeconfig")

    p = sub.add_parser("stripe", help="localstripe, a Stripe fake (the demo's payments)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8420)
    p.add_argument(
        "--fd", type=int, default=None, help="serve on this inherited listening socket instead"
    )

    p = sub.add_parser("dev", help="the whole local stack (make demo)")
    p.add_argument(
        "--studio-port", type=int, default=8000, help="the studio's port (0: any free one)"
    )
    p.add_argument("--time-scale", type=float, default=20.0)
    p.add_argument("--kubeconfig", default=".warmpool/kubeconfig")
    p.add_argument(
        "--comfy-step-seconds",
        type=float,
        default=None,
        help="simulated seconds per sampler step in the ComfyUI simulators (default 0.15)",
    )
    p.add_argument(
        "--oidc",
        action="store_true",
        help="accounts: start the bundled OpenID Connect provider (npm oidc-provider) and "
        "run the studio in auth mode oidc (sign up and in there)",
    )
    p.add_argument(
        "--oidc-port",
        type=int,
        default=None,
        help="the provider's port (default: the studio's + 1; 0: any free one). Accounts "
        "are kept per issuer: a fixed port keeps them from one run to the next",
    )
    p.add_argument(
        "--payments",
        action="store_true",
        help="prepaid credits: start localstripe (a Stripe fake) with a webhook to the "
        "studio, and switch payments on (buy credits with the test card 4242 4242 4242 4242)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        if args.command == "vastai":
            from warmpool.sim import vastai

            asyncio.run(
                vastai.serve(args.host, args.port, api_key=args.api_key, time_scale=args.time_scale)
            )
        elif args.command == "comfyui":
            from warmpool.sim import comfyui

            asyncio.run(
                comfyui.serve(
                    args.host,
                    args.port,
                    token=args.token,
                    time_scale=args.time_scale,
                    comfy_version=args.comfy_version,
                )
            )
        elif args.command == "cluster":
            from warmpool.sim import cluster

            asyncio.run(cluster.serve(args.host, args.port, kubeconfig=args.kubeconfig))
        elif args.command == "stripe":
            from warmpool.sim import payments

            asyncio.run(payments.serve(args.host, args.port, fd=args.fd))
        elif args.command == "dev":
            from warmpool.sim import dev

            asyncio.run(
                dev.serve(
                    studio_port=args.studio_port,
                    time_scale=args.time_scale,
                    kubeconfig=args.kubeconfig,
                    comfy_step_seconds=args.comfy_step_seconds,
                    oidc=args.oidc,
                    oidc_port=args.oidc_port,
                    payments=args.payments,
                )
            )
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
