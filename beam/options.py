"""Command-line options of the deactivation pipeline (beyond Beam's own runner options)."""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from beam.transforms import DEFAULT_RECORDS_PER_BATCH


class DeactivationOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        parser.add_argument(
            "--records_per_batch",
            type=int,
            default=DEFAULT_RECORDS_PER_BATCH,
            help="Records that travel together as one element (Beam's per-element cost is paid per batch).",
        )
        parser.add_argument(
            "--rows_staging_location",
            default=None,
            help="Directory (local or gs://) where rows wait for the one warehouse load after the run. "
            "Default: DATA_DIR/staging locally, <temp_location>/deactivation-staging on Dataflow.",
        )
