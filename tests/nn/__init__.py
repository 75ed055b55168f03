"""Tests for keydnn.infrastructure.nn (layers, containers, models, losses)."""
