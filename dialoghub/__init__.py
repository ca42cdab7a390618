"""dialoghub: Hub-centric datasets, adapters and evaluation for customer-support dialogue AI."""

__version__ = "0.1.0"
