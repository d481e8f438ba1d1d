"""Deploying a trained ASR experiment: ONNX export (onnx_export) and an ONNX decoder without PyTorch or ESPnet
(onnx_runtime). Nothing is imported here, so that the runtime loads without torch."""
