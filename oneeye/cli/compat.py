"""``oneeye compat``: face_recognition's two command-line tools, computed by OneEye.

``oneeye compat face_recognition KNOWN_PEOPLE_FOLDER IMAGE_TO_CHECK`` and ``oneeye compat
face_detection IMAGE_TO_CHECK`` take the same options and print the same lines as
face_recognition 1.3.0's ``face_recognition`` and ``face_detection``.
"""

from __future__ import annotations

import click

from oneeye.compat import face_detection_cli, face_recognition_cli


@click.group()
def compat() -> None:
    """face_recognition's command-line tools (same options, same output)."""


compat.add_command(face_recognition_cli.main)
compat.add_command(face_detection_cli.main)
