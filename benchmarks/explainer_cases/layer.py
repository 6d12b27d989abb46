"""Benchmark cases: see explainer_cases/__init__.py.

Layer attributions at layer4 against Captum's Layer* classes (the rule of both: Gauss–Legendre,
Captum's default; --steps nodes; --chunk rows per pass, Captum's internal_batch_size), the
NoiseTunnel kinds SmoothGrad² and VarGrad (as the smoothgrad case), and the neuron targets
(a whole layer4 channel) against NeuronGradient and NeuronIntegratedGradients.
Above ResNet-50's layer4 lie only the global average pool and the linear classifier, so ∂S/∂A
there is a constant: under jit XLA drops the whole network from internal_influence (and all
but the activations it needs from the others), while Captum runs forward and backward.
"""
from explainer_cases import Case

_NEURON_CHANNEL = 0


def _layer_cases(bench, captum_attr, E):
  args, reference = bench.args, bench.reference
  path = {"steps": args.steps, "chunk": args.chunk}
  peer_path = {"n_steps": args.steps, "internal_batch_size": args.chunk}
  rows = [("layer_gradient_x_activation", "LayerGradientXActivation", {}, {}),
          ("internal_influence", "InternalInfluence", path, peer_path),
          ("layer_conductance", "LayerConductance", path, peer_path),
          ("layer_integrated_gradients", "LayerIntegratedGradients", path, peer_path)]
  return [Case(f"{name} ({args.steps})" if ours else name,
               lambda name=name, ours=ours: bench.ours(getattr(E, name), layer="layer4",
                                                       target=bench.target_jax, **ours),
               lambda peer=peer, theirs=theirs: bench.captum_peer(
                   getattr(captum_attr, peer)(reference, reference.layer4), **theirs),
               f"Captum {peer}")
          for name, peer, ours, theirs in rows]


def _smoothgrad_kind_cases(bench, captum_attr, E):
  args = bench.args
  kinds = [("sq", "smoothgrad_sq"), ("var", "vargrad")]
  return [Case(f"smoothgrad ({kind}, {args.samples})",
               lambda kind=kind: bench.ours(E.smoothgrad, target=bench.target_jax,
                                            samples=args.samples, stdev=0.15, kind=kind,
                                            chunk=args.chunk),
               lambda nt_type=nt_type: bench.captum_peer(
                   captum_attr.NoiseTunnel(captum_attr.Saliency(bench.reference)),
                   nt_type=nt_type, nt_samples=args.samples, stdevs=0.15,
                   nt_samples_batch_size=max(1, args.chunk // args.batch), abs=False),
               f"Captum NoiseTunnel(Saliency) {nt_type}") for kind, nt_type in kinds]


def _neuron_peer(bench, attribution, **kwargs):
  def run():
    attribution.attribute(bench.x_torch.clone(), neuron_selector=lambda out: out[
        :, _NEURON_CHANNEL].sum((1, 2)), **kwargs)
    bench.torch_sync()
  return run


def _neuron_cases(bench, captum_attr, E):
  args, reference = bench.args, bench.reference
  target = E.neuron("layer4", _NEURON_CHANNEL)
  return [
      Case("gradient (neuron)", lambda: bench.ours(E.gradient, target=target),
           lambda: _neuron_peer(bench, captum_attr.NeuronGradient(reference, reference.layer4)),
           "Captum NeuronGradient"),
      Case(f"integrated_gradients (neuron, {args.steps})",
           lambda: bench.ours(E.integrated_gradients, target=target, steps=args.steps,
                              method="gausslegendre", chunk=args.chunk),
           lambda: _neuron_peer(bench, captum_attr.NeuronIntegratedGradients(
               reference, reference.layer4), n_steps=args.steps, method="gausslegendre",
                                internal_batch_size=args.chunk),
           "Captum NeuronIntegratedGradients")]


def cases(bench):
  # pylint: disable=import-outside-toplevel
  from captum import attr as captum_attr
  import cnnviz_jax as cj
  # pylint: enable=import-outside-toplevel
  E = cj.explain
  return (_layer_cases(bench, captum_attr, E) + _smoothgrad_kind_cases(bench, captum_attr, E)
          + _neuron_cases(bench, captum_attr, E))
