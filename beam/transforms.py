"""The pipeline's logic as composite transforms: no I/O here, only data in and data out.

A group of raw files of one hour is the unit of work (the collector writes many small files).
ParseEnvelopes turns a group into batches of envelopes (a few thousand records per element, so
Beam's per-element cost and the staging writes are paid per batch, not per event or file); every
later step maps a batch to a smaller batch and sends each record it rejects, with a typed reason,
to the tagged output ``dead_letters``. A record leaves the main path at its first problem, so every
record read ends up as exactly one valid event or exactly one dead letter, and no record, whatever
it holds, can raise out of a step (an unexpected error becomes that step's dead letter).

    RawFileGroup ─ParseEnvelopes─▶ DropErasedSites ─▶ ValidateProjects ─▶ ValidateReasons ─▶
                         │                │                  │                  │
                    unparseable         erased        unknown_project     invalid_reason

        ─▶ CleanSiteFields ─▶ DropDuplicates ─▶ ValidEvent batches ─▶ RequestMailSync
                  │                 │
            invalid_field       duplicate

The per-record logic lives in shaping.py (pure, tested without Beam); the steps here apply it with
one generic "check, count, tag" DoFn.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import zlib
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import apache_beam as beam
import orjson
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from beam.elements import (
    DEAD_LETTERS,
    METRICS_NAMESPACE,
    Batch,
    DeadLetter,
    ProjectRules,
    RawFileContent,
    ValidEvent,
)
from beam.shaping import (
    Mark,
    Source,
    first_of_each_event_id,
    first_of_each_resend,
    is_erased,
    mail_requests,
    mark_of,
    project_problem,
    reason_of,
    record_problem,
    shape_event,
)
from deactivation.dead_letters import DEAD_LETTER_TYPES, DeadLetterType
from deactivation.erasure import ErasureRegister
from deactivation.projects import normalise_hash
from deactivation.raw_store import split_records
from deactivation.redaction import redacted_envelope, redacted_text
from deactivation.settings import Settings
from deactivation.site_fields import FieldError

log = logging.getLogger(__name__)

DEFAULT_RECORDS_PER_BATCH = 2000
DEFAULT_DUPLICATE_WINDOW_MINUTES: int = Settings.model_fields["DUPLICATE_WINDOW_MINUTES"].default
#: Gen-0 threshold of the cyclic garbage collector on workers (CPython's default is 700).
GC_GEN0_THRESHOLD = 100_000
#: Groups per hour the duplicate checks shuffle marks into (each group is checked on one worker).
DUPLICATE_SHARDS = 16
_DUPLICATES = "duplicates"
#: ((raw_hour, shard), [Mark as a plain tuple]): what the duplicate checks shuffle.
_ShardOfMarks = tuple[tuple[str, int], list[tuple]]
#: The detail of an `erased` dead letter, which keeps nothing else of the record.
ERASED_DETAIL = "erased on request"


# --- The generic step: check, count, tag -------------------------------------------------------------
class Rejected(NamedTuple):
    """What a check returns for a record it rejects."""

    error_type: DeadLetterType
    detail: str
    project_hash: str | None = None
    keep_content: bool = True  # False: the dead letter keeps no envelope (an erased site)


#: A check: (item, raw_hour, *side inputs) → the item for the next step, or Rejected.
Check = Callable[..., Any]


def _stored_envelope(envelope: dict) -> str:
    """The envelope as a dead letter keeps it: personal fields redacted; "" if it cannot be written
    (nested deeper than orjson writes: the raw store keeps the original at raw_file/raw_line)."""
    try:
        return orjson.dumps(redacted_envelope(envelope)).decode()
    except (orjson.JSONEncodeError, TypeError):
        return ""


def _dead_letter(rejected: Rejected, raw_hour: str, source: Source, envelope: dict) -> DeadLetter:
    raw_file, raw_line = source
    return DeadLetter(
        error_type=rejected.error_type.value,
        detail=rejected.detail,
        raw_hour=raw_hour,
        raw_file=raw_file,
        raw_line=raw_line,
        raw_envelope=_stored_envelope(envelope) if rejected.keep_content else "",
        event_id=envelope["event_id"],
        project_hash=rejected.project_hash,
        received_at=envelope["received_at"],
    )


def _project_hash_of(item: tuple) -> str | None:
    return item[2].hash if len(item) > 2 and isinstance(item[2], ProjectRules) else None


class CheckEach(beam.DoFn):
    """Applies one check to every item of a batch (items start with source and envelope): keeps
    what the check returns, turns a Rejected into a typed dead letter on the tagged output, counts
    both. Any other exception is the last resort: the record becomes a dead letter of the step's
    own type naming only the exception's class, never an error that fails the bundle."""

    def __init__(self, check: Check, error_type: DeadLetterType) -> None:
        self.check = check
        self.error_type = error_type
        self.rejected = {
            kind: Metrics.counter(METRICS_NAMESPACE, f"dead_letters_{kind}") for kind in DEAD_LETTER_TYPES
        }

    def process(self, batch, *side_inputs):
        kept = []
        for item in batch.items:
            try:
                outcome = self.check(item, batch.raw_hour, *side_inputs)
            except Exception as error:  # the last resort: one record never fails an hour
                outcome = self._unexpected(item, error)
            if outcome.__class__ is Rejected:
                self.rejected[outcome.error_type.value].inc()
                yield pvalue.TaggedOutput(DEAD_LETTERS, _dead_letter(outcome, batch.raw_hour, *item[:2]))
            else:
                kept.append(outcome)
        if kept:
            yield batch._replace(items=kept)

    def _unexpected(self, item: tuple, error: Exception) -> Rejected:
        raw_file, raw_line = item[0]
        # The class only: an exception's message may quote the sender's text.
        log.warning("%s#%d: %s in %s", raw_file, raw_line, type(error).__name__, self.error_type.value)
        return Rejected(
            self.error_type,
            f"could not be read ({type(error).__name__})",
            _project_hash_of(item),
            # A record whose erasure check failed may be of an erased site: keep nothing of it.
            keep_content=self.error_type is not DeadLetterType.ERASED,
        )


def _checked(batches, check: Check, error_type: DeadLetterType, *side_inputs):
    """batches | CheckEach(check) with the tagged outputs `batches` and `dead_letters`."""
    step = beam.ParDo(CheckEach(check, error_type), *side_inputs).with_output_types(Batch)
    return batches | step.with_outputs(DEAD_LETTERS, main="batches")


# --- Step 1: parse envelopes -------------------------------------------------------------------------
def _batch_ids(first_raw_file: str) -> Iterator[str]:
    file_key = hashlib.sha1(first_raw_file.encode()).hexdigest()[:20]
    number = 0
    while True:
        yield f"{file_key}-{number:05d}"
        number += 1


def _parsed(text: bytes, raw_hour: str) -> tuple[Any, str | None]:
    """(envelope, None) or (None, why the record is no envelope of this hour)."""
    try:
        return record_problem(text, raw_hour)
    except Exception as error:  # the last resort: one record never fails an hour
        return None, f"could not be read ({type(error).__name__})"


class _ParseFileGroup(beam.DoFn):
    def __init__(self, records_per_batch: int) -> None:
        self.records_per_batch = records_per_batch
        self.records = Metrics.counter(METRICS_NAMESPACE, "records_read")
        self.rejected = Metrics.counter(METRICS_NAMESPACE, f"dead_letters_{DeadLetterType.UNPARSEABLE}")

    def setup(self) -> None:
        # A batch allocates hundreds of thousands of small dicts that stay alive until the bundle
        # ends, and the default threshold re-scans them thousands of times per file: ~40% of the
        # CPU, measured. They form no reference cycles, so the collector may run far less often.
        generation0, *older = gc.get_threshold()
        gc.set_threshold(max(generation0, GC_GEN0_THRESHOLD), *older)

    def process(self, group):
        batch_ids = _batch_ids(group.files[0].raw_file)
        raw_hour = group.raw_hour
        items: list[tuple[Source, dict]] = []
        read = 0
        for content in group.files:
            for raw_line, text in split_records(content.raw_file, content.data):
                read += 1
                envelope, problem = _parsed(text, raw_hour)
                if problem:
                    self.rejected.inc()
                    dead = self._unparseable(content, raw_line, text, problem)
                    yield pvalue.TaggedOutput(DEAD_LETTERS, dead)
                    continue
                items.append(((content.raw_file, raw_line), envelope))
                if len(items) == self.records_per_batch:
                    yield Batch(next(batch_ids), raw_hour, items)
                    items = []
        if items:
            yield Batch(next(batch_ids), raw_hour, items)
        self.records.inc(read)

    @staticmethod
    def _unparseable(content: RawFileContent, raw_line: int, text: bytes, problem: str) -> DeadLetter:
        return DeadLetter(
            error_type=DeadLetterType.UNPARSEABLE.value,
            detail=problem,
            raw_hour=content.raw_hour,
            raw_file=content.raw_file,
            raw_line=raw_line,
            raw_envelope=redacted_text(text),
        )


class ParseEnvelopes(beam.PTransform):
    """RawFileGroup → Batch of (source, envelope dict); bad records → `unparseable`."""

    def __init__(self, records_per_batch: int = DEFAULT_RECORDS_PER_BATCH) -> None:
        super().__init__()
        self.records_per_batch = records_per_batch

    def expand(self, files):
        parse = beam.ParDo(_ParseFileGroup(self.records_per_batch)).with_output_types(Batch)
        return files | parse.with_outputs(DEAD_LETTERS, main="batches")


# --- Step 2: drop erased sites -----------------------------------------------------------------------
def _check_erasure(item: tuple, raw_hour: str, erasures: ErasureRegister) -> Any:
    if not (erasures.site_keys or erasures.email_keys):
        return item  # nothing was ever erased: no hash to normalise
    _source, envelope = item
    body = envelope["body"]
    body_hash = body.get("hash")
    try:
        project_hash = normalise_hash(body_hash) if isinstance(body_hash, str) else None
    except ValueError:
        project_hash = None
    if project_hash and is_erased(body, project_hash, erasures):
        return Rejected(DeadLetterType.ERASED, ERASED_DETAIL, project_hash, keep_content=False)
    return item


class DropErasedSites(beam.PTransform):
    """Batch of (source, envelope) → the same without erased sites; → `erased`, without content.

    Checked before anything else reads the body, for registered and unregistered projects alike, so
    no later dead letter keeps an erased site's envelope either."""

    def __init__(self, erasures: pvalue.AsSingleton) -> None:
        super().__init__()
        self.erasures = erasures

    def expand(self, batches):
        return _checked(batches, _check_erasure, DeadLetterType.ERASED, self.erasures)


# --- Step 3: validate the project --------------------------------------------------------------------
def _check_project(item: tuple, raw_hour: str, registry: dict[str, ProjectRules]) -> Any:
    source, envelope = item
    project_hash, problem = project_problem(envelope["body"].get("hash"), registry)
    if problem:
        return Rejected(DeadLetterType.UNKNOWN_PROJECT, problem, project_hash)
    return source, envelope, registry[project_hash]


class ValidateProjects(beam.PTransform):
    """Batch of (source, envelope) → Batch of (source, envelope, ProjectRules); → `unknown_project`."""

    def __init__(self, registry: pvalue.AsSingleton) -> None:
        super().__init__()
        self.registry = registry

    def expand(self, batches):
        return _checked(batches, _check_project, DeadLetterType.UNKNOWN_PROJECT, self.registry)


# --- Step 4: validate the reason ---------------------------------------------------------------------
def _check_reason(item: tuple, raw_hour: str) -> Any:
    source, envelope, rules = item
    reason_id, problem = reason_of(envelope["body"], rules)
    if problem:
        return Rejected(DeadLetterType.INVALID_REASON, problem, rules.hash)
    return source, envelope, rules, reason_id


class ValidateReasons(beam.PTransform):
    """Batch of (source, envelope, rules) → Batch of (…, reason_id); → `invalid_reason`."""

    def expand(self, batches):
        return _checked(batches, _check_reason, DeadLetterType.INVALID_REASON)


# --- Step 5: clean and cast the site fields, shape the rows ------------------------------------------
def _check_fields(item: tuple, raw_hour: str) -> Any:
    source, envelope, rules, reason_id = item
    try:
        return source, shape_event(raw_hour, envelope, rules, reason_id)
    except FieldError as error:
        return Rejected(DeadLetterType.INVALID_FIELD, str(error), rules.hash)


class CleanSiteFields(beam.PTransform):
    """Batch of (source, envelope, rules, reason_id) → Batch of (source, ValidEvent); → `invalid_field`."""

    def expand(self, batches):
        return _checked(batches, _check_fields, DeadLetterType.INVALID_FIELD)


# --- Step 6: drop duplicates -------------------------------------------------------------------------
def _shard(text: str) -> int:
    return zlib.crc32(text.encode("utf-8", "surrogatepass")) % DUPLICATE_SHARDS


class _MarkEvents(beam.DoFn):
    """Batch of (source, ValidEvent) → ((raw_hour, shard of the event_id), [Mark as a plain tuple])."""

    def process(self, batch):
        shards: dict[int, list[tuple]] = {}
        for source, event in batch.items:
            mark = mark_of(source, event)
            shards.setdefault(_shard(mark.event_id), []).append(tuple(mark))
        for shard, marks in shards.items():
            yield (batch.raw_hour, shard), marks


class _FirstOfEachEventId(beam.DoFn):
    """Marks of one event_id shard → the kept ones keyed by the shard of their answer; the other
    copies → (source, detail) on the tagged output `duplicates`."""

    def process(self, element):
        (raw_hour, _shard_number), mark_lists = element
        kept, duplicates = first_of_each_event_id(Mark(*mark) for marks in mark_lists for mark in marks)
        for mark, (raw_file, raw_line) in duplicates:
            yield pvalue.TaggedOutput(_DUPLICATES, (mark.source, f"same event_id as {raw_file}#{raw_line}"))
        by_answer: dict[int, list[tuple]] = {}
        for mark in kept:
            by_answer.setdefault(_shard(mark.answer), []).append(tuple(mark))
        for shard, marks in by_answer.items():
            yield (raw_hour, shard), marks


class _FirstOfEachAnswer(beam.DoFn):
    """Marks of one answer shard → (source, detail) of each re-send within the window."""

    def __init__(self, window_minutes: int) -> None:
        self.window_minutes = window_minutes

    def process(self, element):
        _key, mark_lists = element
        marks = (Mark(*mark) for marks in mark_lists for mark in marks)
        _kept, duplicates = first_of_each_resend(marks, self.window_minutes)
        for mark, (raw_file, raw_line) in duplicates:
            yield mark.source, f"same answer within {self.window_minutes} minutes as {raw_file}#{raw_line}"


class _DropMarked(beam.DoFn):
    """Batch of (source, ValidEvent) → Batch of ValidEvent without the duplicates (same batch id);
    each duplicate → a `duplicate` dead letter naming the copy kept."""

    def __init__(self) -> None:
        self.valid = Metrics.counter(METRICS_NAMESPACE, "valid_events")
        self.rejected = Metrics.counter(METRICS_NAMESPACE, f"dead_letters_{DeadLetterType.DUPLICATE}")

    def process(self, batch, duplicates):
        kept = []
        for source, event in batch.items:
            detail = duplicates.get(source) if duplicates else None
            if detail is None:
                kept.append(event)
                continue
            self.rejected.inc()
            yield pvalue.TaggedOutput(DEAD_LETTERS, _duplicate(batch.raw_hour, source, event, detail))
        self.valid.inc(len(kept))
        if kept:
            yield batch._replace(items=kept)


def _duplicate(raw_hour: str, source: Source, event: ValidEvent, detail: str) -> DeadLetter:
    # No envelope: the copy kept is in history, and the raw store holds this one at its source.
    row = event.deactivation
    return DeadLetter(
        error_type=DeadLetterType.DUPLICATE.value,
        detail=detail,
        raw_hour=raw_hour,
        raw_file=source[0],
        raw_line=source[1],
        raw_envelope="",
        event_id=row["event_id"],
        project_hash=row["project_hash"],
        received_at=row["received_at"],
    )


class DropDuplicates(beam.PTransform):
    """Batch of (source, ValidEvent) → {'batches': Batches of ValidEvent with each event once,
    'dead_letters': a `duplicate` dead letter for every other copy}.

    Exact re-sends: the same event_id in the run (e.g. a raw file stored twice) counts once, the copy
    with the smallest (raw_file, raw_line) kept. Repeated answers: the same project + site + reason +
    free text within `window_minutes` of the last one kept, in the same hour, counts once.

    Only small marks (source, event_id, received_at, a digest of the answer) are shuffled, by
    event_id and then by answer, so the decisions do not depend on how bundles were cut; the
    events stay in their batches, which then drop what was decided (a side input as large as the
    run's duplicates).
    """

    def __init__(self, window_minutes: int) -> None:
        super().__init__()
        self.window_minutes = window_minutes

    def expand(self, batches):
        by_event_id = (
            batches
            | "MarkEvents" >> beam.ParDo(_MarkEvents()).with_output_types(_ShardOfMarks)
            | "GroupByEventId" >> beam.GroupByKey()
            | "FirstOfEachEventId"
            >> beam.ParDo(_FirstOfEachEventId())
            .with_output_types(_ShardOfMarks)
            .with_outputs(_DUPLICATES, main="kept")
        )
        duplicates = [by_event_id[_DUPLICATES]]
        if self.window_minutes > 0:
            duplicates.append(
                by_event_id.kept
                | "GroupByAnswer" >> beam.GroupByKey()
                | "FirstOfEachAnswer" >> beam.ParDo(_FirstOfEachAnswer(self.window_minutes))
            )
        marked = duplicates | "AllDuplicates" >> beam.Flatten()
        dropped = batches | "DropMarked" >> beam.ParDo(
            _DropMarked(), beam.pvalue.AsDict(marked)
        ).with_output_types(Batch).with_outputs(DEAD_LETTERS, main="batches")
        return {"batches": dropped.batches, DEAD_LETTERS: dropped.dead_letters}


# --- Mail-sync requests ------------------------------------------------------------------------------
class _RequestMailSync(beam.DoFn):
    def __init__(self) -> None:
        self.requested = Metrics.counter(METRICS_NAMESPACE, "mail_requests")

    def process(self, batch, registry):
        requests = []
        for event in batch.items:
            requests.extend(mail_requests(event, registry[event.deactivation["project_hash"]]))
        self.requested.inc(len(requests))
        if requests:
            yield batch._replace(items=requests)


class RequestMailSync(beam.PTransform):
    """Batch of ValidEvent → Batch of mail-outbox requests (projects with a mail integration)."""

    def __init__(self, registry: pvalue.AsSingleton) -> None:
        super().__init__()
        self.registry = registry

    def expand(self, batches):
        return batches | beam.ParDo(_RequestMailSync(), self.registry).with_output_types(Batch)


# --- The whole path ----------------------------------------------------------------------------------
class ProcessDeactivations(beam.PTransform):
    """RawFileGroups → {'events': Batches of ValidEvent,
    'mail_requests': Batches of outbox requests, 'dead_letters': DeadLetter}.

    `registry` is the AsSingleton side input of {hash: ProjectRules}, `erasures` that of the run's
    deactivation.erasure.ErasureRegister.
    """

    def __init__(
        self,
        registry: pvalue.AsSingleton,
        erasures: pvalue.AsSingleton,
        *,
        records_per_batch: int = DEFAULT_RECORDS_PER_BATCH,
        duplicate_window_minutes: int = DEFAULT_DUPLICATE_WINDOW_MINUTES,
    ):
        super().__init__()
        if not isinstance(erasures, pvalue.AsSideInput):
            raise TypeError("ProcessDeactivations(registry, erasures, ...): erasures must be a side input")
        self.registry = registry
        self.erasures = erasures
        self.records_per_batch = records_per_batch
        self.duplicate_window_minutes = duplicate_window_minutes

    def expand(self, files):
        parsed = files | "ParseEnvelopes" >> ParseEnvelopes(self.records_per_batch)
        kept = parsed.batches | "DropErasedSites" >> DropErasedSites(self.erasures)
        projects = kept.batches | "ValidateProjects" >> ValidateProjects(self.registry)
        reasons = projects.batches | "ValidateReasons" >> ValidateReasons()
        shaped = reasons.batches | "CleanSiteFields" >> CleanSiteFields()
        unique = shaped.batches | "DropDuplicates" >> DropDuplicates(self.duplicate_window_minutes)
        events = unique["batches"]
        dead_letters = (
            parsed.dead_letters,
            kept.dead_letters,
            projects.dead_letters,
            reasons.dead_letters,
            shaped.dead_letters,
            unique[DEAD_LETTERS],
        ) | "AllDeadLetters" >> beam.Flatten()
        return {
            "events": events,
            "mail_requests": events | "RequestMailSync" >> RequestMailSync(self.registry),
            DEAD_LETTERS: dead_letters,
        }
