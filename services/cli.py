"""The `backorder` command.

    backorder up                  the whole platform on its embedded default (SQLite, a local
                                  nats-server, the sandbox store with demo data); Ctrl-C stops it
    backorder serve <service>     one service in the foreground (what Kubernetes runs)
    backorder migrate [service…]  Alembic migrations (all services when none is named)
    backorder <service> <cmd> …   a service's own commands (e.g. `backorder inventory create-token`)
"""

from __future__ import annotations

import argparse
import importlib
import runpy
import sys

GRPC_SERVICES = ("inventory", "billing", "storefront", "catalog_sync")
ALL_SERVICES = (*GRPC_SERVICES, "gateway", "sandbox")


def serve(service: str) -> int:
    if service in GRPC_SERVICES:
        importlib.import_module(f"services.{service}.server").main()
    elif service == "gateway":
        from services.gateway.server import main as gateway_main

        gateway_main()
    elif service == "sandbox":
        runpy.run_module("sandbox.bigcommerce", run_name="__main__", alter_sys=True)
    else:
        print(f"unknown service {service!r}; choose from {', '.join(ALL_SERVICES)}", file=sys.stderr)
        return 2
    return 0


def migrate(services: list[str]) -> int:
    from services.common import migrations
    from services.common.logs import configure_logging
    from services.common.settings import Secret, ServiceSettings, env

    configure_logging("migrate", env("BACKORDER_LOG_LEVEL", "INFO"))
    for service in services or list(GRPC_SERVICES):
        if service not in GRPC_SERVICES:
            print(f"unknown service {service!r}; choose from {', '.join(GRPC_SERVICES)}", file=sys.stderr)
            return 2
        # One Job may migrate every service: BACKORDER_<SVC>_DATABASE_URL wins over the shared name.
        url: Secret = (env(f"BACKORDER_{service.upper()}_DATABASE_URL", None, Secret)
                       or ServiceSettings.from_env(service).database_url)
        migrations.upgrade(service, url.reveal())
        print(f"{service}: migrated")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].replace("-", "_") in GRPC_SERVICES and len(argv) > 1:
        module = importlib.import_module(f"services.{argv[0].replace('-', '_')}.cli")
        return int(module.main(argv[1:]) or 0)
    parser = argparse.ArgumentParser(prog="backorder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="run the whole platform locally")
    serve_parser = commands.add_parser("serve", help="run one service")
    serve_parser.add_argument("service", choices=ALL_SERVICES)
    migrate_parser = commands.add_parser("migrate", help="run database migrations")
    migrate_parser.add_argument("services", nargs="*")
    options = parser.parse_args(argv)
    if options.command == "up":
        from services.launcher import up

        return up()
    if options.command == "serve":
        return serve(options.service)
    return migrate(options.services)


if __name__ == "__main__":
    sys.exit(main())
