"""The key of a person's feed links: what lets a feed reader read their private projects."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class FeedKey(Base):
    """One per person who turned feed links on. The token in their feed URLs is an HMAC of
    `salt` under the app's secret key (decision 0027): shown again whenever they look, useless
    without the secret key, and revoked for every URL at once by a new salt or no row."""

    __tablename__ = "feed_key"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
    )
    salt: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
