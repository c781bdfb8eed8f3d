"""Own-data accuracy (issue 18): a Keras model trained here, outside edgekit, on digits with
its own preprocessing (x / 16, then (x - 0.3) / 0.4), scored by edgekit on an npz of the
raw arrays with the flags that say that preprocessing, fp32 and int8, against Keras.

Run: .venv/bin/python benchmarks/own_data.py [--out build/own_data]
Writes own_data.json in --out and prints the table benchmarks/README.md quotes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SCALE, MEAN, STD = 1 / 16, 0.3, 0.4


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("build/own_data"))
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    import keras
    from sklearn.datasets import load_digits

    from edgekit.data.feed import FeedFlags
    from edgekit.evaluate import evaluate
    from edgekit.optimize import optimize

    d = load_digits()
    x = d.images.astype(np.float32)[..., None]  # raw 0..16 values, as a user stores them
    y = d.target.astype(np.int64)
    idx = np.random.default_rng(0).permutation(len(x))
    tr, te = idx[:1400], idx[1400:]
    npz = args.out / "digits_raw.npz"
    np.savez(npz, x=x[tr], y=y[tr], x_test=x[te], y_test=y[te])

    def own_preprocessing(a: np.ndarray) -> np.ndarray:
        return (a * np.float32(SCALE) - np.float32(MEAN)) / np.float32(STD)

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(shape=(8, 8, 1)),
        keras.layers.Conv2D(16, 3, activation="relu", padding="same"),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ])  # fmt: skip
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(own_preprocessing(x[tr]), y[tr], epochs=args.epochs, batch_size=32, verbose=0)
    path = args.out / "model.keras"
    model.save(path)
    keras_acc = float(
        (model.predict(own_preprocessing(x[te]), verbose=0).argmax(1) == y[te]).mean()
    )

    flags = FeedFlags(scale=SCALE, mean=(MEAN,), std=(STD,))
    data = f"npz:{npz}"
    fp32 = evaluate(path, data, feed=flags)
    opt = optimize(path, "rpi4", out=args.out / "int8", quantize="int8", calib_data=data,
                   eval_data=data, measure=False, feed=flags)  # fmt: skip
    int8 = evaluate(opt.model_path, data, feed=flags)
    n = len(te)
    rows = [
        ("Keras itself", keras_acc),
        ("edgekit eval, .keras (fp32)", fp32.accuracy),
        ("edgekit optimize baseline, .tflite fp32", opt.report["baseline"]["accuracy"]),
        ("edgekit eval, int8 .tflite", int8.accuracy),
    ]
    result = {"test_samples": n, "flags": flags.text(), "rows": dict(rows),
              "within_one_sample": {k: abs(v - keras_acc) <= 1 / n + 1e-9 for k, v in rows}}  # fmt: skip
    (args.out / "own_data.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"| run ({n} test samples, edgekit flags: {flags.text()}) | accuracy | vs Keras |")
    print("|---|---|---|")
    for name, acc in rows:
        print(f"| {name} | {acc:.2%} | {round((acc - keras_acc) * n):+d} samples |")
    return 0 if all(result["within_one_sample"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
