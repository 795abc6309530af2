"""The elements that travel through the pipeline, and the coder of the bulky ones.

Everything here is plain data: the transforms (transforms.py) move these between steps, the edges
(io.py) read and write them, and the row shaping (shaping.py) builds them.
"""

from __future__ import annotations

import pickle
import uuid
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import apache_beam as beam

from deactivation.projects import Project
from deactivation.reasons import THEME_SWITCH

#: The tagged output every rejected record leaves through.
DEAD_LETTERS = "dead_letters"
#: Namespace of every Beam counter the pipeline keeps (the driver reads them back for its summary).
METRICS_NAMESPACE = "deactivation"

_ERROR_ID_NAMESPACE = uuid.UUID("6f1d8c1e-3b0a-4c4e-9a57-5d2f0f3d9b11")

ContactPolicy = Literal["keep", "only_if_tracking_allowed", "drop"]


class RawFileContent(NamedTuple):
    """One raw file as read at the pipeline's edge."""

    raw_hour: str  # the hour folder, YYYY-MM-DDTHH
    raw_file: str  # path relative to RAW_STORE_URL
    data: bytes


class RawFileGroup(NamedTuple):
    """Raw files of one hour read as one element."""

    raw_hour: str
    files: list[RawFileContent]


class Batch(NamedTuple):
    """Records of one hour that travel together; each item starts with its source (raw_file,
    raw_line). batch_id is deterministic (first file of the group + position, or hour + shard after
    the duplicate check), so a retried bundle rewrites the same staging file instead of adding one."""

    batch_id: str
    raw_hour: str
    items: list


class BulkCoder(beam.coders.Coder):
    """Pickles like Beam's fallback coder, but estimates an element's size without pickling it.

    Beam samples element sizes for its metrics by encoding elements; for multi-megabyte groups and
    batches that cost about a third of the pipeline's CPU (measured), for a number nobody reads.
    """

    def encode(self, value: Any) -> bytes:
        return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)

    def decode(self, encoded: bytes) -> Any:
        return pickle.loads(encoded)

    def is_deterministic(self) -> bool:
        return False

    def estimate_size(self, value: Any) -> int:
        return 1024 * len(value[-1])  # a rough kilobyte per record or file


beam.coders.registry.register_coder(RawFileGroup, BulkCoder)
beam.coders.registry.register_coder(Batch, BulkCoder)


def hour_timestamp(raw_hour: str) -> str:
    """YYYY-MM-DDTHH → the envelope timestamp format, so every timestamp column casts alike."""
    return f"{raw_hour}:00:00.000000Z"


class DeadLetter(NamedTuple):
    error_type: str
    detail: str
    raw_hour: str
    raw_file: str
    raw_line: int
    raw_envelope: str
    event_id: str | None = None
    project_hash: str | None = None
    received_at: str | None = None

    @property
    def error_id(self) -> str:
        """The same bad record gives the same id on every run (one dead letter per file line)."""
        return str(uuid.uuid5(_ERROR_ID_NAMESPACE, f"{self.raw_file}#{self.raw_line}"))

    def to_row(self) -> dict[str, Any]:
        return {
            "error_id": self.error_id,
            "raw_hour": hour_timestamp(self.raw_hour),
            "error_type": self.error_type,
            "detail": self.detail,
            "raw_file": self.raw_file,
            "raw_line": self.raw_line,
            "event_id": self.event_id,
            "project_hash": self.project_hash,
            "received_at": self.received_at,
            "raw_envelope": self.raw_envelope,
        }


class ValidEvent(NamedTuple):
    """A record that passed every check: its warehouse rows and the admin contact (MongoDB only;
    None when the body has none or the project's contact policy drops it)."""

    deactivation: dict[str, Any]
    site: dict[str, Any]
    contact: dict[str, str] | None


@dataclass(frozen=True)
class ProjectRules:
    """What the pipeline needs of a registered project (the side input, built once per run)."""

    hash: str
    kind: str
    reasons: dict[str, str]  # every valid reason id → label
    custom_fields: tuple[str, ...]
    mail_lists: tuple[tuple[str, str], ...]  # (provider, list_id)
    contact_policy: ContactPolicy = "keep"

    @classmethod
    def from_project(cls, project: Project) -> ProjectRules:
        reasons = dict(project.reasons)
        if project.kind != "theme":
            reasons.pop(THEME_SWITCH)  # only a theme switch may carry no reason
        return cls(
            hash=project.hash,
            kind=project.kind,
            reasons=reasons,
            custom_fields=tuple(project.custom_fields),
            mail_lists=tuple((m.provider, m.list_id) for m in project.mail_integrations),
            contact_policy=project.contact_policy,
        )


def registry_rules(registry: dict[str, Project]) -> dict[str, ProjectRules]:
    return {project_hash: ProjectRules.from_project(p) for project_hash, p in registry.items()}
