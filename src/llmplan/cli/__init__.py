"""The `llmplan` command line: a thin layer over :mod:`llmplan.api`.

Every command takes ``--json``. Errors the user can fix print one line on stderr and
exit with code 2; nothing prints a traceback (set ``LLMPLAN_DEBUG=1`` to see one).
"""

from __future__ import annotations

import os
import sys

import typer

from ..errors import LlmplanError
from . import catalog_cmd, cost_cmd, fit_cmd, perf_cmd, plan_cmd, serve_cmd, web_cmd

app = typer.Typer(
    name="llmplan",
    help="Plan self-hosted LLM deployments: memory, speed, serving, cost and policy — offline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
fit_cmd.register(app)
catalog_cmd.register(app)
perf_cmd.register(app)
serve_cmd.register(app)
cost_cmd.register(app)
plan_cmd.register(app)
web_cmd.register(app)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"llmplan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """llmplan answers: does it fit, how fast, how much hardware, what it costs, is it allowed."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv) or ["--help"]
    try:
        app(args=argv, prog_name="llmplan", standalone_mode=False)
    except LlmplanError as exc:
        print(f"error: {_message(exc)}", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):  # a usage error from the option parser
            hint = ""
            ctx = getattr(exc, "ctx", None)
            if ctx is not None:
                hint = f" (see `{ctx.command_path} --help`)"
            message = exc.format_message()
            if message:
                print(f"error: {message}{hint}", file=sys.stderr)
            return 2
        if os.environ.get("LLMPLAN_DEBUG"):  # a bug: one line, not a traceback, unless asked
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (set LLMPLAN_DEBUG=1 for details)", file=sys.stderr)
        return 1
    return 0


def _message(exc: LlmplanError) -> str:
    """The one line for a user error; an unknown model that is a closed API model says so."""
    from ..errors import UnknownIdError

    if isinstance(exc, UnknownIdError):
        from .hints import closed_model

        try:
            return closed_model(exc) or str(exc)
        except LlmplanError:  # the catalog itself is broken: the original message
            return str(exc)
    return str(exc)


def entry() -> None:
    sys.exit(main())
