"""Op families: each module holds Functions (forward + backward through a kernel table) and their
functional wrappers; ``keydnn.infrastructure.ops.specs`` registers them for the generic tests."""
