r"""Seed 002: Oxford Flowers-102 with a torchvision ResNet50 and an MLP head, in two stages.

Run:   python -m cnnviz_jax.main --config configs/seed_002_flowers102.py \
           --workdir workdir/seed_002_flowers102 --config.weights=weights/resnet50
Variants: only 'resnet50_mlp' (the default).
Data:  tfds 'oxford_flowers102' with its official splits: 1,020 train, 1,020 validation,
       6,149 test images (downloaded by tfds on the first run, or `tfds build
       oxford_flowers102` once and --config.data.data_dir=DIR). 224 px; evaluation resizes
       the shorter side to 256 and center-crops 224; ImageNet mean/std ('torch').
       Training augmentation (data.config.TORCHVISION_SEED_002): RandomResizedCrop,
       horizontal and vertical flips, rotation (the seed gives no angle: 30°).
Model: 'resnet50' (torchvision layout) + head 'mlp': 2048 -> 512, ReLU, BatchNorm,
       dropout 0.5 -> 102 classes.
Weights: without --config.weights the backbone is randomly initialized and this is NOT the
       seed's transfer learning; convert torchvision's ImageNet file once (the URL is
       torchvision.models.ResNet50_Weights.IMAGENET1K_V1.url):
         python -m cnnviz_jax.weights.convert --source torchvision --arch resnet50 \
             --input resnet50-0676ba61.pth --output weights/resnet50
       The converted meta then sets image size, eval resize and normalization.
Train: stage 1, 30 epochs: Adam 0.01 on the head only (backbone parameters frozen; its
       BatchNorm statistics still update, as a requires_grad=False backbone in PyTorch's
       train mode does). Stage 2, 120 epochs: everything, RAdam with the triangular
       cyclical LR between 5e-8 and 3e-3 (the seed's base LR 3e-4 is what CyclicLR
       overrides); the seed gives no cycle length: 4 epochs up, 4 down (Smith 2017 advises
       2-10 epochs). Batch 32 (not given in the seed). The best validation epoch is kept.
Expect: the seed's test accuracy 85.1% after stage 1 and 89.3% after stage 2 (validation
       87.3% and 91.1%).
Smoke run (tests/configs: tfds mock data, 64 px, batch 2, one 3-step epoch per stage): 63 s
on 2 CPU cores shared with other jobs (load ~4), most of it compiling ResNet50 three times
(initialization and the two stages' train steps).
"""
import ml_collections

from cnnviz_jax.data import config as data_config
from configs import default

VARIANTS = ("resnet50_mlp",)


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  variant = default.variant_of(VARIANTS, variant, "seed 002")
  config = default.get_config()
  config.data.name = "oxford_flowers102"
  config.data.image_size = 224
  config.data.resize_size = 256
  config.data.normalization = "torch"
  config.data.augment = ml_collections.ConfigDict(data_config.TORCHVISION_SEED_002)
  config.data.batch_size = 32
  config.model.name = "resnet50"
  config.model.head = "mlp"
  head_stage = default.stage(epochs=30, optimizer="adam", lr=0.01, schedule="constant",
                             freeze=default.HEAD_ONLY)
  fine_tune = default.stage(epochs=120, optimizer="radam", lr=3e-4, schedule="cyclic")
  fine_tune.schedule.update(min_lr=5e-8, max_lr=3e-3, step_size_epochs=4.0)
  config.stages = [head_stage, fine_tune]
  return config
