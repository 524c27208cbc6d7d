"""``avatar-app demo``: the scripted sweep of every control, rendered to an MP4."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from avatar_app.atomic_output import atomic_output
from avatar_app.pipeline import builder
from avatar_app.pipeline.settings import PipelineSettings
from avatar_app.sweep import sweep_controls, sweep_frame_count
from avatar_app.video_writer import VideoWriter


def render_demo(
    output: Path, settings: PipelineSettings, progress: Callable[[int, int], None] | None = None
) -> int:
    """Render the sweep at ``settings.fps``; returns the number of frames."""
    portrait = builder.ready_portrait(settings)
    total = sweep_frame_count(settings.fps)
    width, height = settings.size
    with (
        atomic_output(output) as partial,
        VideoWriter(partial, width, height, settings.fps) as video,
    ):
        for i in range(total):
            video.write(portrait.render(sweep_controls(i / settings.fps)))
            if progress:
                progress(i + 1, total)
    return total
