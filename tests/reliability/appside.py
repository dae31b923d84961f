"""Code that runs *inside* app subprocesses (``manage.py shell -c``) pointed at a private stack.

Fault tests talk to their own PostgreSQL cluster, which the pytest process's Django connection
does not point at; set-up goes through the real services in a helper process instead, and the
results are read back with plain SQL (``media_consistency``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.reliability.servers import REPO

#: (table, file columns) of every row that points at a media file
FILE_COLUMNS: dict[str, tuple[str, ...]] = {
    "seller_shootphoto": ("original", "image"),
    "seller_photoanalysis": ("pose_image", "person_mask"),
    "seller_maskversion": ("mask", "feathered"),
    "generation_asset": ("file", "poster"),
}


def run_in_app(code: str, *, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``code`` with Django set up for ``env``; its last stdout line is returned as JSON."""
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def last_json(result: subprocess.CompletedProcess):
    if result.returncode != 0:
        raise RuntimeError(f"helper failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- executed in the app process -------------------------------------------------------------


def create_seller(username: str, password: str) -> dict:
    from core.roles import ensure_groups
    from seller.accounts import seller_create

    ensure_groups()
    seller = seller_create(
        username=username,
        password=password,
        store_name=f"Store {username}",
        catalog_seller_id=f"cat-{username}",
    )
    return {"seller": seller.pk}


def create_shoot(username: str, photos: list[str], sku: str, seller_id: int | None = None) -> dict:
    """Upload real photos through ``shoot_create`` (storage, rows, enqueue after commit).

    With ``seller_id`` the seller is not looked up, so while the database is down the upload
    still gets as far as storing its files before its transaction fails.
    """
    from django.core.files.uploadedfile import SimpleUploadedFile

    from seller.models import Seller
    from seller.uploads import shoot_create

    if seller_id is not None:
        seller = Seller(pk=seller_id)
    else:
        seller = Seller.objects.get(user__username=username)
    files = [SimpleUploadedFile(Path(p).name, Path(p).read_bytes()) for p in photos]
    shoot = shoot_create(
        seller=seller,
        sku=sku,
        title=f"Garment {sku}",
        category="top",
        scene="studio_white",
        files=files,
    )
    return {"shoot": shoot.pk, "job": shoot.analysis_job_id}


def call(func: str, **kwargs) -> str:
    """Python source that calls ``func(**kwargs)`` here and prints its JSON result."""
    return (
        "import json; from tests.reliability import appside; "
        f"print(json.dumps(appside.{func}(**{kwargs!r})))"
    )


# --- read back from the test process (plain SQL) ---------------------------------------------


def media_consistency(query, media_root: Path, *, ignore: tuple[str, ...] = ()) -> dict:
    """Files on disk vs. files the database points at.

    ``query(sql, params)`` returns rows (plain SQL, so the test can read a private cluster).
    ``orphans``: on disk, no row (a half-done write that was not cleaned up);
    ``missing``: a row, no file (an asset lost). Both must be empty after any fault.
    """
    referenced: set[str] = set()
    for table, columns in FILE_COLUMNS.items():
        if query("SELECT to_regclass(%s)", (table,))[0][0] is None:
            continue
        for column in columns:
            sql = f"SELECT {column} FROM {table} WHERE {column} <> ''"  # noqa: S608
            referenced.update(name for (name,) in query(sql, ()))
    on_disk: set[str] = set()
    for folder, _dirs, names in os.walk(media_root):
        for name in names:
            relative = str(Path(folder, name).relative_to(media_root))
            if not relative.startswith(ignore):
                on_disk.add(relative)
    return {
        "orphans": sorted(on_disk - referenced),
        "missing": sorted(referenced - on_disk),
        "files": len(on_disk),
    }


def psycopg_query(conn):
    return lambda sql, params=(): conn.execute(sql, params).fetchall()


def django_query(sql: str, params=()) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
