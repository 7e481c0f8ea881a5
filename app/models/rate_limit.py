"""Request counts per client and action in fixed windows, shared by every worker."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class RateLimitBucket(Base):
    __tablename__ = "rate_limit_bucket"

    # "<action>:<client>", such as "login:203.0.113.9".
    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)
