"""The command group: global options and the error policy of every command.

Every failure ends as one line on stderr and a non-zero exit code (1 for errors, 2 for
usage errors), with any password of a URL given on the command line or found in the
environment (``$TRACKPLUG_URL``, and whatever variables a backend reads its store from)
replaced by ``***``. Libraries' INFO log lines (MLflow's) are not
shown. ``trackplug --debug`` (or ``TRACKPLUG_DEBUG=1``) shows them, and lets unexpected
exceptions through with their traceback.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

import click

from .._errors import TrackplugError
from .._urls import MIN_BARE_SECRET, scrub_chain, secrets_of
from ._commands import COMMANDS

__all__ = ["Session", "cli", "main"]

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # the shell's code for SIGINT
#: Longest error line printed; ``--debug`` shows everything.
MAX_MESSAGE = 500
#: Passwords shorter than this are not searched for bare in messages (they would match anywhere).
MIN_SECRET = MIN_BARE_SECRET
_URL = re.compile(r"[A-Za-z][\w+.-]*://\S+")


@dataclass
class Session:
    """What the error policy needs to know about one run of the command."""

    debug: bool = False
    #: ``{text that must not be printed: what to print instead}``, longest first.
    secrets: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: Sequence[str]) -> Session:
        found: dict[str, str] = {}
        # Every variable: a backend may read its store's URL from one of its own (e.g.
        # MLflow's), which the core does not know by name.
        for text in [*args, *os.environ.values()]:
            for url in _URL.findall(text):
                found.update(secrets_of(url, MIN_SECRET))
        ordered = sorted(found.items(), key=lambda item: -len(item[0]))
        return cls(secrets=dict(ordered))

    def scrub(self, text: str) -> str:
        """``text`` on one line, without any secret, at most :data:`MAX_MESSAGE` long."""
        for secret, replacement in self.secrets.items():
            text = text.replace(secret, replacement)
        line = " ".join(text.split())
        return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 1] + "…"


class TrackplugGroup(click.Group):
    """A click group whose ``main`` applies the one-line error policy."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        session = Session.from_args(argv)
        extra.setdefault("obj", session)

        def run() -> Any:
            return super(TrackplugGroup, self).main(
                argv, prog_name, complete_var, standalone_mode=False, **extra
            )

        if not standalone_mode:  # the caller handles exceptions itself
            return run()
        sys.exit(run_with_policy(run, session))


def run_with_policy(run: Callable[[], Any], session: Session) -> int:
    """Run the command; return its exit code after printing any error as one line."""
    with warnings.catch_warnings():
        warnings.showwarning = _warning_printer(session)
        try:
            result = run()
        except click.UsageError as exc:
            _error(session, f"{exc.format_message().rstrip('.')} ({_usage(exc.ctx)})")
            return exc.exit_code
        except click.ClickException as exc:
            _error(session, exc.format_message())
            return exc.exit_code
        except click.Abort as exc:
            _error(session, "aborted")
            return EXIT_INTERRUPTED if isinstance(exc.__cause__, KeyboardInterrupt) else EXIT_ERROR
        except Exception as exc:
            if session.debug:  # the traceback, every exception of its chain scrubbed
                scrub_chain(exc, session.secrets)
                raise
            _error(session, describe(exc))
            return EXIT_ERROR
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def describe(exc: BaseException) -> str:
    """An exception as a user reads it: trackplug's own errors say it all."""
    if isinstance(exc, TrackplugError):  # its message names what failed, and why
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return (
        f"unexpected {type(exc).__name__}: {exc} (run 'trackplug --debug …' to see the traceback)"
    )


def _usage(ctx: click.Context | None) -> str:
    if ctx is None:
        return "see 'trackplug --help'"
    pieces = " ".join([ctx.command_path, *ctx.command.collect_usage_pieces(ctx)])
    return f"usage: {pieces}; see '{ctx.command_path} --help'"


def _error(session: Session, message: str) -> None:
    click.echo(f"Error: {session.scrub(message)}", err=True)


def _warning_printer(session: Session) -> Callable[..., None]:
    def show(message: Warning | str, category: type[Warning], *args: object, **_: object) -> None:
        click.echo(f"Warning: {session.scrub(str(message))}", err=True)

    return show


def _set_debug(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    if value and isinstance(ctx.obj, Session):
        ctx.obj.debug = True


@click.group(
    name="trackplug",
    cls=TrackplugGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--debug",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    envvar="TRACKPLUG_DEBUG",
    callback=_set_debug,
    help="Show the traceback of unexpected errors, and libraries' INFO log lines.",
)
@click.version_option(package_name="trackplug", prog_name="trackplug")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """trackplug: log metrics from ML code to any backend, then look at them.

    A store is a URL: memory://, sqlite:///runs.db, postgresql://user:pw@host/db,
    mlflow+http://host:5000 … (see 'trackplug backends'). Every reading command may leave
    its URL out (one is recognised by its scheme://): it defaults to $TRACKPLUG_URL, else
    sqlite:///trackplug.db.

    \b
    Example:
      trackplug demo                  # simulate a training run into the default store
      trackplug ls                    # what is in it
      trackplug plot sqlite:///trackplug.db valid_loss -o loss.png
    """
    if not (isinstance(ctx.obj, Session) and ctx.obj.debug):
        ctx.with_resource(_quiet_logging())


@contextmanager
def _quiet_logging() -> Iterator[None]:
    """No INFO or DEBUG log lines while a command runs: libraries that backends use talk
    at INFO (MLflow announces creating its tables, alembic its migrations) and would bury
    the command's own output. ``--debug`` lets them through."""
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        yield
    finally:
        logging.disable(previous)


for _command in COMMANDS:
    cli.add_command(_command)


def main(args: Sequence[str] | None = None) -> NoReturn:
    """The ``trackplug`` console script."""
    cli.main(args, prog_name="trackplug")
    raise AssertionError("unreachable: main() exits")  # pragma: no cover
