"""`deact stack up|down|status`: the local stack in the background (what `make up` / `make down` run)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

from deact import local_stack
from deact.cli import add_json_option
from deact.errors import RunFailed, ServiceUnavailable
from deactivation.settings import Settings, get_settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stack", help="Start or stop the local stack (MongoDB, collector, Prefect server and worker)."
    )
    actions = parser.add_subparsers(dest="stack_command", metavar="ACTION", required=True)
    up = actions.add_parser("up", help="Start everything in the background and register the deployments.")
    up.add_argument(
        "--emulators",
        action="store_true",
        help="Instead: start the GCS and BigQuery emulators on free ports, make the bucket and the "
        "dataset, and print the settings to export (the production configuration on this machine).",
    )
    add_json_option(up, "what was started")
    down = actions.add_parser("down", help="Stop exactly the processes `up` started (emulators included).")
    add_json_option(down, "what was stopped")
    status = actions.add_parser("status", help="Which services of the stack are running.")
    add_json_option(status, "the running services and their PIDs")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    settings = get_settings()
    registry = local_stack.ProcessRegistry(settings)
    if args.stack_command == "up" and args.emulators:
        return _up_emulators(settings, registry, as_json=args.json)
    # Children (server, worker, deploy, flow runs) inherit Prefect's settings for the local stack.
    os.environ.update(local_stack.prefect_environment(settings))
    os.environ["PREFECT_API_URL"] = local_stack.prefect_api_url(settings)
    services = local_stack.stack_services(settings)
    emulators = [local_stack.Service(name, []) for name in local_stack.EMULATOR_NAMES]
    if args.stack_command == "up":
        return _up(settings, registry, services, as_json=args.json)
    if args.stack_command == "down":
        stopped = [s.name for s in [*reversed(services), *emulators] if registry.stop(s)]
        if args.json:
            print(json.dumps({"stopped": stopped}))
        else:
            print("stopped: " + (", ".join(stopped) or "nothing was running"))
        return 0
    running = {s.name: registry.running_pid(s) for s in [*services, *emulators]}
    if args.json:
        print(json.dumps({"running": {name: pid for name, pid in running.items() if pid}}))
        return 0
    for name, pid in running.items():
        print(f"{name:17} {'running, pid ' + str(pid) if pid else 'stopped'}")
    return 0


def _up(settings: Settings, registry, services, *, as_json: bool) -> int:
    from deactivation.mongo import wait_until_ready  # lazy: pymongo; keeps `deact --help` fast

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
            raise ServiceUnavailable(
                f"{service.name} did not start ({exc}); see {registry.log_file(service.name)}; "
                "`make down` stops what did start"
            ) from exc
        started.append(service.name)
        if service.name == "prefect-server":
            local_stack.record_prefect_url(settings)
            _register_deployments(registry)
    if as_json:
        print(json.dumps({"started": started, "skipped": skipped}))
    else:
        for line in skipped:
            print(f"skipped {line}")
        _print_urls(settings, registry)
    return 0


def _mongo_answers(settings: Settings) -> bool:
    from deactivation.mongo import wait_until_ready  # lazy: pymongo; keeps `deact --help` fast

    try:
        wait_until_ready(settings.MONGODB_URI, timeout_s=1.0)
    except TimeoutError:
        return False
    return True


def _register_deployments(registry) -> None:
    """Create the local process work pool and register every deployment of prefect.yaml."""

    prefect = local_stack.bin_path("prefect")
    log_path = registry.log_file("prefect-deploy")
    print(f"registering deployments (prefect deploy --all): log {log_path}", flush=True)
    create_pool = ["work-pool", "create", local_stack.WORK_POOL, "--type", "process", "--overwrite"]
    commands = [[prefect, "--no-prompt", *create_pool], [prefect, "--no-prompt", "deploy", "--all"]]
    with open(log_path, "ab") as output:
        for command in commands:
            result = subprocess.run(command, cwd=PROJECT_ROOT, stdout=output, stderr=subprocess.STDOUT)
            if result.returncode != 0:
                raise RunFailed(f"`{' '.join(command[1:])}` failed; see {log_path}")


def _print_urls(settings: Settings, registry) -> None:
    ui = local_stack.prefect_api_url(settings).removesuffix("/api")
    smtp_port = local_stack.local_smtp_port(settings)
    mail_line = (
        f"  mail sink         smtp://127.0.0.1:{smtp_port}  (every mail as an .eml file in "
        f"{settings.DATA_DIR / 'mail'})\n"
        if smtp_port
        else ""
    )
    print(
        "\nThe local stack is up:\n"
        f"  Prefect UI        {ui}  (deployments, runs, artifacts; run any hour from there)\n"
        f"  collector         http://127.0.0.1:{settings.PORT}/deactivate  (healthz, readyz)\n"
        f"  dashboard         {local_stack.dashboard_url(settings)}  (log in with a key: "
        "`deact projects key create`)\n"
        f"{mail_line}"
        f"  MongoDB           {settings.MONGODB_URI}\n"
        f"  logs              {registry.logs_dir}/\n"
        f"  stop everything   make down\n"
    )


def _up_emulators(settings: Settings, registry, *, as_json: bool) -> int:
    """GCS and BigQuery emulators in the background, the bucket and the dataset made, settings printed."""
    from deactivation.mongo import free_port  # lazy: pymongo; keeps `deact --help` fast
    from deactivation.warehouse import open_warehouse  # lazy: pandas and pyarrow; keeps `deact --help` fast

    names = local_stack.EMULATOR_NAMES
    ports = local_stack.read_emulator_ports(settings)
    already = ports is not None and all(registry.running_pid(local_stack.Service(n, [])) for n in names)
    if not already:
        for name in names:  # one half running without the other: start both afresh
            registry.stop(local_stack.Service(name, []))
        chosen: set[int] = set()
        while len(chosen) < 3:
            chosen.add(free_port())
        ports = local_stack.EmulatorPorts(*sorted(chosen))
        for service in local_stack.emulator_services(settings, ports):
            if not as_json:
                print(f"starting {service.name}: log {registry.log_file(service.name)}", flush=True)
            process = registry.start(service, PROJECT_ROOT)
            try:
                local_stack.wait_for(service.ready_url, service.ready_timeout_s, process)
            except (RuntimeError, TimeoutError) as exc:
                raise ServiceUnavailable(
                    f"{service.name} did not start ({exc}); see {registry.log_file(service.name)}; "
                    "`make down` stops what did start"
                ) from exc
    environment = ports.environment()
    local_stack.create_bucket(environment["STORAGE_EMULATOR_HOST"], local_stack.EMULATOR_BUCKET)
    emulated = settings.model_copy(
        update={
            "WAREHOUSE_URL": environment["WAREHOUSE_URL"],
            "BIGQUERY_EMULATOR_HOST": f"http://{environment['BIGQUERY_EMULATOR_HOST']}",
        }
    )
    open_warehouse(emulated).ensure_tables()  # the dataset and every table
    env_file = local_stack.write_emulators_env(settings, ports)
    if as_json:
        print(json.dumps({"already_running": already, "settings": environment, "env_file": str(env_file)}))
        return 0
    exports = "\n".join(f"  export {name}={value}" for name, value in environment.items())
    print(
        f"\nThe emulators are {'already ' if already else ''}up: bucket {local_stack.EMULATOR_BUCKET} "
        f"and dataset {local_stack.EMULATOR_BIGQUERY_PROJECT}.{local_stack.EMULATOR_BIGQUERY_DATASET} "
        f"exist, data under {settings.DATA_DIR / 'emulators'}/.\n"
        f"Point every command at them (these lines are also in {env_file}):\n{exports}\n"
        f"Then, in that shell: `make demo`, or `make up` for the whole stack on them.\n"
        f"Stop them with `make down` (logs in {registry.logs_dir}/).\n"
        "MongoDB stays the local server: in production MONGODB_URI names your MongoDB."
    )
    return 0
