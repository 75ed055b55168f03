"""Train an MLP on scikit-learn's bundled handwritten digits (no download) with a progress bar per epoch,
then report the accuracy on a held-out test set and round-trip the model through a JSON checkpoint.

The 1,797 images are split once into train (70%), validation (15%) and test (15%): training reports the
validation accuracy after every epoch, and the test images, used for neither training nor validation, give
the final accuracy.

    pip install scikit-learn tqdm   # tqdm is optional: without it each epoch prints one line
    python examples/train_digits.py [--epochs 20] [--checkpoint digits.json]
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
from sklearn.datasets import load_digits

import keydnn
from keydnn.nn import Dropout, Linear, ReLU, Sequential, SoftmaxCrossEntropy
from keydnn.optim import Adam


def split(n: int, val_fraction: float, test_fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    """Disjoint (train, validation, test) index arrays covering range(n), shuffled with ``seed``."""
    if not (0 < val_fraction and 0 < test_fraction and val_fraction + test_fraction < 1):
        raise ValueError(f"validation and test fractions must be positive and sum below 1, got "
                         f"{val_fraction} and {test_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_val = round(n * test_fraction), round(n * val_fraction)
    return order[n_test + n_val:], order[n_test:n_test + n_val], order[:n_test]


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--test-fraction", type=float, default=0.15)
    parser.add_argument("--checkpoint", default=os.path.join(tempfile.gettempdir(), "keydnn_digits.json"))
    args = parser.parse_args(argv)

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)  # pixel intensities 0..16 -> 0..1
    y = digits.target.astype(np.int64)
    train, val, test = split(len(x), args.val_fraction, args.test_fraction, args.seed)
    print(f"{len(train)} training, {len(val)} validation and {len(test)} test images")

    keydnn.manual_seed(args.seed)
    model = Sequential(Linear(64, 128), ReLU(), Dropout(0.1), Linear(128, 128), ReLU(), Linear(128, 10))
    print(model.summary())
    loss = SoftmaxCrossEntropy()
    model.fit(x[train], y[train], loss=loss, optimizer=Adam(model.parameters(), lr=args.lr),
              metrics=["accuracy"], batch_size=args.batch_size, epochs=args.epochs,
              validation_data=(x[val], y[val]), verbose=1)

    validation = model.evaluate(x[val], y[val], loss, ["accuracy"])
    result = model.evaluate(x[test], y[test], loss, ["accuracy"])
    print(f"validation accuracy: {validation['accuracy']:.4f} ({len(val)} images, watched during training)")
    print(f"test accuracy: {result['accuracy']:.4f} ({len(test)} images used for neither training nor "
          f"validation), loss {result['loss']:.4f}")

    model.save_json(args.checkpoint)
    restored = Sequential.load_json(args.checkpoint)
    same = np.array_equal(restored.predict(x[test]).to_numpy(), model.predict(x[test]).to_numpy())
    print(f"checkpoint {args.checkpoint}: reloaded model gives identical predictions: {same}")
    return {"validation_accuracy": validation["accuracy"], "test_accuracy": result["accuracy"],
            "reloaded_identical": float(same)}


if __name__ == "__main__":
    main()
