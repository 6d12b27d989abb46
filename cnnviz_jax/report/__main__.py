r"""Reports and explanations from the command line.

  # the report of a training workdir (finished or partial) -> W/report.html
  python -m cnnviz_jax.report --workdir W [--quick] [--report_methods=layer_conductance,lime]
  # explain your own images with a trained workdir or converted ImageNet weights
  python -m cnnviz_jax.report --weights weights/resnet50 --images a.jpg b.png \
      --methods grad_cam,guided_backprop --output OUT
Writes OUT/<image>_<method>.png (each at the image's own size) and OUT/report.html.
Methods: every name of report/images.py METHODS (an unknown name prints them): the CAMs,
the gradient, rule-based, perturbation and layer attributions of cnnviz_jax.explain.
"""
from absl import app, flags

from cnnviz_jax import console, errors

flags.DEFINE_string("workdir", None, "A training workdir (python -m cnnviz_jax.main).")
flags.DEFINE_string("weights", None, "Converted ImageNet weights (cnnviz_jax.weights.convert).")
flags.DEFINE_list("images", [], "Image files to explain (also: any further arguments).")
flags.DEFINE_list("methods", ["grad_cam", "guided_backprop", "guided_grad_cam"],
                  "Explainers for --images, comma-separated.")
flags.DEFINE_string("output", None, "--images: output directory (default explanations/); "
                    "workdir report: the HTML file (default W/report.html).")
flags.DEFINE_string("layer", None, "Layer for CAMs (default: the last spatial layer).")
flags.DEFINE_integer("target", None, "Class index to explain (default: each image's top-1).")
flags.DEFINE_list("feature_layers", [], "Workdir report: layers whose feature maps are shown "
                  "(default: the first, a middle and the last spatial layer).")
flags.DEFINE_integer("num_images", 8, "Workdir report: test images explained.")
flags.DEFINE_list("report_methods", [], "Workdir report: more explainers (names as --methods) "
                  "drawn in one figure of its looks section.")
flags.DEFINE_bool("quick", False, "Workdir report: skip patches, activation maximization and "
                  "the faithfulness checks (the costly parts on a CPU).")
FLAGS = flags.FLAGS


def main(argv):
  console.configure(FLAGS.verbosity)  # before TensorFlow loads
  with errors.exit_on_user_error(FLAGS.verbosity):
    _run(argv)


def _run(argv):
  from cnnviz_jax.report import build, images  # pylint: disable=import-outside-toplevel
  paths = list(FLAGS.images) + list(argv[1:])
  if argv[1:] and not FLAGS.images:
    raise errors.UserInputError(f"unexpected arguments {argv[1:]}; images go after --images")
  if paths and bool(FLAGS.workdir) == bool(FLAGS.weights):
    raise errors.UserInputError("--images needs exactly one of --workdir W / --weights DIR")
  if not paths and (not FLAGS.workdir or FLAGS.weights):
    raise errors.UserInputError("give --workdir W (writes its report), or --images a.jpg … "
                                "with --workdir W or --weights DIR")
  if not paths:
    build.print_workdir_report(FLAGS.workdir, FLAGS.output, num_images=FLAGS.num_images,
                               cam_layer=FLAGS.layer, quick=FLAGS.quick,
                               feature_layers=FLAGS.feature_layers or None,
                               methods=FLAGS.report_methods)
    return
  images.check_methods(FLAGS.methods)
  for path in paths:  # fail on a bad file before loading any model
    images.read_image(path)
  who = images.explainee(FLAGS.workdir, FLAGS.weights)
  output = images.explain_images(who, paths, FLAGS.methods, FLAGS.output or "explanations",
                                 FLAGS.layer, FLAGS.target)
  print(f"report: {output}")


if __name__ == "__main__":
  app.run(main, flags_parser=errors.parse_flags)
