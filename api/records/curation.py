"""The gallery's per-user data in the records database: favourites and 1–5 ratings,
albums and their items, share links.

Outputs themselves stay in the artifact store (file and metadata record); rows here
name an output by ``(job, idx)`` and are removed with it (:meth:`Curation.forget`).
Every method takes the owner and touches only that owner's rows; the routes check
ownership of the output itself before calling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from warmpool.api.records.audit import utc
from warmpool.api.records.db import Database
from warmpool.api.records.tables import Album, AlbumItem, GalleryMark, ShareLink

Key = tuple[str, int]  # (job, index) of an output


@dataclass(frozen=True)
class Mark:
    favourite: bool = False
    rating: int | None = None


class AlbumExistsError(ValueError):
    """The owner already has an album of that name."""


def _now(now: datetime | None) -> datetime:
    return utc(now or datetime.now(UTC))


class Curation:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------ marks

    async def marks(self, owner: str) -> dict[Key, Mark]:
        async with self.db.session() as s:
            rows = await s.scalars(select(GalleryMark).where(GalleryMark.owner == owner))
            return {(r.job, r.idx): Mark(r.favourite, r.rating) for r in rows}

    async def set_mark(
        self,
        owner: str,
        key: Key,
        *,
        favourite: bool | None = None,
        rating: int | None = None,
        clear_rating: bool = False,
    ) -> Mark:
        """Change what is given (``clear_rating`` removes the rating)."""
        job, idx = key
        async with self.db.write_lock, self.db.session() as s:
            row = await s.scalar(
                select(GalleryMark).where(
                    GalleryMark.owner == owner, GalleryMark.job == job, GalleryMark.idx == idx
                )
            )
            if row is None:
                row = GalleryMark(owner=owner, job=job, idx=idx, favourite=False, rating=None)
                s.add(row)
            if favourite is not None:
                row.favourite = favourite
            if rating is not None:
                row.rating = rating
            if clear_rating:
                row.rating = None
            row.updated_at = _now(None)
            await s.flush()
            return Mark(row.favourite, row.rating)

    # ------------------------------------------------------------ albums

    async def albums(self, owner: str) -> list[tuple[Album, int]]:
        """The owner's albums by name, each with its item count."""
        counts = (
            select(AlbumItem.album_id, func.count(AlbumItem.id).label("n"))
            .group_by(AlbumItem.album_id)
            .subquery()
        )
        q = (
            select(Album, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.album_id == Album.id)
            .where(Album.owner == owner)
            .order_by(Album.name)
        )
        async with self.db.session() as s:
            return [(a, int(n)) for a, n in (await s.execute(q)).all()]

    async def album(self, owner: str | None, album_id: int) -> Album | None:
        """One album (``owner`` None: anyone's, for admins and share links)."""
        q = select(Album).where(Album.id == album_id)
        if owner is not None:
            q = q.where(Album.owner == owner)
        async with self.db.session() as s:
            return await s.scalar(q)

    async def create_album(self, owner: str, name: str) -> Album:
        try:
            async with self.db.write_lock, self.db.session() as s:
                album = Album(owner=owner, name=name, created_at=_now(None))
                s.add(album)
                await s.flush()
                return album
        except IntegrityError as e:
            raise AlbumExistsError(name) from e

    async def rename_album(self, album: Album, name: str) -> Album:
        try:
            async with self.db.write_lock, self.db.session() as s:
                await s.execute(update(Album).where(Album.id == album.id).values(name=name))
        except IntegrityError as e:
            raise AlbumExistsError(name) from e
        album.name = name
        return album

    async def delete_album(self, album: Album) -> None:
        async with self.db.write_lock, self.db.session() as s:
            await s.execute(delete(AlbumItem).where(AlbumItem.album_id == album.id))
            await s.execute(delete(ShareLink).where(ShareLink.album_id == album.id))
            await s.execute(delete(Album).where(Album.id == album.id))

    async def add_item(self, album: Album, key: Key) -> bool:
        """False when the output was in the album already."""
        try:
            async with self.db.write_lock, self.db.session() as s:
                s.add(AlbumItem(album_id=album.id, job=key[0], idx=key[1], added_at=_now(None)))
                await s.flush()
                return True
        except IntegrityError:
            return False

    async def remove_item(self, album: Album, key: Key) -> bool:
        async with self.db.write_lock, self.db.session() as s:
            result = await s.execute(
                delete(AlbumItem).where(
                    AlbumItem.album_id == album.id, AlbumItem.job == key[0], AlbumItem.idx == key[1]
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def items(self, album_id: int) -> list[Key]:
        """The album's outputs, first added first."""
        q = select(AlbumItem.job, AlbumItem.idx).where(AlbumItem.album_id == album_id)
        async with self.db.session() as s:
            rows = (await s.execute(q.order_by(AlbumItem.id))).all()
        return [(job, idx) for job, idx in rows]

    async def memberships(self, owner: str) -> dict[Key, list[int]]:
        """Which of the owner's albums each output is in."""
        q = (
            select(AlbumItem.job, AlbumItem.idx, AlbumItem.album_id)
            .join(Album, Album.id == AlbumItem.album_id)
            .where(Album.owner == owner)
        )
        out: dict[Key, list[int]] = {}
        async with self.db.session() as s:
            for job, idx, album_id in (await s.execute(q)).all():
                out.setdefault((job, idx), []).append(int(album_id))
        return out

    async def kept(self) -> set[Key]:
        """Outputs anyone favourited or put in an album (retention keeps these)."""
        async with self.db.session() as s:
            fav = (await s.execute(select(GalleryMark.job, GalleryMark.idx).where(
                GalleryMark.favourite.is_(True)))).all()  # fmt: skip
            listed = (await s.execute(select(AlbumItem.job, AlbumItem.idx))).all()
        return {(j, i) for j, i in [*fav, *listed]}

    # ------------------------------------------------------------ shares

    async def create_share(
        self, link_id: str, owner: str, *, expires: datetime, key: Key | None, album_id: int | None
    ) -> ShareLink:
        link = ShareLink(
            id=link_id,
            owner=owner,
            job=key[0] if key else None,
            idx=key[1] if key else None,
            album_id=album_id,
            created_at=_now(None),
            expires_at=utc(expires),
            revoked_at=None,
        )
        async with self.db.write_lock, self.db.session() as s:
            s.add(link)
            await s.flush()
        return link

    async def share(self, link_id: str) -> ShareLink | None:
        async with self.db.session() as s:
            return await s.scalar(select(ShareLink).where(ShareLink.id == link_id))

    async def shares(self, owner: str) -> Sequence[ShareLink]:
        async with self.db.session() as s:
            q = select(ShareLink).where(ShareLink.owner == owner)
            return list(await s.scalars(q.order_by(ShareLink.created_at.desc())))

    async def revoke_share(self, owner: str, link_id: str, *, now: datetime | None = None) -> bool:
        """False when the owner has no such link."""
        async with self.db.write_lock, self.db.session() as s:
            result = await s.execute(
                update(ShareLink)
                .where(ShareLink.id == link_id, ShareLink.owner == owner)
                .values(revoked_at=func.coalesce(ShareLink.revoked_at, _now(now)))
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    # ------------------------------------------------------------ forgetting

    async def forget(self, job: str, idx: int | None = None) -> None:
        """Every row naming the output (or, without ``idx``, any output of the job)."""
        async with self.db.write_lock, self.db.session() as s:
            for table in (GalleryMark, AlbumItem, ShareLink):
                q = delete(table).where(table.job == job)
                if idx is not None:
                    q = q.where(table.idx == idx)
                await s.execute(q)
