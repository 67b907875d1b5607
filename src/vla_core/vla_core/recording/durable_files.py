"""Writing files so that they survive a crash: fsync of files and of the directories naming them.

A rename or a new file is only durable once its directory is synced too, so every helper that
creates or renames something syncs the parent as well.
"""
from __future__ import annotations

import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    """fsync a file or a directory by path."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` so that a crash leaves either the old or the new content."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())
    temporary.replace(path)
    fsync_path(path.parent)


def sync_tree(directory: Path) -> None:
    """fsync every file in `directory`, the directory itself and its parent."""
    for entry in directory.iterdir():
        if entry.is_file():
            fsync_path(entry)
    fsync_path(directory)
    fsync_path(directory.parent)
