"""Real series that ship inside installed packages, as frames ``rnnkit.tasks.forecast`` reads.

Nothing is downloaded: ``vega_datasets`` (a core dependency) carries the Seattle weather and the
stock prices, ``statsmodels`` (the ``examples`` extra) the Mauna Loa CO2 record. Each loader
returns the data as published, with a ``date`` column; where the data has holes the docstring
says so, and the forecasting example fills them with the task's ``fill`` setting.

``stdlib_sources`` gives text instead: the Python standard library's own source files, which
the text-generation demo trains on.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pandas as pd

from rnnkit.errors import UserError


def seattle_weather() -> pd.DataFrame:
    """Seattle's daily weather 2012-2015, 1461 days without gaps: ``date``, ``precipitation``
    (mm), ``temp_max`` and ``temp_min`` (degrees C), ``wind`` (m/s) and ``weather`` (a word)."""
    local_data = _vega()
    return pd.DataFrame(local_data.seattle_weather())


def stocks() -> pd.DataFrame:
    """Monthly closing prices (USD) of AAPL, AMZN, GOOG, IBM and MSFT, January 2000 to March
    2010, in long format: ``symbol``, ``date`` (first of the month), ``price``. GOOG starts in
    August 2004, when it was listed; the others have all 123 months."""
    local_data = _vega()
    return pd.DataFrame(local_data.stocks())[["symbol", "date", "price"]]


def co2() -> pd.DataFrame:
    """Weekly mean atmospheric CO2 (ppm) at Mauna Loa, March 1958 to December 2001: ``date``
    (Saturdays, no week left out) and ``co2``, which is NaN in the 59 weeks without
    measurements."""
    try:
        from statsmodels.datasets import co2 as dataset
    except ImportError:
        raise UserError("the CO2 example needs statsmodels: pip install statsmodels.") from None
    frame = dataset.load().data
    return frame.rename_axis("date").reset_index()


def _vega():
    try:
        from vega_datasets import local_data
    except ImportError:
        raise UserError("this example needs vega_datasets: pip install vega_datasets.") from None
    return local_data


def stdlib_sources(max_bytes: int = 2_000_000) -> list[Path]:
    """Python's own standard-library modules (the top-level ``.py`` files, sorted by name, up to
    ``max_bytes``): a text corpus every machine with Python has offline."""
    files, total = [], 0
    for f in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        size = f.stat().st_size
        if total + size > max_bytes:
            break
        files.append(f)
        total += size
    if not files:
        raise UserError("the Python standard library's source files were not found")
    return files
