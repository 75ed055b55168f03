"""Seed import path: WeightInitializer and its registry helpers."""

from keydnn.infrastructure.initializers import *  # noqa: F401,F403
