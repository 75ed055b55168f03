"""Seed import path: losses (Function-style names and Modules)."""

from keydnn.infrastructure.losses import *  # noqa: F401,F403
