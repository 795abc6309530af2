"""`deact stack up|down|status`: the local stack in the background (what `make up` / `make down` run)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

from deact.errors import CommandError
from deactivation.settings import Settings, get_settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stack", help="Start or stop the local stack (MongoDB, collector, Prefect server and worker)."
    )
    actions = parser.add_subparsers(dest="stack_command", metavar="ACTION", required=True)
    actions.add_parser("up", help="Start everything in the background and register the deployments.")
    actions.add_parser("down", help="Stop exactly the processes `up` started.")
    actions.add_parser("status", help="Which services of the stack are running.")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from deact import local_stack

    settings = get_settings()
    # Children (server, worker, deploy, flow runs) inherit Prefect's settings for the local stack.
    os.environ.update(local_stack.prefect_environment(settings))
    os.environ["PREFECT_API_URL"] = local_stack.prefect_api_url(settings)
    registry = local_stack.ProcessRegistry(settings)
    services = local_stack.stack_services(settings)
    if args.stack_command == "up":
        return _up(settings, registry, services)
    if args.stack_command == "down":
        stopped = [s.name for s in reversed(services) if registry.stop(s)]
        print("stopped: " + (", ".join(stopped) or "nothing was running"))
        print(json.dumps({"stopped": stopped}))
        return 0
    running = {s.name: registry.running_pid(s) for s in services}
    for name, pid in running.items():
        print(f"{name:15} {'running, pid ' + str(pid) if pid else 'stopped'}")
    print(json.dumps({"running": {name: pid for name, pid in running.items() if pid}}))
    return 0


def _up(settings: Settings, registry, services) -> int:
    from deact import local_stack
    from deactivation.mongo import wait_until_ready

    started, skipped = [], []
    for service in services:
        if registry.running_pid(service):
            skipped.append(f"{service.name} (already running)")
            continue
        if service.name == "mongo" and _mongo_answers(settings):
            skipped.append(f"mongo (something already answers at {settings.MONGODB_URI})")
            continue
        print(f"starting {service.name}: log {registry.log_file(service.name)}", flush=True)
        process = registry.start(service, PROJECT_ROOT)
        try:
            if service.name == "mongo":
                wait_until_ready(settings.MONGODB_URI, service.ready_timeout_s)
            elif service.ready_url:
                local_stack.wait_for(service.ready_url, service.ready_timeout_s, process)
        except (RuntimeError, TimeoutError) as exc:
            raise CommandError(
                f"{service.name} did not start ({exc}); see {registry.log_file(service.name)}; "
                "`make down` stops what did start"
            ) from exc
        started.append(service.name)
        if service.name == "prefect-server":
            _register_deployments(registry)
    _print_urls(settings, registry)
    print(json.dumps({"started": started, "skipped": skipped}))
    return 0


def _mongo_answers(settings: Settings) -> bool:
    from deactivation.mongo import wait_until_ready

    try:
        wait_until_ready(settings.MONGODB_URI, timeout_s=1.0)
    except TimeoutError:
        return False
    return True


def _register_deployments(registry) -> None:
    """Create the local process work pool and register every deployment of prefect.yaml."""
    from deact import local_stack

    prefect = local_stack.bin_path("prefect")
    log_path = registry.log_file("prefect-deploy")
    print(f"registering deployments (prefect deploy --all): log {log_path}", flush=True)
    create_pool = ["work-pool", "create", local_stack.WORK_POOL, "--type", "process", "--overwrite"]
    commands = [[prefect, "--no-prompt", *create_pool], [prefect, "--no-prompt", "deploy", "--all"]]
    with open(log_path, "ab") as output:
        for command in commands:
            result = subprocess.run(command, cwd=PROJECT_ROOT, stdout=output, stderr=subprocess.STDOUT)
            if result.returncode != 0:
                raise CommandError(f"`{' '.join(command[1:])}` failed; see {log_path}")


def _print_urls(settings: Settings, registry) -> None:
    from deact import local_stack

    ui = local_stack.prefect_api_url(settings).removesuffix("/api")
    print(
        "\nThe local stack is up:\n"
        f"  Prefect UI        {ui}  (deployments, runs, artifacts; run any hour from there)\n"
        f"  collector         http://127.0.0.1:{settings.PORT}/deactivate  (healthz, readyz)\n"
        f"  MongoDB           {settings.MONGODB_URI}\n"
        f"  logs              {registry.logs_dir}/\n"
        f"  stop everything   make down\n"
    )
