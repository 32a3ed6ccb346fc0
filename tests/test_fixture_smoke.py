import numpy as np


def test_tiny_run_learns_something(tiny_run):
    import tf_keras as keras

    from herbi.train.manifest import run_dataset

    ds = run_dataset(tiny_run)
    model = keras.models.load_model(tiny_run / "model.keras")
    pred = model.predict(ds.x_val / 255.0, verbose=0).argmax(1)
    assert len(np.unique(pred)) >= 3
    assert (pred == ds.y_val).mean() > 0.3
