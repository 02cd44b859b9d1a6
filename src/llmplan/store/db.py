"""Open a store (SQLite file or PostgreSQL URL), migrate it to the current schema, and read and
write scenarios, runs, overrides and measurements. Every write is one transaction: a failure
leaves the store as it was."""

from __future__ import annotations

import difflib
import os
import time
from datetime import UTC
from pathlib import Path
from typing import Any, cast

from sqlalchemy import create_engine, event, func, select
from sqlalchemy.engine import CursorResult, Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from ..errors import LlmplanError
from .models import (
    CatalogOverrideRow,
    JobRow,
    MeasurementRow,
    RunRow,
    ScenarioRow,
    ScenarioVersionRow,
)

MIGRATIONS = Path(__file__).parent / "migrations"


class NotFound(LlmplanError):
    """A stored object that does not exist (HTTP 404)."""


class StoreFull(LlmplanError):
    """The store holds as many runs or scenarios as it may keep (HTTP 409)."""


DEFAULT_MAX_RUNS = 10_000
DEFAULT_MAX_SCENARIOS = 1_000
DEFAULT_MAX_VERSIONS = 1_000  # per scenario


def limit_from_env(var: str, default: int) -> int:
    """A store cap from the environment (LLMPLAN_MAX_RUNS, LLMPLAN_MAX_SCENARIOS): 1 to 10 million."""
    raw = os.environ.get(var, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000_000:
        raise LlmplanError(f"{var}={raw!r}: a whole number from 1 to 10,000,000")
    return int(raw)


def default_url() -> str:
    """LLMPLAN_DATABASE, else a SQLite file in the user's data directory."""
    env = os.environ.get("LLMPLAN_DATABASE")
    if env:
        return env
    from platformdirs import user_data_dir

    return f"sqlite:///{Path(user_data_dir('llmplan')) / 'llmplan.db'}"


def _engine(url: str) -> Engine:
    try:
        u = make_url(url)
    except ArgumentError:
        raise LlmplanError(f"--database {url!r}: not a database URL (sqlite:///PATH or postgresql://…)") from None
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    if u.drivername.startswith("sqlite"):
        if u.database and u.database != ":memory:":
            Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        if u.database and u.database != ":memory:":
            eng = create_engine(u)
        else:  # in memory: one connection shared by every thread, or each request sees an empty database
            eng = create_engine(u, poolclass=StaticPool, connect_args={"check_same_thread": False})

        @event.listens_for(eng, "connect")
        def _pragmas(dbapi_conn, _):  # noqa: ANN001
            dbapi_conn.execute("PRAGMA foreign_keys=ON")
            dbapi_conn.execute("PRAGMA busy_timeout=10000")  # wait for a writer instead of failing
            if u.database and u.database != ":memory:":
                dbapi_conn.execute("PRAGMA journal_mode=WAL")  # readers never block the writer

        return eng
    if not u.drivername.startswith("postgresql"):
        raise LlmplanError(f"--database: {u.drivername} is not supported (use sqlite:///PATH or postgresql://…)")
    return create_engine(u, pool_pre_ping=True)


class Store:
    """`max_runs` and `max_scenarios` (default LLMPLAN_MAX_RUNS, 10,000, and LLMPLAN_MAX_SCENARIOS,
    1,000, archived scenarios included, since archiving keeps every version), and
    LLMPLAN_MAX_VERSIONS (1,000 versions per scenario) cap what the store keeps: past them a new
    run or scenario is refused (StoreFull, HTTP 409); deleting runs makes room. Checked in the
    writing transaction: concurrent writers may pass the cap by a few."""

    def __init__(self, url: str | None = None, max_runs: int | None = None, max_scenarios: int | None = None) -> None:
        self.url = url or default_url()
        self.max_runs = max_runs or limit_from_env("LLMPLAN_MAX_RUNS", DEFAULT_MAX_RUNS)
        self.max_scenarios = max_scenarios or limit_from_env("LLMPLAN_MAX_SCENARIOS", DEFAULT_MAX_SCENARIOS)
        self.max_versions = limit_from_env("LLMPLAN_MAX_VERSIONS", DEFAULT_MAX_VERSIONS)
        self.engine = _engine(self.url)
        try:
            self.migrate()
        except OperationalError as exc:
            raise LlmplanError(f"cannot open the store at {make_url(self.url).render_as_string(hide_password=True)}: "
                               f"{str(exc.orig).strip().splitlines()[0]}") from None

    def migrate(self) -> None:
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def schema_revision(self) -> str | None:
        from alembic.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    # ------------------------------------------------------------------ scenarios

    def create_scenario(self, name: str, body: dict[str, Any], yaml_text: str, comment: str | None = None
                        ) -> dict[str, Any]:
        with Session(self.engine) as s, s.begin():
            n = s.scalar(select(func.count()).select_from(ScenarioRow)) or 0
            if n >= self.max_scenarios:
                raise StoreFull(f"the store holds {n:,} scenarios (archived ones included), the most it keeps "
                                f"(LLMPLAN_MAX_SCENARIOS={self.max_scenarios:,}); save new versions of existing ones, "
                                "or raise the cap")
            row = ScenarioRow(name=name)
            s.add(row)
            s.flush()
            s.add(ScenarioVersionRow(scenario_id=row.id, version=1, body=body, yaml=yaml_text, comment=comment))
            sid = row.id
        return self.get_scenario(sid)

    def save_version(self, sid: int, body: dict[str, Any], yaml_text: str, comment: str | None = None,
                     name: str | None = None) -> dict[str, Any]:
        """A new version numbered after the last; two clients saving at once both get theirs (the
        unique (scenario, version) constraint makes the loser retry with the next number). The
        answer's `version` is the number of this save, not whatever is latest when it is read."""
        def write(s: Session) -> int:
            row = self._scenario(s, sid)
            last = s.scalar(select(func.max(ScenarioVersionRow.version)).where(ScenarioVersionRow.scenario_id == sid))
            number = (last or 0) + 1
            if number > self.max_versions:
                raise StoreFull(f"scenario {sid} has {last:,} versions, the most one keeps (LLMPLAN_MAX_VERSIONS="
                                f"{self.max_versions:,}); save it as a new scenario")
            s.add(ScenarioVersionRow(scenario_id=sid, version=number, body=body, yaml=yaml_text, comment=comment))
            if name:
                row.name = name
            return number

        number = self._numbered(write, f"scenario {sid}")
        return {**self.get_scenario(sid), "version": number}

    def archive(self, sid: int) -> None:
        with Session(self.engine) as s, s.begin():
            self._scenario(s, sid).archived = True

    def list_scenarios(self, archived: bool = False, limit: int | None = None, offset: int = 0
                       ) -> tuple[list[dict[str, Any]], int]:
        """One page of scenarios (oldest first) and how many there are; reads no version body."""
        with Session(self.engine) as s:
            where = [] if archived else [ScenarioRow.archived.is_(False)]
            total = int(s.scalar(select(func.count()).select_from(ScenarioRow).where(*where)) or 0)
            latest = (select(ScenarioVersionRow.scenario_id, func.max(ScenarioVersionRow.version).label("v"))
                      .group_by(ScenarioVersionRow.scenario_id).subquery())
            q = (select(ScenarioRow.id, ScenarioRow.name, ScenarioRow.created_at, ScenarioRow.archived,
                        ScenarioVersionRow.version, ScenarioVersionRow.created_at)
                 .join(latest, latest.c.scenario_id == ScenarioRow.id)
                 .join(ScenarioVersionRow, (ScenarioVersionRow.scenario_id == ScenarioRow.id)
                       & (ScenarioVersionRow.version == latest.c.v))
                 .where(*where).order_by(ScenarioRow.id).offset(offset).limit(limit))
            return [{"id": i, "name": n, "created_at": c.isoformat(), "archived": a, "version": v,
                     "updated_at": u.isoformat()} for i, n, c, a, v, u in s.execute(q)], total

    def scenario_names(self) -> list[dict[str, Any]]:
        """Id and name of every scenario not archived (no bodies read)."""
        with Session(self.engine) as s:
            return [{"id": i, "name": n} for i, n in s.execute(
                select(ScenarioRow.id, ScenarioRow.name).where(ScenarioRow.archived.is_(False)))]

    def get_scenario(self, sid: int) -> dict[str, Any]:
        with Session(self.engine) as s:
            return self._scenario_dict(self._scenario(s, sid), full=True)

    def get_version(self, sid: int, version: int) -> dict[str, Any]:
        with Session(self.engine) as s:
            self._scenario(s, sid)
            v = s.scalar(select(ScenarioVersionRow).where(ScenarioVersionRow.scenario_id == sid,
                                                          ScenarioVersionRow.version == version))
            if v is None:
                raise NotFound(f"scenario {sid} has no version {version}")
            return _version_dict(v)

    def diff(self, sid: int, a: int, b: int) -> str:
        va, vb = self.get_version(sid, a), self.get_version(sid, b)
        return "".join(difflib.unified_diff(va["yaml"].splitlines(keepends=True), vb["yaml"].splitlines(keepends=True),
                                            fromfile=f"v{a}", tofile=f"v{b}"))

    @staticmethod
    def _scenario(s: Session, sid: int) -> ScenarioRow:
        row = s.get(ScenarioRow, sid)
        if row is None:
            raise NotFound(f"no scenario {sid}")
        return row

    @staticmethod
    def _scenario_dict(r: ScenarioRow, full: bool) -> dict[str, Any]:
        latest = r.versions[-1]
        d = {"id": r.id, "name": r.name, "created_at": r.created_at.isoformat(), "archived": r.archived,
             "version": latest.version, "updated_at": latest.created_at.isoformat()}
        if full:
            d["latest"] = _version_dict(latest)
            d["versions"] = [{"version": v.version, "comment": v.comment, "created_at": v.created_at.isoformat()}
                             for v in r.versions]
        return d

    # ------------------------------------------------------------------ runs

    def add_run(self, scenario: dict[str, Any], status: str, catalog_version: str, llmplan_version: str,
                result: dict[str, Any] | None = None, report_html: str | None = None, report_md: str | None = None,
                error: str | None = None, seconds: float | None = None, scenario_id: int | None = None,
                version: int | None = None) -> int:
        with Session(self.engine) as s, s.begin():
            vid = None
            if scenario_id is not None:
                v = s.scalar(select(ScenarioVersionRow).where(ScenarioVersionRow.scenario_id == scenario_id,
                                                              ScenarioVersionRow.version == version))
                if v is None:
                    raise NotFound(f"scenario {scenario_id} has no version {version}")
                vid = v.id
            self._room_for_run(s)
            name = (scenario or {}).get("name") if isinstance(scenario, dict) else None
            row = RunRow(scenario_version_id=vid, scenario=scenario, status=status, result=result,
                         report_html=report_html, report_md=report_md, error=error, catalog_version=catalog_version,
                         llmplan_version=llmplan_version, seconds=seconds,
                         name=str(name)[:200] if name is not None else None, summary=run_summary(result))
            s.add(row)
            s.flush()
            return row.id

    def room_for_run(self) -> None:
        """StoreFull unless one more run may be kept (checked before a plan starts, and again when it is saved)."""
        with Session(self.engine) as s:
            self._room_for_run(s)

    def _room_for_run(self, s: Session) -> None:
        n = s.scalar(select(func.count()).select_from(RunRow)) or 0
        if n >= self.max_runs:
            raise StoreFull(f"the store holds {n:,} runs, the most it keeps (LLMPLAN_MAX_RUNS={self.max_runs:,}); "
                            "delete old ones (DELETE /api/runs/ID) or raise the cap")

    def get_run(self, rid: int, with_reports: bool = False) -> dict[str, Any]:
        with Session(self.engine) as s:
            r = s.get(RunRow, rid)
            if r is None:
                raise NotFound(f"no run {rid}")
            d = _run_dict(s, r, with_result=True)
            if with_reports:
                d["report_html"], d["report_md"] = r.report_html, r.report_md
            return d

    def list_runs(self, scenario_id: int | None = None, limit: int | None = None, offset: int = 0
                  ) -> tuple[list[dict[str, Any]], int]:
        """One page of runs, newest first, and how many there are; reads no result, report or
        scenario (the name and summary have their own columns)."""
        with Session(self.engine) as s:
            where = [] if scenario_id is None else [ScenarioVersionRow.scenario_id == scenario_id]
            count = select(func.count()).select_from(RunRow).outerjoin(
                ScenarioVersionRow, RunRow.scenario_version_id == ScenarioVersionRow.id).where(*where)
            total = int(s.scalar(count) or 0)
            q = (select(RunRow.id, RunRow.status, ScenarioVersionRow.scenario_id, ScenarioVersionRow.version,
                        RunRow.name, RunRow.catalog_version, RunRow.llmplan_version, RunRow.seconds,
                        RunRow.created_at, RunRow.error, RunRow.summary)
                 .outerjoin(ScenarioVersionRow, RunRow.scenario_version_id == ScenarioVersionRow.id)
                 .where(*where).order_by(RunRow.id.desc()).offset(offset).limit(limit))
            return [{"id": r[0], "status": r[1], "scenario_id": r[2], "scenario_version": r[3], "name": r[4],
                     "catalog_version": r[5], "llmplan_version": r[6], "seconds": r[7],
                     "created_at": r[8].isoformat(), "error": r[9], "recommendation": r[10]}
                    for r in s.execute(q)], total

    def delete_run(self, rid: int) -> None:
        """Delete a run (its reports and PDF with it); jobs that made it keep their status, without the run."""
        from sqlalchemy import delete, update

        with Session(self.engine) as s, s.begin():
            s.execute(update(JobRow).where(JobRow.run_id == rid).values(run_id=None))
            gone = cast(CursorResult, s.execute(delete(RunRow).where(RunRow.id == rid)))  # a DELETE: a cursor result
            if not gone.rowcount:
                raise NotFound(f"no run {rid}")

    # ------------------------------------------------------------------ jobs

    def add_job(self, jid: str, owner: str | None = None) -> None:
        from .models import now

        with Session(self.engine) as s, s.begin():
            s.add(JobRow(id=jid, status="queued", progress="queued", owner=owner, heartbeat_at=now()))

    def update_job(self, jid: str, only_status: str | None = None, **fields: Any) -> None:
        """Set fields of a job (only while its status is `only_status`, when given); a job that
        ends done carries no error (another process may have written one while it could not tell
        this one was alive)."""
        from sqlalchemy import update

        from .models import now

        if only_status is not None:  # one statement: a concurrent change of status wins
            with Session(self.engine) as s, s.begin():
                s.execute(update(JobRow).where(JobRow.id == jid, JobRow.status == only_status)
                          .values(**{k: (str(v)[:300] if k == "progress" else v) for k, v in fields.items()},
                                  updated_at=now()))
            return
        with Session(self.engine) as s, s.begin():
            row = s.get(JobRow, jid)
            if row is None:
                raise NotFound(f"no job {jid}")
            if fields.get("status") == "done":
                fields.setdefault("error", None)
            if fields.get("status") in ("running", "done", "failed"):
                fields.setdefault("queue_position", None)
            for k, v in fields.items():
                setattr(row, k, v if k != "progress" else str(v)[:300])
            row.updated_at = now()
            if row.owner is not None and "heartbeat_at" not in fields:
                row.heartbeat_at = row.updated_at

    def get_job(self, jid: str) -> dict[str, Any]:
        with Session(self.engine) as s:
            row = s.get(JobRow, jid)
            if row is None:
                raise NotFound(f"no job {jid}")
            return {"id": row.id, "status": row.status, "progress": row.progress, "run_id": row.run_id,
                    "error": row.error, "created_at": row.created_at, "updated_at": row.updated_at,
                    "owner": row.owner, "heartbeat_at": row.heartbeat_at, "queue_position": row.queue_position}

    def heartbeat(self, owner: str) -> int:
        """The owner is alive: stamp its unfinished jobs. Returns how many it still has."""
        from .models import now

        with Session(self.engine) as s, s.begin():
            rows = list(s.scalars(select(JobRow).where(JobRow.owner == owner,
                                                       JobRow.status.in_(("queued", "running")))))
            t = now()
            for r in rows:
                r.heartbeat_at = t
            return len(rows)

    def fail_stale_jobs(self, stale_s: float, jid: str | None = None) -> int:
        """Jobs (all, or `jid`) still queued or running whose owner has not beaten for `stale_s`
        seconds can never finish: failed, with the reason. A job whose owner is alive is left
        alone, whichever process asks (another server starting on the same store included)."""
        from datetime import timedelta

        from .models import now

        t = now()
        with Session(self.engine) as s, s.begin():
            q = select(JobRow).where(JobRow.status.in_(("queued", "running")))
            if jid is not None:
                q = q.where(JobRow.id == jid)
            n = 0
            for r in s.scalars(q):
                last = _aware(r.heartbeat_at or r.updated_at)
                if t - last > timedelta(seconds=stale_s):
                    r.status, r.progress, r.queue_position = "failed", "failed", None
                    r.error = (f"the server process running this job stopped (no heartbeat since "
                               f"{last.isoformat(timespec='seconds')}); run the plan again")
                    r.updated_at = t
                    n += 1
            return n

    # ------------------------------------------------------------------ rendered PDFs

    def run_pdf(self, rid: int) -> bytes | None:
        with Session(self.engine) as s:
            r = s.get(RunRow, rid)
            if r is None:
                raise NotFound(f"no run {rid}")
            return r.report_pdf

    def set_run_pdf(self, rid: int, pdf: bytes) -> None:
        with Session(self.engine) as s, s.begin():
            r = s.get(RunRow, rid)
            if r is None:
                raise NotFound(f"no run {rid}")
            r.report_pdf = pdf

    # ------------------------------------------------------------------ overrides and measurements

    def add_override(self, kind: str, entry_id: str, body: dict[str, Any]) -> dict[str, Any]:
        def write(s: Session) -> tuple[int, int]:
            last = s.scalar(select(func.max(CatalogOverrideRow.revision)).where(
                CatalogOverrideRow.kind == kind, CatalogOverrideRow.entry_id == entry_id))
            row = CatalogOverrideRow(kind=kind, entry_id=entry_id, revision=(last or 0) + 1, body=body)
            s.add(row)
            s.flush()
            return row.id, row.revision

        oid, revision = self._numbered(write, f"override {kind}/{entry_id}")
        return {"id": oid, "kind": kind, "entry_id": entry_id, "revision": revision}

    def _numbered(self, write, what: str):
        """Run `write` (which takes the next number after the last) in a transaction; when a
        concurrent writer took that number first, the unique constraint refuses it and we retry."""
        for attempt in range(20):
            try:
                with Session(self.engine) as s, s.begin():
                    return write(s)
            except (IntegrityError, OperationalError):
                if attempt == 19:
                    raise LlmplanError(f"{what}: too many concurrent saves, try again") from None
                time.sleep(0.01 * (attempt + 1))

    def overrides(self) -> list[dict[str, Any]]:
        """The latest revision of every overridden entry (in the order they were first added),
        with whether it is enabled."""
        with Session(self.engine) as s:
            latest: dict[tuple[str, str], CatalogOverrideRow] = {}
            first: dict[tuple[str, str], int] = {}
            for r in s.scalars(select(CatalogOverrideRow).order_by(CatalogOverrideRow.revision,
                                                                   CatalogOverrideRow.id)):
                latest[r.kind, r.entry_id] = r
                first.setdefault((r.kind, r.entry_id), r.id)
            rows = sorted(latest.values(), key=lambda r: first[r.kind, r.entry_id])
            return [{"kind": r.kind, "entry_id": r.entry_id, "revision": r.revision, "enabled": r.enabled,
                     "created_at": _aware(r.created_at).isoformat(), "body": r.body} for r in rows]

    def override_fingerprint(self) -> tuple:
        """What identifies the overrides' current state, without reading their bodies (a cache key)."""
        with Session(self.engine) as s:
            rows = s.execute(select(CatalogOverrideRow.id, CatalogOverrideRow.kind, CatalogOverrideRow.entry_id,
                                    CatalogOverrideRow.revision, CatalogOverrideRow.enabled,
                                    CatalogOverrideRow.created_at).order_by(CatalogOverrideRow.id))
            return tuple((r[0], r[1], r[2], r[3], bool(r[4]), str(r[5])) for r in rows)

    def override_revisions(self) -> int:
        with Session(self.engine) as s:
            return int(s.scalar(select(func.count()).select_from(CatalogOverrideRow)) or 0)

    def delete_override(self, kind: str, entry_id: str) -> int:
        """Remove every revision of one override; returns how many rows went."""
        from sqlalchemy import delete

        with Session(self.engine) as s, s.begin():
            done = s.execute(delete(CatalogOverrideRow).where(CatalogOverrideRow.kind == kind,
                                                              CatalogOverrideRow.entry_id == entry_id))
            n = cast(CursorResult, done).rowcount  # a DELETE answers with a cursor result
        if not n:
            raise NotFound(f"no override {kind}/{entry_id}")
        return int(n)

    def set_override_enabled(self, kind: str, entry_id: str, enabled: bool) -> dict[str, Any]:
        with Session(self.engine) as s, s.begin():
            row = s.scalar(select(CatalogOverrideRow).where(
                CatalogOverrideRow.kind == kind, CatalogOverrideRow.entry_id == entry_id)
                .order_by(CatalogOverrideRow.revision.desc()).limit(1))
            if row is None:
                raise NotFound(f"no override {kind}/{entry_id}")
            row.enabled = enabled
            return {"kind": kind, "entry_id": entry_id, "revision": row.revision, "enabled": enabled}

    def add_measurements(self, rows: list[dict[str, Any]], source: str) -> int:
        with Session(self.engine) as s, s.begin():
            s.add_all(MeasurementRow(body=r, source=source) for r in rows)
        return len(rows)

    def measurements(self) -> list[dict[str, Any]]:
        with Session(self.engine) as s:
            return [{"id": r.id, "source": r.source, **r.body} for r in s.scalars(select(MeasurementRow))]


def _aware(t):
    """SQLite hands back naive datetimes (stored as UTC)."""

    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _version_dict(v: ScenarioVersionRow) -> dict[str, Any]:
    return {"version": v.version, "body": v.body, "yaml": v.yaml, "comment": v.comment,
            "created_at": v.created_at.isoformat()}


def run_summary(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a list shows of a run's result (stored in its own column): the recommendation in brief."""
    rec = (result or {}).get("recommendation") if isinstance(result, dict) else None
    return {k: rec.get(k) for k in ("id", "deployment", "tco_usd", "cost_per_million_tokens_usd")} \
        if isinstance(rec, dict) else None


def _run_dict(s: Session, r: RunRow, with_result: bool) -> dict[str, Any]:
    sv = s.get(ScenarioVersionRow, r.scenario_version_id) if r.scenario_version_id else None
    d = {"id": r.id, "status": r.status, "scenario_id": sv.scenario_id if sv else None,
         "scenario_version": sv.version if sv else None,
         "name": r.name if r.name is not None else (r.scenario or {}).get("name"),
         "catalog_version": r.catalog_version, "llmplan_version": r.llmplan_version, "seconds": r.seconds,
         "created_at": r.created_at.isoformat(), "error": r.error}
    d["recommendation"] = r.summary if r.summary is not None else run_summary(r.result)
    if with_result:
        d["scenario"] = r.scenario
        d["result"] = r.result
    return d
