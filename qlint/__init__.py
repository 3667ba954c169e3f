"""qlint: a linter for background-task code and its deployment manifests."""

__version__ = "0.1.0"
