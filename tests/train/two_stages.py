"""configs/demo.py with two stages: the head alone (Adam), then everything (SGD, warmup_cosine).

For the resume test: a SIGKILL in the middle of the second stage must continue its
optimizer state and learning-rate schedule exactly.
"""
from configs import default, demo


def get_config():
  config = demo.get_config()
  config.stages = [
      default.stage(epochs=1, optimizer="adam", lr=1e-2, schedule="constant",
                    freeze=default.HEAD_ONLY),
      default.stage(epochs=2, optimizer="sgd", lr=0.05, schedule="warmup_cosine")]
  return config
