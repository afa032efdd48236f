"""The `balr` command. Also runnable as a script/module for torchrun:

torchrun --nproc_per_node 2 -m balr.cli.main train TRAIN VAL --device cuda:0,1
"""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console

from balr import __version__
from balr.errors import BalrError

INTERRUPTED_STATUS = 130  # 128 + SIGINT, as shells report Ctrl-C

app = typer.Typer(
    name="balr",
    help="Explainable speaker recognition: embeddings -> binary attributes -> likelihood ratios.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"balr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _register_commands() -> None:
    """Each command module exposes `register(app)`; the order here is the order in --help."""
    from balr.cli import commands  # noqa: F401  (imports every command module)

    for module in commands.MODULES:
        module.register(app)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point: user-facing errors become one line on stderr and exit status 1."""
    try:
        app(args=argv, prog_name="balr")
    except BalrError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except SystemExit as exc:
        interrupt = _keyboard_interrupt(exc)
        if interrupt is None:
            raise
        message = str(interrupt) or "interrupted (Ctrl-C); files written so far are complete"
        Console(stderr=True).print(message, highlight=False, soft_wrap=True)
        sys.exit(INTERRUPTED_STATUS)


def _keyboard_interrupt(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C behind an exit (Typer turns KeyboardInterrupt into a silent exit 130)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


if __name__ == "__main__":
    main()
