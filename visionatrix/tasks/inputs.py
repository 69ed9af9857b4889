"""A task's input files: uploads checked (images by their header, before any pixel is decoded),
references to other tasks' files resolved, and everything stored under the new task's id."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from sqlalchemy.ext.asyncio import AsyncSession

from visionatrix.db import tasks as db_tasks
from visionatrix.errors import InvalidInput
from visionatrix.schemas import UserInfo
from visionatrix.storage import Storage
from visionatrix.tasks.lifecycle import Status
from visionatrix.tasks.requests import FileRef, UploadedFile

# an input file: an upload, or a file of another task
Source = UploadedFile | Path


@dataclass(frozen=True)
class Stored:
    file_name: str
    file_size: int


def checked_upload(param: str, upload: UploadedFile, is_image: bool, max_pixels: int) -> UploadedFile:
    """The upload, if it can be an input: not empty; an image within ``max_pixels`` when one is wanted."""
    if not is_image:
        if upload.size == 0:
            raise InvalidInput(f"file for input '{param}' is empty")
        return upload
    name = upload.filename or "unnamed file"
    too_big = f"more pixels than this server accepts ({max_pixels}, VIX_MAX_IMAGE_PIXELS)"
    try:
        upload.file.seek(0)
        # the size comes from the header: nothing is decoded before it is judged
        with Image.open(upload.file) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise InvalidInput(f"input '{param}' is {width}x{height}: {too_big}")
            img.verify()
            fmt = (img.format or "png").lower()
    except Image.DecompressionBombError as exc:
        # far beyond Pillow's own ceiling it refuses to open the file at all
        raise InvalidInput(f"input '{param}' ({name}) has {too_big}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidInput(f"input '{param}' is not a valid image ({name})") from exc
    finally:
        upload.file.seek(0)
    return UploadedFile(
        f"upload.{'jpg' if fmt == 'jpeg' else fmt}", upload.file, upload.size, upload.content_type
    )


async def referenced_file(
    session: AsyncSession, storage: Storage, user: UserInfo, param: str, ref: FileRef
) -> Path:
    """The file another task of this user holds: one of its outputs, or one of its inputs."""
    source = await db_tasks.get(session, ref.task_id)
    if source is None or source.user_id != user.user_id:
        raise InvalidInput(f"input '{param}' refers to task {ref.task_id}, which does not exist")
    if ref.node_id is not None:
        if source.status != Status.COMPLETED:
            raise InvalidInput(f"input '{param}' refers to task {ref.task_id}, which has not finished")
        files = storage.output_files(source.id, ref.node_id)
        if not files:
            raise InvalidInput(f"input '{param}': task {ref.task_id} has no output for node {ref.node_id}")
        return files[0]
    index = ref.input_index or 0
    if not 0 <= index < len(source.input_files):
        raise InvalidInput(f"input '{param}': task {ref.task_id} has no input with index {index}")
    return storage.input_path(source.input_files[index]["file_name"])


def store_inputs(storage: Storage, task_id: int, sources: list[tuple[str, Source]]) -> dict[str, Stored]:
    """Store each source as input ``index`` of the task (blocking: run it in a thread)."""
    stored = {}
    for index, (param, source) in enumerate(sources):
        if isinstance(source, Path):
            name, size = storage.copy_to_input(source, task_id, index)
        else:
            name, size = storage.save_input(task_id, index, source.file, _extension(source))
        stored[param] = Stored(name, size)
    return stored


def _extension(upload: UploadedFile) -> str:
    suffix = Path(upload.filename or "").suffix.lstrip(".").lower()
    return suffix if suffix.isalnum() and 0 < len(suffix) <= 8 else "bin"
