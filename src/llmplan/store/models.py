"""Tables. Scenarios are never overwritten: every save is a new row in scenario_versions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class ScenarioRow(Base):
    __tablename__ = "scenarios"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    archived: Mapped[bool] = mapped_column(default=False)
    versions: Mapped[list[ScenarioVersionRow]] = relationship(back_populates="scenario",
                                                              order_by="ScenarioVersionRow.version")


class ScenarioVersionRow(Base):
    __tablename__ = "scenario_versions"
    __table_args__ = (UniqueConstraint("scenario_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scenario_id: Mapped[int] = mapped_column(ForeignKey("scenarios.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    yaml: Mapped[str] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    scenario: Mapped[ScenarioRow] = relationship(back_populates="versions")


class RunRow(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scenario_version_id: Mapped[int | None] = mapped_column(ForeignKey("scenario_versions.id"), index=True,
                                                            default=None)
    scenario: Mapped[dict[str, Any]] = mapped_column(JSON, deferred=True)
    status: Mapped[str] = mapped_column(String(20))  # done | failed
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None, deferred=True)
    report_html: Mapped[str | None] = mapped_column(Text, default=None, deferred=True)
    report_md: Mapped[str | None] = mapped_column(Text, default=None, deferred=True)
    name: Mapped[str | None] = mapped_column(String(200), default=None)  # the scenario's: lists read no blob
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # the recommendation in brief
    report_pdf: Mapped[bytes | None] = mapped_column(LargeBinary, default=None, deferred=True)  # rendered once
    error: Mapped[str | None] = mapped_column(Text, default=None)
    catalog_version: Mapped[str] = mapped_column(String(80))
    llmplan_version: Mapped[str] = mapped_column(String(40))
    seconds: Mapped[float | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class CatalogOverrideRow(Base):
    __tablename__ = "catalog_overrides"
    __table_args__ = (UniqueConstraint("kind", "entry_id", "revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    entry_id: Mapped[str] = mapped_column(String(200))
    revision: Mapped[int] = mapped_column(Integer, default=1)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class MeasurementRow(Base):
    __tablename__ = "measurements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(20))  # queued | running | done | failed
    progress: Mapped[str] = mapped_column(String(300))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    owner: Mapped[str | None] = mapped_column(String(80), default=None)  # the server process running it
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    queue_position: Mapped[int | None] = mapped_column(Integer, default=None)
