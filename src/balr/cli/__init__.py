"""Typer commands: thin wrappers that compose a config and call the library."""
