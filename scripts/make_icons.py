"""Draw the app icons in pigeon/static/icons/ (run once; the PNGs are committed).

The mark is the top bar's: a round shape with one sharp corner, white on the accent blue.
"Any" icons are a rounded square; the maskable one fills the square and keeps the mark inside
the central safe zone (80%), since launchers crop it to their own shape.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

ACCENT = (11, 92, 173, 255)  # --accent
WHITE = (255, 255, 255, 255)
SHADE = (0, 0, 0, 46)
OUT = Path(__file__).resolve().parent.parent / "pigeon" / "static" / "icons"
SCALE = 4  # drawn large, then reduced: smooth edges


def mark(draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float]) -> None:
    """A circle whose lower-left quarter is a square corner with a small radius."""
    x0, y0, x1, y1 = box
    size = x1 - x0
    draw.ellipse(box, fill=WHITE)
    small = size * 0.12
    corner = (x0, y0 + size / 2, x0 + size / 2, y1)
    draw.rounded_rectangle(corner, radius=small, fill=WHITE, corners=(False, False, False, True))


def icon(px: int, *, maskable: bool) -> Image.Image:
    big = px * SCALE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if maskable:
        draw.rectangle((0, 0, big, big), fill=ACCENT)
        inset = big * 0.3
    else:
        draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=big * 0.22, fill=ACCENT)
        inset = big * 0.24
    mark(draw, (inset, inset, big - inset, big - inset))
    return image.resize((px, px), Image.Resampling.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for px in (192, 512):
        icon(px, maskable=False).save(OUT / f"icon-{px}.png", optimize=True)
    icon(512, maskable=True).save(OUT / "maskable-512.png", optimize=True)
    # iOS draws its own rounded corners on an opaque square
    icon(180, maskable=True).convert("RGB").save(OUT / "apple-touch-icon.png", optimize=True)


if __name__ == "__main__":
    main()
