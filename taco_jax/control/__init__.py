"""Adaptive training controllers (optax protocol: factories returning init/update, NamedTuple states)."""
