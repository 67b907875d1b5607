"""MP4 video files of camera frames, encoded and decoded with PyAV, as LeRobot v3.0 stores them.

One file holds many episodes back to back: frame k of the file has presentation time k / fps,
so an episode's frames are found at its `from_timestamp` plus the frame's own timestamp.
Encoding follows LeRobot's choices (yuv420p, a keyframe every `gop` frames so that a reader
seeking to any frame decodes at most `gop` frames); the codec is libx264 by default because it
encodes several times faster than libsvtav1 on a small CPU (preset ultrafast: conversion must
keep well ahead of real time on two cores), and libsvtav1 is available too.

Each episode is encoded on its own into a clip (in whichever process made the episode, so
conversions encode in parallel), and `VideoJoiner` then copies the clips' compressed packets
into the camera's file with shifted timestamps, without decoding or re-encoding. A clip starts
with a keyframe, so every episode in the joined file starts on one and a reader seeking to an
episode's first frame never needs frames of the episode before. Neither encoder setting
reorders frames (no B-frames), so a packet's decode and presentation order agree.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

CODECS = ("libx264", "libsvtav1")


class VideoError(ValueError):
    """A video that cannot be written or read as expected; the message names the file."""


def _codec_options(codec: str, crf: int, gop: int) -> dict[str, str]:
    if codec == "libx264":
        return {"crf": str(crf), "g": str(gop), "preset": "ultrafast", "tune": "zerolatency"}
    if codec == "libsvtav1":
        return {"crf": str(crf), "g": str(gop), "preset": "12"}
    raise VideoError(f"unknown video codec {codec!r}; expected one of {', '.join(CODECS)}")


class VideoEncoder:
    """Appends RGB frames of one camera to one mp4 file; frame k is shown at k / fps."""

    def __init__(self, path: Path, fps: float, width: int, height: int, codec: str = "libx264",
                 crf: int = 23, gop: int = 2) -> None:
        if width % 2 or height % 2:
            raise VideoError(f"{path}: yuv420p needs an even width and height, got {width}x{height}")
        options = _codec_options(codec, crf, gop)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.width, self.height = width, height
        self.frames = 0
        self._rate = Fraction(fps).limit_denominator(1001)
        self._container = av.open(str(path), mode="w")
        self._stream = self._container.add_stream(codec, rate=self._rate, options=options)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "yuv420p"
        self._stream.time_base = 1 / self._rate
        self._stream.thread_count = 1  # conversions run episodes in parallel processes instead
        self._reformatter = VideoReformatter()

    def write(self, frames: np.ndarray) -> None:
        """Append (N, height, width, 3) uint8 RGB frames."""
        if frames.ndim != 4 or frames.shape[1:] != (self.height, self.width, 3) or frames.dtype != np.uint8:
            raise VideoError(f"{self.path}: frames must be (N, {self.height}, {self.width}, 3) uint8, "
                             f"got {frames.shape} {frames.dtype}")
        for image in frames:
            self.write_image(image)

    def write_image(self, image: np.ndarray, repeat: int = 1) -> None:
        """Append one (height, width, 3) uint8 RGB image `repeat` times (a camera slower than the
        dataset's rate repeats frames).

        The image is handed to FFmpeg without a copy (rows may be padded, as a raw camera message's
        are) and converted to yuv420p once, by one reformatter kept for the whole clip with the
        settings the encoder itself would use (bilinear, the encoder's threads), so the pixels are
        exactly those of letting the encoder convert. Made per frame, as `VideoFrame.reformat` does,
        the converter's set-up cost more than the conversion at 224 x 224."""
        if image.strides[1:] != (3, 1):  # a channel-reversed or column-strided view: FFmpeg needs packed rows
            image = np.ascontiguousarray(image)
        context = self._stream.codec_context
        frame = self._reformatter.reformat(av.VideoFrame.from_numpy_buffer(image, format="rgb24"), context.width,
                                           context.height, context.format, threads=context.thread_count)
        for _ in range(repeat):
            frame.pts = self.frames
            self._container.mux(self._stream.encode(frame))
            self.frames += 1

    def close(self) -> None:
        self._container.mux(self._stream.encode(None))
        self._container.close()


class VideoJoiner:
    """Appends single-episode clips of one camera to one mp4 file, back to back, by copying packets.

    Frame k of the joined file is shown at k / fps, as if one encoder had written it; clips must
    share codec, size and codec headers (one encoder setting makes them).
    """

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.frames = 0
        self.width = self.height = 0
        self._rate = Fraction(fps).limit_denominator(1001)
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._headers: tuple = ()

    def append(self, clip: Path, frames: int) -> int:
        """Copy `clip` (`frames` frames, the first a keyframe) to the end; returns the frame index it starts at."""
        start = self.frames
        with av.open(str(clip)) as source:
            if not source.streams.video:
                raise VideoError(f"{clip}: expected a video stream, found none")
            stream = source.streams.video[0]
            context = stream.codec_context
            headers = (context.name, context.width, context.height, context.pix_fmt, bytes(context.extradata or b""))
            if self._stream is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._container = av.open(str(self.path), mode="w")
                self._stream = self._container.add_stream_from_template(stream)
                self.width, self.height, self._headers = context.width, context.height, headers
            elif headers != self._headers:
                raise VideoError(f"{clip}: {headers[0]} {headers[1]}x{headers[2]} {headers[3]} cannot join "
                                 f"{self.path} ({self._headers[0]} {self._headers[1]}x{self._headers[2]} "
                                 f"{self._headers[3]}, same codec headers expected)")
            shift: int | None = None
            copied = 0
            for packet in source.demux(stream):
                if packet.dts is None:  # the demuxer's end-of-stream marker
                    continue
                if shift is None:
                    if not packet.is_keyframe:
                        raise VideoError(f"{clip}: first packet is not a keyframe; an episode must start on one")
                    # the clip's first frame becomes frame `start` of the joined file
                    shift = round(start / self._rate / stream.time_base) - packet.pts
                packet.pts += shift
                packet.dts += shift
                packet.stream = self._stream
                self._container.mux(packet)
                copied += 1
        if copied != frames:
            raise VideoError(f"{clip}: {copied} frame(s) in the clip, the episode has {frames}")
        self.frames += copied
        return start

    def close(self) -> None:
        if self._container is not None:
            self._container.close()


def video_info(path: Path) -> dict:
    """The `info` block LeRobot keeps per video feature in meta/info.json."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise VideoError(f"{path}: expected a video stream, found none")
        stream = container.streams.video[0]
        return {
            "video.height": stream.height,
            "video.width": stream.width,
            "video.codec": stream.codec_context.codec.canonical_name,
            "video.pix_fmt": stream.pix_fmt,
            "video.is_depth_map": False,
            "video.fps": round(float(stream.average_rate or stream.base_rate)),
            "video.channels": 3,
            "has_audio": bool(container.streams.audio),
        }


def decode_frames(path: Path, transform: Callable[[np.ndarray], np.ndarray] | None = None
                  ) -> Iterator[tuple[float, np.ndarray]]:
    """(presentation time in seconds, RGB frame) for every frame of the file, in order;
    `transform` (e.g. a resize) is applied frame by frame so that a long file never sits in
    memory at full resolution."""
    if not path.is_file():
        raise VideoError(f"video file {path} does not exist")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: expected a video stream, found none")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                image = frame.to_ndarray(format="rgb24")
                yield float(frame.pts * stream.time_base), transform(image) if transform else image
    except av.error.FFmpegError as error:
        raise VideoError(f"{path}: not a readable video: {error}") from error
