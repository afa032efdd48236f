"""The `balr` command. Also runnable as a module or script for torchrun (the reference's
`balr/cli/main.py` is `src/balr/cli/main.py` in a checkout):

torchrun --nproc_per_node 2 -m balr.cli.main train TRAIN VAL --device cuda:0,1
torchrun --nproc_per_node 2 src/balr/cli/main.py train TRAIN VAL --device cuda:0,1
"""

from __future__ import annotations

import logging
import os
import sys

import typer
from rich.console import Console
from rich.markup import escape

from balr import __version__
from balr.distributed import launched_by_torchrun
from balr.errors import BalrError

INTERRUPTED_STATUS = 130  # 128 + SIGINT, as shells report Ctrl-C

app = typer.Typer(
    name="balr",
    help="Explainable speaker recognition: embeddings -> binary attributes -> likelihood ratios.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion, --show-completion, as the reference
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"balr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
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


def cli_command() -> typer.core.TyperGroup:
    """The Click command of `app`, with on/off flags shown as plain flags in `--help`
    (Typer's rich help would print a `<bool>` value after them, which they do not take)."""
    command = typer.main.get_command(app)
    _plain_flags(command)
    return command


def _plain_flags(command) -> None:
    """Give every flag of `command` and its sub-commands (`--help` too) an empty metavar."""
    help_option = command.get_help_option(command.context_class(command))
    for param in [*command.params, help_option]:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _plain_flags(sub)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user-facing errors become one line on stderr and exit status 1.

    A torchrun worker leaves through `os._exit` once its command is over (the process group
    is already destroyed, every file closed): the interpreter's teardown would also destroy
    torch's communication objects, and on a loaded machine that can abort a worker whose run
    succeeded (SIGABRT, "terminate called without an active exception"), failing the job.
    """
    if not launched_by_torchrun():
        _run(argv)
        return
    try:
        _run(argv)
        status = 0
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    _exit_now(status)


def _exit_now(status: int) -> None:
    """Flush what was printed or logged, then end the process without interpreter teardown."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _run(argv: list[str] | None) -> None:
    try:
        cli_command()(args=argv, prog_name="balr")
    except BalrError as exc:
        Console(stderr=True).print(
            f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
        )
        sys.exit(1)
    except SystemExit as exc:
        interrupt = _keyboard_interrupt(exc)
        if interrupt is None:
            raise
        message = str(interrupt) or "interrupted (Ctrl-C); files written so far are complete"
        Console(stderr=True).print(escape(message), highlight=False, soft_wrap=True)
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
