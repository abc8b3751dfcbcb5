"""rnnkit.export: portable graphs of trained runs (ONNX, torch.export) with parity checks, and an
onnxruntime predictor that needs numpy alone. Importing this package imports no torch."""
