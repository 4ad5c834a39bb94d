"""`pigeon`: everything an operator does, on the same settings and services as the server."""

from __future__ import annotations

import asyncio
import getpass
import logging.config
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pigeon.core.db import Database, Databases
from pigeon.core.errors import AppError
from pigeon.core.runtime import Runtime
from pigeon.media.storage import open_store
from pigeon.settings import get_settings

if TYPE_CHECKING:
    from pigeon.core.migrate import Said

app = typer.Typer(
    help="Pigeon: community messaging server.", no_args_is_help=True, pretty_exceptions_enable=False
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
admin_app = typer.Typer(help="Administrators.", no_args_is_help=True)
users_app = typer.Typer(help="Users: tiers and roles.", no_args_is_help=True)
messaging_app = typer.Typer(help="The messaging switch.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")
app.add_typer(users_app, name="users")
app.add_typer(messaging_app, name="messaging")

console = Console()
err = Console(stderr=True)
T = TypeVar("T")


def actor_label() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


def run(fn: Callable[[Runtime], Awaitable[T]]) -> T:
    """Run an async operation against both databases (upgraded first), with clean errors.

    Changes are announced like the server's (through Redis when configured), so running
    servers forget what they cached about them at once.
    """
    settings = get_settings()

    async def main() -> T:
        from pigeon.app import make_broker
        from pigeon.core import migrate

        dbs = Databases(settings.app_db_url, settings.messaging_db_url)
        broker = make_broker(settings)
        rt = Runtime(settings, dbs, broker, open_store(settings))
        try:
            await migrate.upgrade_databases(dbs)
            await broker.start()
            await rt.stream.start()
            return await fn(rt)
        finally:
            await broker.stop()
            await rt.close()
            await dbs.dispose()

    try:
        return asyncio.run(main())
    except migrate_errors() as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    except AppError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None
    except OSError as exc:
        err.print(f"[red]error:[/red] cannot reach the database: {exc}")
        raise typer.Exit(1) from None


def migrate_errors() -> type[Exception]:
    from pigeon.core.migrate import SchemaTooNew

    return SchemaTooNew


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
) -> None:
    """Run the server. It upgrades the schema but never adds data."""
    from pigeon.server import server_log_config

    settings = get_settings()
    logging.config.dictConfig(server_log_config(settings.log_format, settings.log_level))
    log = logging.getLogger("pigeon")
    # the upgrade runs here, so that the server finds both databases at their heads and never
    # loads Alembic (see pigeon.core.migrate); what it changed is told in the server's log,
    # where the server then says where each database stands
    for name, what in _upgraded(lambda m: log.error("cannot start: %s", m)).items():
        if what.changed:
            log.info("%s database: %s", name, what)
    env = dict(os.environ)
    if host:
        env["PIGEON_HOST"] = host
    if port:
        env["PIGEON_PORT"] = str(port)
    # the server becomes a process of its own image (the same process id, for whoever
    # started it), without the command line's libraries: see pigeon.server
    os.execve(sys.executable, [sys.executable, "-m", "pigeon.server"], env)


@db_app.command("upgrade")
def db_upgrade(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show what would run; change nothing")
    ] = False,
) -> None:
    """Create or upgrade the databases to the latest schema (the messaging one once it exists
    or messaging is on), and say what was done to each."""
    if dry_run:
        _upgrade_plan()
        return
    for name, what in _upgraded(lambda m: err.print(f"[red]error:[/red] {escape(m)}")).items():
        console.print(f"{name}: {escape(what.text)}")


def _upgraded(fail: Callable[[str], None]) -> dict[str, Said]:
    """Both databases upgraded as `db upgrade` does; what was done to each. A failure is
    told to `fail` and ends the command."""
    from pigeon.core import migrate

    settings = get_settings()

    async def go() -> dict[str, Said]:
        dbs = Databases(settings.app_db_url, settings.messaging_db_url)
        try:
            return await migrate.upgrade_databases(dbs)
        finally:
            await dbs.dispose()

    try:
        return asyncio.run(go())
    except migrate_errors() as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot reach the database: {exc}")
    raise typer.Exit(1)


def _upgrade_plan() -> None:
    """What `db upgrade` would do to each database, read without creating or changing one."""
    from sqlalchemy.engine import make_url

    from pigeon.core import migrate

    settings = get_settings()

    def missing(url: str) -> bool:
        parsed = make_url(url)
        return parsed.drivername.startswith("sqlite") and not Path(parsed.database or "").exists()

    # read before anything is opened: opening a SQLite database creates its file
    absent = {"app": missing(settings.app_db_url), "messaging": missing(settings.messaging_db_url)}

    async def current(name: str, url: str) -> str | None:
        db = Database(url, name=name)
        try:
            return (await migrate.status(db))[0]
        finally:
            await db.dispose()

    async def go() -> None:
        for name, url in (("app", settings.app_db_url), ("messaging", settings.messaging_db_url)):
            at = None if absent[name] else await current(name, url)
            steps = migrate.pending(name, at)
            where = "would be created" if absent[name] else f"at {at or 'no schema yet'}"
            console.print(f"{name}: {where}; {len(steps) or 'no'} migrations to run")
            for revision, doc in steps:
                console.print(f"  {revision}  {escape(doc)}")

    try:
        asyncio.run(go())
    except migrate_errors() as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None


@admin_app.command("create")
def admin_create(
    email: Annotated[str | None, typer.Option(help="the admin's email")] = None,
    username: Annotated[str | None, typer.Option(help="the admin's username")] = None,
    password: Annotated[str | None, typer.Option(help="prompted for when left out")] = None,
) -> None:
    """Create an administrator (the only way to the first admin)."""
    from pydantic import ValidationError

    from pigeon.auth.schemas import RegisterIn

    email = email or typer.prompt("Email")
    username = username or typer.prompt("Username")
    password = password or typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        RegisterIn(email=email, username=username, password=password)
    except ValidationError as exc:
        for e in exc.errors():
            err.print(f"[red]error:[/red] {'.'.join(map(str, e['loc']))}: {e['msg']}")
        raise typer.Exit(1) from None

    async def go(rt: Runtime) -> Any:
        from pigeon.accounts import service as accounts
        from pigeon.core.audit import audit

        async with rt.uow_scope() as uow:
            user = await accounts.create_user(
                uow,
                email=email,
                username=username,
                password=password,
                passwords=rt.passwords,
                tier="privileged_plus",
                role="admin",
                settings=rt.settings,
                email_verified=True,  # the operator vouches for it at the console
            )
            audit(
                uow,
                "admin.created",
                actor_id=None,
                actor_label=actor_label(),
                target_type="user",
                target_id=user.id,
                data={"username": user.username},
            )
        return user

    user = run(go)
    console.print(f"Created admin [bold]{user.username}[/bold] (id {user.id}).")


def _set_user_field(username: str, field: str, value: str) -> None:
    async def go(rt: Runtime) -> tuple[Any, Any]:
        from pigeon.accounts import service as accounts
        from pigeon.core.audit import audit_user_changes

        async with rt.uow_scope() as uow:
            user = await accounts.find_by_login(uow.app, username)
            if user is None:
                raise AppError(f"No user called {username!r}.")
            if field == "tier":
                changes = await accounts.set_tier_role(uow, user, tier=value)
            else:
                changes = await accounts.set_tier_role(uow, user, role=value)
            audit_user_changes(
                uow,
                changes,
                actor_id=None,
                actor_label=actor_label(),
                user_id=user.id,
                username=user.username,
            )
        return changes.get(field, (value, value))

    before, after = run(go)
    console.print(f"{username}: {field} {before} → [bold]{after}[/bold]")


@users_app.command("set-tier")
def set_tier(
    username: str,
    tier: Annotated[str, typer.Argument(help="free | privileged | privileged_plus")],
) -> None:
    """Change a user's tier."""
    from pigeon.accounts.models import TIERS

    if tier not in TIERS:
        err.print(f"[red]error:[/red] tier must be one of {', '.join(TIERS)}")
        raise typer.Exit(2)
    _set_user_field(username, "tier", tier)


@users_app.command("set-role")
def set_role(
    username: str,
    role: Annotated[str, typer.Argument(help="member | manager | owner | admin")],
) -> None:
    """Change a user's role."""
    from pigeon.accounts.models import ROLES

    if role not in ROLES:
        err.print(f"[red]error:[/red] role must be one of {', '.join(ROLES)}")
        raise typer.Exit(2)
    _set_user_field(username, "role", role)


@users_app.command("list")
def users_list(
    q: Annotated[str | None, typer.Option(help="filter by name or email")] = None,
) -> None:
    """List users with their tier and role."""

    async def go(rt: Runtime) -> Any:
        from pigeon.accounts import service as accounts

        async with rt.dbs.app.read() as session:
            return await accounts.list_users(session, q=q, limit=1000, offset=0)

    table = Table("id", "username", "email", "tier", "role", "active")
    for u in run(go):
        table.add_row(
            str(u.id), u.username, u.email, u.tier, u.role, "yes" if u.is_active else "no"
        )
    console.print(table)


def _switch(mode: str) -> None:
    async def go(rt: Runtime) -> tuple[bool, bool]:
        from pigeon.admin import service as admin
        from pigeon.core import migrate

        existed = await migrate.exists(rt.dbs.messaging)
        async with rt.uow_scope() as uow:
            changed = await admin.set_messaging_mode(
                rt, uow, mode, actor_id=None, actor_label=actor_label()
            )
        return changed, not existed and mode != "off"

    changed, created = run(go)
    if created:
        console.print("Created the messaging database.")
    state = {"on": "on", "off": "off", "read_only": "read-only"}[mode]
    console.print(f"Messaging is [bold]{state}[/bold]" + ("" if changed else " (it already was)."))


@messaging_app.command("enable")
def messaging_enable() -> None:
    """Switch messaging on (creates or upgrades the messaging database)."""
    _switch("on")


@messaging_app.command("disable")
def messaging_disable() -> None:
    """Switch messaging off; nothing is deleted."""
    _switch("off")


@messaging_app.command("read-only")
def messaging_read_only() -> None:
    """Members can read, search and export, but nothing new is sent (before a migration,
    during an incident); `enable` ends it."""
    _switch("read_only")


@messaging_app.command("status")
def messaging_status() -> None:
    """Show whether messaging is on, and who last changed it."""

    async def go(rt: Runtime) -> Any:
        from pigeon.core.switches import MESSAGING_ENABLED

        return await rt.switches.row(MESSAGING_ENABLED)

    row = run(go)
    if row is None:
        console.print("Messaging is [bold]off[/bold] (never switched on).")
    else:
        from pigeon.core.switches import mode_of

        state = {"on": "on", "off": "off", "read_only": "read-only"}[mode_of(row.value)]
        console.print(
            f"Messaging is [bold]{state}[/bold] since {row.updated_at:%Y-%m-%d %H:%M:%S} UTC."
        )


@app.command()
def demo(
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="only when there are no users")
    ] = False,
) -> None:
    """Load the demo community: an admin, a manager, members of every tier, conversations."""
    from pigeon import demo as demo_data

    async def go(rt: Runtime) -> bool:
        return await demo_data.load(rt, only_if_empty=if_empty)

    if run(go):
        console.print(demo_data.SUMMARY)
    else:
        console.print("There are users already; the demo was not loaded.")


retention_app = typer.Typer(help="Retention by tier.", no_args_is_help=True)
app.add_typer(retention_app, name="retention")


@retention_app.command("run")
def retention_run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count, change nothing")] = False,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="run as if it were this date (YYYY-MM-DD)")
    ] = None,
) -> None:
    """Soft-delete what left every participant's window; purge what was deleted long ago."""
    import datetime as dt

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    when = None
    if as_of:
        try:
            when = dt.datetime.fromisoformat(as_of)
        except ValueError:
            err.print(f"[red]error:[/red] --as-of: not a date: {as_of!r} (use YYYY-MM-DD)")
            raise typer.Exit(2) from None
        when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=False,
    ) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total or 1)
            bar.update(tasks[stage], completed=done if total else 1, total=total or 1)

        async def go(rt: Runtime) -> Any:
            from pigeon.core import migrate
            from pigeon.messaging import retention

            if not await migrate.exists(rt.dbs.messaging):
                return None
            return await retention.run_exclusive(
                rt,
                as_of=when,
                dry_run=dry_run,
                progress=progress,
                actor_label=actor_label(),
            )

        result = run(go)
    if result is None:
        console.print("Messaging was never switched on: there is nothing to remove.")
        return
    title = "Retention" + (" (dry run: nothing changed)" if dry_run else "")
    table = Table("", "count", title=title)
    table.add_row("as of", f"{result.as_of:%Y-%m-%d %H:%M} UTC")
    table.add_row("conversations checked", str(result.conversations_checked))
    table.add_row("messages soft-deleted", str(result.soft_deleted))
    table.add_row("messages purged", str(result.purged))
    table.add_row("kept for open reports", str(result.kept_for_reports))
    table.add_row("report copies cleared", str(result.reports_cleared))
    table.add_row("deleted conversations purged", str(result.conversations_purged))
    console.print(table)


email_app = typer.Typer(help="Email: the outbox and its delivery.", no_args_is_help=True)
app.add_typer(email_app, name="email")


def _email_on(rt: Runtime) -> None:
    if not rt.settings.smtp_host:
        raise AppError("Email is off: set PIGEON_SMTP_HOST (and the other PIGEON_SMTP_* settings).")


@email_app.command("test")
def email_test(address: Annotated[str, typer.Argument(help="where to send it")]) -> None:
    """Queue a test email to ADDRESS and deliver it at once; exit 1 if it was not accepted."""

    async def go(rt: Runtime) -> tuple[int, Any]:
        from pigeon.email import outbox, worker

        _email_on(rt)
        async with rt.uow_scope() as uow:
            row = await outbox.queue_email(
                uow, address, "test", {}, kind="test", settings=rt.settings
            )
        return row.id, await worker.deliver_one(rt, row.id)

    email_id, result = run(go)
    where = f"{get_settings().smtp_host}:{get_settings().smtp_port}"
    if result.sent:
        console.print(f"Sent test email #{email_id} to {address} through {where}.")
    elif result.errors:
        reason = escape(result.errors[0])
        err.print(f"[red]error:[/red] the test email was not sent: {reason}")
        err.print(f"It stays in the outbox as #{email_id} and will be retried.")
        raise typer.Exit(1)
    else:
        console.print(f"Test email #{email_id} is being sent by a running server's worker.")


@email_app.command("run")
def email_run() -> None:
    """Deliver the emails that are due, once (the server's worker does it on its own)."""

    async def go(rt: Runtime) -> Any:
        from pigeon.email import worker

        _email_on(rt)
        return await worker.deliver_exclusive(rt)

    result = run(go)
    table = Table("", "count", title="Email")
    table.add_row("sent", str(result.sent))
    table.add_row("failed, to be retried", str(result.failed))
    table.add_row("dead (given up)", str(result.dead))
    console.print(table)
    for error in dict.fromkeys(result.errors):
        err.print(f"[yellow]failed:[/yellow] {escape(error)}")


@users_app.command("export")
def users_export(
    username: str,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="file to write (default: its own name)")
    ] = None,
) -> None:
    """Export a user's profile, conversations, messages and files (a zip)."""
    import shutil

    async def go(rt: Runtime) -> tuple[str, Path]:
        from pigeon.accounts import service as accounts
        from pigeon.messaging import export

        async with rt.dbs.app.read() as session:
            user = await accounts.find_by_login(session, username)
        if user is None:
            raise AppError(f"No user called {username!r}.")
        return await export.export_file(rt, user.id, rt.settings.data_dir / "exports")

    name, made = run(go)
    path = Path(output or name)
    shutil.move(made, path)
    console.print(f"Wrote [bold]{path}[/bold] ({path.stat().st_size:,} bytes).")


@app.command()
def invite(
    email: Annotated[str, typer.Argument(help="the address to invite")],
    community: Annotated[
        str | None, typer.Option(help="the community's slug (default: the default community)")
    ] = None,
    tier: Annotated[
        str | None, typer.Option(help="free | privileged | privileged_plus (default: free)")
    ] = None,
) -> None:
    """Invite EMAIL (as the system, audited) and print the link; the email goes out through
    the outbox when email is configured, so the link can also be passed on by hand."""
    from pigeon.accounts.models import TIERS

    if tier is not None and tier not in TIERS:
        err.print(f"[red]error:[/red] tier must be one of {', '.join(TIERS)}")
        raise typer.Exit(2)

    async def go(rt: Runtime) -> str:
        from pigeon.accounts import communities, invitations

        async with rt.uow_scope() as uow:
            community_id = None
            if community is not None:
                community_id = (await communities.community_by_slug(uow.app, community)).id
            sent = await invitations.send(
                rt,
                uow,
                None,
                email=email,
                community_id=community_id,
                tier=tier,
                system_label=actor_label(),
            )
            return f"Invited {sent.invitation.email} to {sent.community.name}: {sent.link}"

    console.print(run(go), soft_wrap=True, highlight=False)


@app.command()
def bench(
    scenario: Annotated[
        list[str] | None, typer.Option(help="latency | load | throughput | idle (repeatable)")
    ] = None,
    clients: Annotated[int | None, typer.Option(help="WebSocket clients")] = None,
    conversations: Annotated[int | None, typer.Option(help="direct conversations")] = None,
    rate: Annotated[float | None, typer.Option(help="sends per second (0: closed loop)")] = None,
    senders: Annotated[int | None, typer.Option(help="closed-loop senders")] = None,
    duration: Annotated[float | None, typer.Option(help="seconds of sending")] = None,
    idle: Annotated[int | None, typer.Option(help="idle connections to hold")] = None,
    server_cpu: Annotated[str | None, typer.Option(help="pin the server (taskset -c)")] = "0",
    client_cpu: Annotated[str | None, typer.Option(help="pin the load generator")] = "1",
    reference: Annotated[
        Path | None,
        typer.Option(
            help="instead: run the bare reference server found in this folder "
            "(reference_server.py) beside Pigeon, with wrk, and print Pigeon ÷ reference"
        ),
    ] = None,
    rounds: Annotated[int, typer.Option(help="with --reference: rounds of both")] = 3,
) -> None:
    """Measure live delivery: a fresh server on the embedded default, WebSocket clients, sends;
    or, with --reference, sends/s, server CPU per send and history against the reference."""
    import asyncio

    from pigeon import bench as runner

    if reference is not None:
        from pigeon.bench.reference import compare

        asyncio.run(
            compare(
                rounds=rounds,
                seconds=int(duration or 15),
                server_cpu=server_cpu or None,
                client_cpu=client_cpu or None,
                reference_dir=reference,
            )
        )
        return
    names = scenario or list(runner.SCENARIOS)
    unknown = [n for n in names if n not in runner.SCENARIOS]
    if unknown:
        err.print(f"[red]error:[/red] unknown scenario {unknown[0]!r}")
        raise typer.Exit(2)
    overrides = {
        "clients": clients,
        "conversations": conversations,
        "rate": rate,
        "senders": senders,
        "duration": duration,
        "idle": idle,
    }
    runner.main(
        names, server_cpu=server_cpu or None, client_cpu=client_cpu or None, overrides=overrides
    )


@app.command()
def backup(
    folder: Annotated[Path, typer.Argument(help="a new or empty folder")],
    verify: Annotated[
        bool, typer.Option("--verify", help="check an existing backup instead of making one")
    ] = False,
) -> None:
    """Back up both databases, the media store and the keys, with a manifest; safe while the
    server runs and writes."""
    from pigeon.ops import backup as backups

    try:
        if verify:
            problems = backups.verify(folder)
            for problem in problems:
                err.print(f"[red]problem:[/red] {escape(problem)}")
            if problems:
                raise typer.Exit(1)
            manifest = backups.read_manifest(folder)
            console.print(f"{folder}: whole (taken {manifest['started_at']}).")
            return
        asyncio.run(backups.backup(get_settings(), folder, say=console.print))
    except backups.BackupError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    console.print(f"Backed up into [bold]{escape(str(folder))}[/bold].")


@app.command()
def restore(
    folder: Annotated[Path, typer.Argument(help="a folder `pigeon backup` wrote")],
    force: Annotated[
        bool, typer.Option("--force", help="overwrite an install that holds accounts")
    ] = False,
) -> None:
    """Bring a backup back (stop the server first): checks every checksum, then puts both
    databases, the media and the keys where the settings say; upgrades an older schema."""
    from pigeon.core import migrate
    from pigeon.ops import backup as backups

    settings = get_settings()

    async def go() -> None:
        await backups.restore(settings, folder, force=force, say=console.print)
        dbs = Databases(settings.app_db_url, settings.messaging_db_url)
        try:  # a backup of an older release comes back at today's schema
            await migrate.upgrade_databases(dbs)
        finally:
            await dbs.dispose()

    try:
        asyncio.run(go())
    except backups.BackupError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    console.print(f"Restored from [bold]{escape(str(folder))}[/bold].")


@app.command()
def doctor(
    expected_sockets: Annotated[
        int, typer.Option(help="live connections one process should hold", min=0)
    ] = 1000,
) -> None:
    """Check the settings and what they point at (key, files, databases, Redis, SMTP, storage,
    clocks, open-file limit, disk), and say what to fix; exit 1 if anything will not work."""
    from pigeon.ops import doctor as checks

    found = asyncio.run(checks.examine(get_settings(), expected_sockets=expected_sockets))
    marks = {
        "ok": "[green]ok  [/green]",
        "warn": "[yellow]warn[/yellow]",
        "fail": "[red]FAIL[/red]",
    }
    for f in found:  # one line a finding (and one for its fix): easy to read, easy to grep
        console.print(f"{marks[f.state]}  {f.check}: {escape(f.detail)}", soft_wrap=True)
        if f.fix:
            console.print(f"      fix: {escape(f.fix)}", soft_wrap=True)
    counts = checks.summary(found)
    console.print(f"{counts['ok']} ok, {counts['warn']} to improve, {counts['fail']} failing.")
    if counts["fail"]:
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
