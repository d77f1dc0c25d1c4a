"""Training and evaluation of txguard models (scikit-learn, exported to ONNX for serving).

Never imported by the serving path. The local registry lives in models/registry/ (git-ignored).
"""
