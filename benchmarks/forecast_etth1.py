"""Long-horizon forecasting benchmark: ETTh1 and exchange_rate with the standard protocol.

Protocol (Zhou et al. 2021; Lin et al. 2023): ETTh1's first 20 months, 12/4/4 months for train /
validation / test (8,640 / 2,880 / 2,880 hourly rows), every variable z-scored with training
statistics, all 7 variables forecast (channel-independent SegRNN), MSE and MAE in z-score units
over every test window (stride 1; the look-back of the first ones reaches back into validation).
Univariate: only OT, scaled by its own training statistics, same windows. exchange_rate: 8 daily
series, split 70/10/20. Beside the model: repeating the last value and seasonal naive on the same
windows, and the published numbers.

    python benchmarks/forecast_etth1.py                       # everything (hours on 2 cores)
    python benchmarks/forecast_etth1.py --case ot             # univariate OT, L=96, H=96
    python benchmarks/forecast_etth1.py --case etth1 --lookback 720 --horizons 96
    python benchmarks/forecast_etth1.py --case exchange --horizons 96 --max-time 3m

The data is read from ../shared/data/timeseries/ beside the project; without it the script says
so and exits 0.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from rnnkit.tasks import forecast as F

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "timeseries"
ETT_ROWS = (8640, 2880, 2880)  # 12 / 4 / 4 months of hours

# Published test MSE on ETTh1, multivariate (Lin et al. 2023, table 2; look-back 720) and
# DLinear at look-back 96 (the shared data README).
PUBLISHED = {
    ("etth1", 720): {"GRU": [1.135, 1.123, 1.080, 1.089], "DLinear": [0.381, 0.419, 0.454, 0.499],
                     "SegRNN": [0.351, 0.392, 0.423, 0.466]},
    ("etth1", 96): {"DLinear": [0.374, 0.408, 0.429, 0.440]},
}
HORIZONS = [96, 192, 336, 720]
OT_TARGET = 0.060  # univariate OT, L=96, H=96: the target (last value scores 0.069)


def etth1() -> pd.DataFrame:
    return pd.read_csv(DATA / "ETTh1.csv").iloc[: sum(ETT_ROWS)]


def exchange() -> pd.DataFrame:
    df = pd.read_csv(DATA / "exchange_rate.txt.gz", header=None)
    df.columns = [f"cur{i}" for i in range(df.shape[1])]
    return df


def settings(case: str, lookback: int, horizon: int, args) -> dict:
    """SegRNN's published settings (segment 48 at look-back 720, width 512, dropout 0.5,
    batch 256, lr 1e-3) on the 7 ETTh1 variables; smaller widths where the data is small."""
    if case == "exchange":
        data = dict(target=",".join(f"cur{i}" for i in range(8)), val=0.1, test=0.2)
    elif case == "ot":
        data = dict(target="OT", val=ETT_ROWS[1], test=ETT_ROWS[2])
    else:
        data = dict(target="HUFL,HULL,MUFL,MULL,LUFL,LULL,OT", val=ETT_ROWS[1], test=ETT_ROWS[2])
    return dict(
        **data, calendar="none", lookback=lookback, horizon=horizon, model="segrnn",
        hidden=args.hidden, dropout=args.dropout, norm="last", loss=args.loss,
        segment=min(48, lookback // 2) if lookback >= 96 else 0,
        batch_size=args.batch_size, lr=args.lr, epochs=args.epochs, max_time=args.max_time,
        patience=args.patience, monitor="val_mse", schedule="cosine", quiet=not args.verbose,
        seed=args.seed)


def run_one(case: str, df: pd.DataFrame, lookback: int, horizon: int, args) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"bench-{case}-"))
    try:
        start = time.perf_counter()
        trained = F.train(df, out / "run", **settings(case, lookback, horizon, args))
        wall = time.perf_counter() - start
        log = pd.read_csv(out / "run" / "metrics.csv")
        fit_s = float(log["time"].max())
        epochs = int(log["epoch"].max())
        result = trained.backtest(df, scaled=True)  # the test split, every window, z-scores
    finally:
        shutil.rmtree(out, ignore_errors=True)
    m = result.metrics
    return {"case": case, "L": lookback, "H": horizon, "mse": m.loc["model", "mse"],
            "mae": m.loc["model", "mae"], "last_mse": m.loc["last_value", "mse"],
            "snaive_mse": m.loc["seasonal_naive", "mse"], "windows": len(result.times),
            "fit_s": fit_s, "wall_s": wall, "epochs": epochs}


def published(case: str, lookback: int, horizon: int) -> str:
    table = PUBLISHED.get((case, lookback), {})
    if horizon not in HORIZONS:
        return ""
    i = HORIZONS.index(horizon)
    return " ".join(f"{name} {values[i]:.3f}" for name, values in table.items())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case", default="all", choices=["all", "etth1", "ot", "exchange"])
    p.add_argument("--lookback", default="720,96", help="comma-separated (etth1, exchange)")
    p.add_argument("--horizons", default="96,192,336,720")
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--loss", default="mae", choices=["mae", "mse"])
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--max-time", default="10m", help="training budget per run")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    if not (DATA / "ETTh1.csv").is_file():
        print(f"skipped: {DATA} holds no ETTh1.csv (the shared data folder is absent)")
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    lookbacks = [int(v) for v in args.lookback.split(",")]
    horizons = [int(v) for v in args.horizons.split(",")]
    runs = []
    if args.case in ("all", "ot"):
        runs.append(("ot", etth1, 96, 96))
    if args.case in ("all", "etth1"):
        runs += [("etth1", etth1, lb, h) for lb in lookbacks for h in horizons]
    if args.case in ("all", "exchange"):
        runs += [("exchange", exchange, lb, h) for lb in lookbacks for h in horizons]
    print(f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch "
          f"threads, torch {torch.__version__}; budget {args.max_time} per run; SegRNN "
          f"width {args.hidden}, {args.loss} loss")
    header = (f"{'case':9} {'L':>4} {'H':>4} {'MSE':>7} {'MAE':>7} {'last':>7} {'snaive':>7} "
              f"{'fit s':>6} {'ep':>3}  published MSE")
    print(header)
    print("-" * len(header))
    for case, load, lookback, horizon in runs:
        row = run_one(case, load(), lookback, horizon, args)
        note = published(case, lookback, horizon)
        if case == "ot":
            note = f"target <= {OT_TARGET:.3f}"
        print(f"{case:9} {lookback:>4} {horizon:>4} {row['mse']:7.4f} {row['mae']:7.4f} "
              f"{row['last_mse']:7.4f} {row['snaive_mse']:7.4f} {row['fit_s']:6.0f} "
              f"{row['epochs']:>3}  {note}", flush=True)


if __name__ == "__main__":
    main()
