"""`deact` subcommands: each module here defines `register(subparsers)`; the CLI finds them all.

Modules import heavy dependencies (Beam, Prefect, Flask) inside their handlers so that
`deact --help` stays fast.
"""
