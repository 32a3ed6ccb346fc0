"""Quantization-aware training: fine-tune the trained model with fake-quant ops, then int8.

``tfmot.quantization.keras.quantize_model`` wraps every layer with quantize/dequantize
emulation; a short fine-tune at a low learning rate on the train split (validation
monitored) lets the weights adapt to int8 rounding. The result is converted exactly like
post-training int8, so both artifacts share one contract and one runtime path.
"""

from __future__ import annotations

from herbi.export.errors import ExportError
from herbi.export.to_tflite import convert, int8_converter

BATCH_SIZE = 64


def quantization_aware(model, train, val, epochs: int, learning_rate: float):
    """The QAT-fine-tuned copy of ``model`` (the original is left untouched)."""
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    try:
        q_model = tfmot.quantization.keras.quantize_model(model)
    except (ValueError, RuntimeError, TypeError) as e:
        raise ExportError(f"tflite-qat-int8: tfmot cannot quantize this model ({e})") from None
    q_model.compile(
        keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy", ["accuracy"]
    )
    (x_tr, y_tr), (x_val, y_val) = train, val
    # Validation is monitored so an epoch that hurts is rolled back, not shipped.
    keep_best = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=epochs, restore_best_weights=True
    )
    q_model.fit(
        x_tr / 255.0,
        y_tr,
        validation_data=(x_val / 255.0, y_val),
        batch_size=BATCH_SIZE,
        epochs=epochs,
        callbacks=[keep_best],
        verbose=0,
    )
    return q_model


def build_qat_int8(inputs) -> bytes:
    q_model = quantization_aware(
        inputs.model, inputs.train, inputs.val, inputs.qat_epochs, inputs.qat_learning_rate
    )
    return convert(int8_converter(q_model, inputs.calibration), "tflite-qat-int8")
