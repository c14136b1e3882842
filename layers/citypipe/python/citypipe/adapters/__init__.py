"""Adapters: one per backend of each port, named for the backend."""
