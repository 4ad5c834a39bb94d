"""How long `pigeon.media.processing.process` takes for the uploads people send most: a phone
photo (a ~5 MB, 4000x3000 JPEG, upright and with EXIF orientation 6), a ~2 MB PNG of a
photo-like 1920x1080 picture (noise is the slowest content to compress) and a 2560x1440 PNG
screenshot, each including its thumbnail.

    .venv/bin/python benchmarks/media_processing.py [--runs 15]

The samples are generated (photos: gradients under Gaussian noise, which compress alike);
each is processed `runs` times after one warm-up. Figures are the median and the slowest run,
in milliseconds, with the CPU time (all threads) beside the wall-clock median.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

from pigeon.media.processing import process
from pigeon.settings import DEFAULT_MEDIA_TYPES


def noisy(width: int, height: int, sigma: float) -> Image.Image:
    """Something that compresses like a photo: gradients under noise, different per channel."""
    ramp = Image.linear_gradient("L").resize((width, height))
    channels = [
        Image.blend(ramp, Image.effect_noise((width, height), sigma), 0.5),
        Image.blend(ramp.rotate(180), Image.effect_noise((width, height), sigma), 0.5),
        Image.effect_noise((width, height), sigma),
    ]
    return Image.merge("RGB", channels)


def samples(folder: Path) -> dict[str, Path]:
    photo = noisy(4000, 3000, 13)
    upright = folder / "photo.jpg"
    photo.save(upright, "JPEG", quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6
    turned = folder / "photo-orientation-6.jpg"
    photo.save(turned, "JPEG", quality=95, exif=exif)
    picture = folder / "picture.png"
    noisy(1920, 1080, 1.2).save(picture, "PNG")
    shot = folder / "screenshot.png"
    screenshot(2560, 1440).save(shot, "PNG")
    return {
        "JPEG": upright,
        "JPEG, orientation 6": turned,
        "PNG, photo-like": picture,
        "PNG, screenshot": shot,
    }


def screenshot(width: int, height: int) -> Image.Image:
    """Lines of text beside panels of flat colour and a photo, like a chat window."""
    chance = random.Random(1)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for top in range(0, height, 18):
        words = " ".join(f"word{chance.randrange(10**5)}" for _ in range(chance.randint(3, 30)))
        draw.text((chance.randint(10, 400), top), words, fill=(chance.randint(0, 90),) * 3)
    for _ in range(40):
        left, top = chance.randrange(width - 300), chance.randrange(height - 200)
        colour = tuple(chance.randrange(256) for _ in range(3))
        draw.rectangle((left, top, left + chance.randint(10, 300), top + 200), fill=colour)
    image.paste(noisy(640, 480, 8), (width - 700, 100))
    return image


def measure(upload: Path, workdir: Path, runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds of each run. CPU time counts every thread, so it can
    exceed the wall clock; on a busy machine it still shows the cost, where the wall clock
    also counts waiting for a core."""
    wall, cpu = [], []
    for _ in range(runs + 1):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = process(
            upload, workdir, allowed=DEFAULT_MEDIA_TYPES, max_pixels=40_000_000, thumb_px=320
        )
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        result.path.unlink()
        assert result.thumbnail is not None
        result.thumbnail.unlink()
    return wall[1:], cpu[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, upload in samples(folder).items():
            wall, cpu = measure(upload, folder, args.runs)
            size = upload.stat().st_size / 1e6
            print(
                f"{name:20} {size:4.1f} MB  median {statistics.median(wall):6.1f} ms"
                f" (CPU {statistics.median(cpu):6.1f} ms)  slowest {max(wall):6.1f} ms"
                f"  ({args.runs} runs)"
            )


if __name__ == "__main__":
    main()
