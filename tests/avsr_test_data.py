"""Tiny audio-visual data for the AVSR tests: tone waveforms plus matching mouth-crop frames."""
import math
from pathlib import Path

import numpy as np
import soundfile
import yaml

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "conf" / "avsr" / "demo" / "train_avsr_lrsms_tiny.yaml"
FS = 16000
ALPHABET = "abcd"
FRAME = 40  # test frames are FRAME x FRAME pixels, cropped to CROP
CROP = 32


def tiny_config(path: Path, **model_conf) -> Path:
    """The tiny demo config with small frames (CROP from FRAME) and ``model_conf`` overrides."""
    config = yaml.safe_load(TINY.read_text())
    config["video_frontend_conf"]["crop_size"] = CROP
    config["model_conf"].update(model_conf)
    path.write_text(yaml.safe_dump(config))
    return path


def utterance(text: str, rng: np.random.Generator):
    """0.2 s per letter: a tone of the letter's pitch and a mouth opening of the letter's height."""
    samples = int(0.2 * FS)
    t = np.arange(samples) / FS
    waves, frames = [], []
    for ch in text:
        k = ALPHABET.index(ch)
        waves.append(0.5 * np.sin(2 * math.pi * (300 + 150 * k) * t) * np.hanning(samples))
        frame = np.full((FRAME, FRAME), 60, dtype=np.uint8)
        half = 3 + 3 * k
        frame[FRAME // 2 - half : FRAME // 2 + half, 10:30] = 200
        frames += [frame] * 5  # 0.2 s at 25 frames/s
    wave = np.concatenate(waves) + 0.01 * rng.standard_normal(samples * len(text))
    video = np.stack(frames + frames[-1:])  # one frame more than the audio gives: alignment trims it
    return wave.astype(np.float32), video


def write_av_dataset(root: Path, texts, seed: int = 0) -> Path:
    """wav.scp, video.scp (uint8 .npy), text and speech_shape under ``root``."""
    rng = np.random.default_rng(seed)
    (root / "wav").mkdir(parents=True, exist_ok=True)
    (root / "video").mkdir(parents=True, exist_ok=True)
    scp, vscp, text, shape = [], [], [], []
    for i, words in enumerate(texts):
        uid = f"utt{i:03d}"
        wave, video = utterance(words.replace(" ", ""), rng)
        soundfile.write(root / "wav" / f"{uid}.wav", wave, FS)
        np.save(root / "video" / f"{uid}.npy", video)
        scp.append(f"{uid} {root / 'wav' / f'{uid}.wav'}\n")
        vscp.append(f"{uid} {root / 'video' / f'{uid}.npy'}\n")
        text.append(f"{uid} {words}\n")
        shape.append(f"{uid} {len(wave)}\n")
    (root / "wav.scp").write_text("".join(scp))
    (root / "video.scp").write_text("".join(vscp))
    (root / "text").write_text("".join(text))
    (root / "speech_shape").write_text("".join(shape))
    (root.parent / "tokens.txt").write_text("\n".join(["<blank>", "<unk>", "<space>", *ALPHABET, "<sos/eos>"]) + "\n")
    return root


def demo_corpora_module():
    """demo/make_demo_corpora.py as a module (its write_mp4 and face frames)."""
    from conftest import module_from_file

    return module_from_file(REPO / "demo" / "make_demo_corpora.py")


def write_ramp_clip(path, fps):
    """A 1.2 s clip at ``fps``: a 220 Hz tone, 64x64 frames, frame i = grey 6i (the demo generator's write_mp4)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(int(1.2 * FS)) / FS)).astype(np.float32)
    ramp = np.stack([np.full((64, 64), 6 * i, np.uint8) for i in range(int(round(1.2 * fps)))])
    demo_corpora_module().write_mp4(path, tone, ramp, fps=fps)


def assert_ramp_at_25_fps(rois, source_fps):
    """``rois`` of a :func:`write_ramp_clip` clip brought to 25 fps: 1.2 s · 25 frames, and frame k shows the
    source frame on screen at k/25 s (index floor(k · fps / 25))."""
    assert len(rois) == round(1.2 * 25) == 30
    expected = 6 * np.floor(np.arange(30) * source_fps / 25)
    assert np.abs(rois[:, 48, 48].astype(float) - expected).max() <= 3, rois[:, 48, 48]
