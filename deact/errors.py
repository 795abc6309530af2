"""What the `deact` command says when something goes wrong: one line and an exit code, no traceback.

Commands raise `CommandError` (bad input) or `ServiceUnavailable` (a store or service that does not
answer). Everything else the library and the apps raise is turned into a line here, in one place
(`explain`), so every command reports a missing MongoDB, a locked warehouse or a bad hour the same
way; `deact --debug ...` adds the traceback.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator

from deactivation.settings import get_settings

#: The exit codes of every `deact` command (also listed in `deact --help` and docs/operations.md).
EXIT_OK = 0
#: A run failed: a Beam job, a verification, or an unexpected error (`--debug` shows where).
EXIT_FAILED = 1
#: Bad arguments or input: nothing was started and nothing was written.
EXIT_USAGE = 2
#: A store or service does not answer or cannot be used: MongoDB, the warehouse, the raw store, Prefect.
EXIT_UNAVAILABLE = 3
#: Interrupted (Ctrl-C).
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = (
    "exit codes:\n"
    f"  {EXIT_OK}    done\n"
    f"  {EXIT_FAILED}    a run failed (or an unexpected error: add --debug for the traceback)\n"
    f"  {EXIT_USAGE}    bad arguments or input; nothing was started or written\n"
    f"  {EXIT_UNAVAILABLE}    a store or service is unavailable: MongoDB, warehouse, raw store, Prefect API\n"
    f"  {EXIT_INTERRUPTED}  interrupted"
)


class CommandError(Exception):
    """A user-facing error: printed as one line, no traceback."""

    exit_code = EXIT_USAGE


class ServiceUnavailable(CommandError):
    """A store or service the command needs does not answer or cannot be used."""

    exit_code = EXIT_UNAVAILABLE


class RunFailed(CommandError):
    """Something the command ran failed (a subprocess, a send); the message says where to look."""

    exit_code = EXIT_FAILED


def without_credentials(url: str) -> str:
    """`mongodb://user:secret@host` → `mongodb://***@host`: URLs in messages never carry a password."""
    return re.sub(r"//[^/@]*@", "//***@", url)


def mongo_unreachable(uri: str) -> str:
    local = re.search(r"//(?:[^/@]*@)?(127\.0\.0\.1|localhost)[:/]", uri) is not None
    how = (
        "start it with `make up` (the whole local stack) or `deact mongo serve`"
        if local
        else "check MONGODB_URI and that the server is reachable from here"
    )
    return f"MongoDB at {without_credentials(uri)} does not answer: {how}"


def explain(exc: BaseException) -> tuple[str, int]:
    """The one line and exit code for an exception raised by a command.

    A CommandError says it all; otherwise the deepest known cause wins (a flow's "pipeline failed"
    wrapping an unreachable MongoDB is reported as the unreachable MongoDB).
    """
    if isinstance(exc, CommandError):
        return _command_error(exc)
    for link in reversed(list(_chain(exc))):
        for cls in type(link).__mro__:
            explainer = _EXPLAINERS.get(f"{cls.__module__}.{cls.__qualname__}")
            if explainer is not None:
                found = explainer(link)
                if found is not None:
                    return found
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}", EXIT_UNAVAILABLE
    return (
        f"unexpected {type(exc).__name__}: {_first_line(exc)} (run again with --debug for the traceback)",
        EXIT_FAILED,
    )


def validation_messages(exc: BaseException) -> str:
    """pydantic's errors as one line, without its "Value error," prefixes."""
    try:
        errors = exc.errors()  # type: ignore[attr-defined]
    except Exception:
        return _strip_pydantic_prefix(_first_line(exc))
    parts = []
    for error in errors:
        where = ".".join(str(part) for part in error.get("loc", ()))
        message = _strip_pydantic_prefix(str(error.get("msg", "")))
        parts.append(f"{where}: {message}" if where and error.get("type") != "value_error" else message)
    return "; ".join(parts)


def _strip_pydantic_prefix(message: str) -> str:
    return re.sub(r"^(Value error|Assertion failed), ", "", message)


#: A message longer than this is cut (some libraries put a page into one line).
MAX_MESSAGE_CHARS = 400


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= MAX_MESSAGE_CHARS else line[: MAX_MESSAGE_CHARS - 1] + "…"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then what caused it (libraries wrap the error that says what happened)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        # As Python prints it: the explicit cause, else the exception being handled (unless `from None`).
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)


def _command_error(exc: BaseException) -> tuple[str, int]:
    return _first_line(exc), getattr(exc, "exit_code", EXIT_USAGE)


def _mongo(exc: BaseException) -> tuple[str, int]:
    return mongo_unreachable(get_settings().MONGODB_URI), EXIT_UNAVAILABLE


def _mongo_configuration(exc: BaseException) -> tuple[str, int]:
    return f"MONGODB_URI cannot be used: {_first_line(exc)}", EXIT_UNAVAILABLE


def _warehouse(exc: BaseException) -> tuple[str, int]:
    message = _first_line(exc)
    locked = re.search(r"lock on file \"?([^\"]+?)\"?:.*?\(PID (\d+)\)", str(exc), re.S)
    if locked:
        return (
            f"the warehouse {locked.group(1)} is in use by another process (PID {locked.group(2)}): "
            "wait for it to finish (a pipeline or analytics run, a notebook kernel) and try again",
            EXIT_UNAVAILABLE,
        )
    if "lock" in message.lower():
        return f"the warehouse is in use by another process: {message}", EXIT_UNAVAILABLE
    unavailable = ("cannot open", "cannot reach", "no Google Cloud credentials", "does not exist")
    return message, EXIT_UNAVAILABLE if any(word in message for word in unavailable) else EXIT_FAILED


def _raw_store(exc: BaseException) -> tuple[str, int]:
    url = without_credentials(get_settings().RAW_STORE_URL)
    return f"the raw store {url} cannot be used: {_first_line(exc)} (RAW_STORE_URL)", EXIT_UNAVAILABLE


def _validation(exc: BaseException) -> tuple[str, int]:
    return validation_messages(exc), EXIT_USAGE


def _usage(exc: BaseException) -> tuple[str, int]:
    return _strip_pydantic_prefix(_first_line(exc)), EXIT_USAGE


def _run_failed(exc: BaseException) -> tuple[str, int]:
    return _first_line(exc), EXIT_FAILED


def _prefect_unreachable(exc: BaseException) -> tuple[str, int] | None:
    message = _first_line(exc)
    api = os.environ.get("PREFECT_API_URL", "")
    if isinstance(exc, RuntimeError) and "Failed to reach API" not in message:
        return None
    if not isinstance(exc, RuntimeError):  # an httpx.ConnectError: was it the Prefect API?
        try:
            url = str(exc.request.url)  # type: ignore[attr-defined]
        except RuntimeError:
            url = ""
        if not api or not url.startswith(api.removesuffix("/api")):
            return f"cannot connect to {without_credentials(url) or 'a service'}: {message}", EXIT_UNAVAILABLE
    where = without_credentials(api) if api else "the temporary Prefect server"
    return (
        f"the Prefect API at {where} does not answer: start the local stack with `make up`, "
        "or unset PREFECT_API_URL to use a temporary server",
        EXIT_UNAVAILABLE,
    )


_EXPLAINERS: dict[str, Callable[[BaseException], tuple[str, int] | None]] = {
    "deact.errors.CommandError": _command_error,
    "pymongo.errors.ConnectionFailure": _mongo,
    "pymongo.errors.ConfigurationError": _mongo_configuration,
    "deactivation.warehouse.WarehouseError": _warehouse,
    "deactivation.raw_store.RawStoreError": _raw_store,
    "deactivation.hours.HourError": _usage,
    "deactivation.projects.ProjectError": _usage,
    "pydantic_core._pydantic_core.ValidationError": _validation,
    "prefect.exceptions.ParameterTypeError": _usage,
    "beam.pipeline.PipelineError": _run_failed,
    "beam.hour_lock.HoursLockedError": _run_failed,
    "flows.tasks.PipelineRunError": _run_failed,
    "flows.tasks.VerificationError": _run_failed,
    "httpx.ConnectError": _prefect_unreachable,
    "builtins.RuntimeError": _prefect_unreachable,
}
