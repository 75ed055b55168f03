"""Registry entries, one module per op family group; ``registry.all_specs()`` imports them."""
