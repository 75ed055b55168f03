"""Seed-compatible import paths (re-exports only)."""
