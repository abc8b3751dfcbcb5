"""Translated names from the message catalogues of Debian's iso-codes project, which ship inside
the ``pycountry`` package: the English names of countries, former countries, currencies,
scripts and languages beside their translations (German, French and many more). A small real
translation set that needs no download (``rnnkit demo``).
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

from rnnkit.errors import UserError

# ISO 3166-1 countries, 3166-3 former countries, 4217 currencies, 15924 scripts, 639-3 languages
DOMAINS = ("iso3166-1", "iso3166-3", "iso4217", "iso15924", "iso639-3")


def read_mo(path: str | Path) -> dict[str, str]:
    """The translations of a GNU gettext ``.mo`` file (msgid -> msgstr), leaving out the header,
    entries with a context and plural forms."""
    data = Path(path).read_bytes()
    magic = data[:4]
    order = {b"\xde\x12\x04\x95": "<", b"\x95\x04\x12\xde": ">"}.get(magic)
    if order is None:
        raise UserError(f"{path} is not a gettext .mo file.")
    count, originals, translations = struct.unpack(order + "3I", data[8:20])

    def string(table: int, i: int) -> str:
        length, offset = struct.unpack(order + "2I", data[table + 8 * i:table + 8 * i + 8])
        return data[offset:offset + length].decode("utf-8")

    out = {}
    for i in range(count):
        msgid = string(originals, i)
        if msgid and "\x00" not in msgid and "\x04" not in msgid:
            out[msgid] = string(translations, i)
    return out


def locales_dir() -> Path:
    try:
        import pycountry
    except ImportError:
        raise UserError("the translation example needs pycountry (it ships the iso-codes "
                        "translations): pip install pycountry.") from None
    return Path(pycountry.LOCALES_DIR)


def translated_names(language: str = "de", domains: tuple[str, ...] = DOMAINS,
                     only_changed: bool = True) -> list[tuple[str, str]]:
    """``(English name, its translation into language)`` pairs of ``domains``, in catalogue
    order; a name listed twice keeps its first translation. ``only_changed`` leaves out the
    names the translation keeps as they are (most languages and places keep their own name)."""
    folder = locales_dir() / language / "LC_MESSAGES"
    if not folder.is_dir():
        raise UserError(f"pycountry has no translations into {language!r}.")
    pairs: dict[str, str] = {}
    for domain in domains:
        path = folder / f"{domain}.mo"
        if not path.exists():
            continue
        for english, translated in read_mo(path).items():
            english, translated = " ".join(english.split()), " ".join(translated.split())
            if translated and (translated != english or not only_changed):
                pairs.setdefault(english, translated)
    if not pairs:
        raise UserError(f"pycountry's {language!r} catalogues hold no translated names.")
    return list(pairs.items())


def split_names(pairs: list[tuple[str, str]], test_fraction: float, seed: int = 0
                ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(train, test)``: a random ``test_fraction`` of the pairs held out."""
    order = list(pairs)
    random.Random(seed).shuffle(order)
    n_test = max(1, round(len(order) * test_fraction))
    return order[n_test:], order[:n_test]


def write_pairs(folder: str | Path, name: str, pairs: list[tuple[str, str]],
                languages: tuple[str, str] = ("en", "de")) -> tuple[Path, Path]:
    """``NAME.SRC`` and ``NAME.TGT`` in ``folder``, aligned line by line; their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = tuple(folder / f"{name}.{lang}" for lang in languages)
    for path, side in zip(paths, zip(*pairs, strict=True), strict=True):
        path.write_text("".join(line + "\n" for line in side), encoding="utf-8")
    return paths
