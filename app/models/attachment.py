"""A file attached to an issue or to one of its comments."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow
from app.models.user import User

# Served inline (previewed in the page); anything else is sent as a download.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"})
# Images that get a thumbnail.
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})

FILE_NAME_MAX = 255


class Attachment(Base):
    """One stored file. `file_name` is the name as given, made safe to store and show (no path,
    no control characters, at most FILE_NAME_MAX characters); `content_type` was sniffed from
    the bytes, never taken from the client; `storage_key` names the bytes in the storage
    backend (its thumbnail is `storage_key` + THUMBNAIL_SUFFIX when `has_thumbnail`)."""

    __tablename__ = "attachment"
    __table_args__ = (Index("ix_attachment_issue_id_id", "issue_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issue.id", ondelete="CASCADE"))
    comment_id: Mapped[int | None] = mapped_column(
        ForeignKey("comment.id", ondelete="CASCADE"), index=True, default=None
    )
    uploader_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), index=True
    )
    file_name: Mapped[str] = mapped_column(String(FILE_NAME_MAX))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    storage_key: Mapped[str] = mapped_column(String(200), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    has_thumbnail: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    uploader: Mapped[User | None] = relationship(lazy="raise")

    @property
    def is_inline(self) -> bool:
        """Whether browsers may show it in the page (a safe image or a PDF)."""
        return self.content_type in INLINE_TYPES

    @property
    def is_image(self) -> bool:
        return self.content_type in IMAGE_TYPES


THUMBNAIL_SUFFIX = ".thumb.png"
