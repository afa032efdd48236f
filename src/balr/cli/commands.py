"""The list of command modules; each has `register(app: typer.Typer) -> None`."""

MODULES: list = []
