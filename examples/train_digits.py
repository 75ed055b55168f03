"""Train an MLP on scikit-learn's bundled handwritten digits (no download) with a progress bar per epoch,
then print the held-out accuracy and round-trip the model through a JSON checkpoint.

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default=os.path.join(tempfile.gettempdir(), "keydnn_digits.json"))
    args = parser.parse_args()

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)  # pixel intensities 0..16 -> 0..1
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(args.seed).permutation(len(x))
    train, test = order[:1400], order[1400:]

    keydnn.manual_seed(args.seed)
    model = Sequential(Linear(64, 128), ReLU(), Dropout(0.1), Linear(128, 128), ReLU(), Linear(128, 10))
    print(model.summary())
    loss = SoftmaxCrossEntropy()
    model.fit(x[train], y[train], loss=loss, optimizer=Adam(model.parameters(), lr=args.lr),
              metrics=["accuracy"], batch_size=args.batch_size, epochs=args.epochs,
              validation_data=(x[test], y[test]), verbose=1)

    result = model.evaluate(x[test], y[test], loss, ["accuracy"])
    print(f"held-out accuracy: {result['accuracy']:.4f} ({len(test)} images), loss {result['loss']:.4f}")

    model.save_json(args.checkpoint)
    restored = Sequential.load_json(args.checkpoint)
    same = np.array_equal(restored.predict(x[test]).to_numpy(), model.predict(x[test]).to_numpy())
    print(f"checkpoint {args.checkpoint}: reloaded model gives identical predictions: {same}")


if __name__ == "__main__":
    main()
