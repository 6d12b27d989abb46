"""Layer-wise relevance propagation with Captum 0.9's rules.

Bach et al., "On Pixel-Wise Explanations for Non-Linear Classifier Decisions by Layer-Wise
Relevance Propagation", PLOS ONE 2015, doi:10.1371/journal.pone.0130140; the rules of
Montavon et al., "Layer-Wise Relevance Propagation: An Overview", in Explainable AI (Springer
LNCS 11700), 2019. Captum's LRP: the target's score is the relevance at the output; each conv,
dense and BatchNorm layer redistributes it with its rule (ε by default), activations and
dropout pass it unchanged. Ours is the backward pass of `guided.swap(model, relevance_act)`
under the layer interceptor of lrp_rules.py (how the rules become custom VJPs is there).

Max-pools (the model's `max_pool`, swapped) take Captum's default ε rule (1e-9). Average
pools, reshapes and additions are not modules here and propagate by their gradient:
  - average pools (ResNet's global average, VGG's adaptive 7×7) and reshapes: the ε rule with
    ε → 0, where Captum's default for its pooling modules has ε = 1e-9 (a difference of
    1e-9 / |z| relative to a unit's relevance);
  - ResNet's residual additions `x + y` (and EfficientNet's): the gradient passes them to both
    branches, i.e. the ε rule with ε → 0 on the addition, which splits the relevance in
    proportion to x and y: Captum's `Addition_Module`, which its documentation asks for in
    place of every addition. Captum on torchvision's ResNet as shipped (`out += identity`, no
    module) instead adds the sum's relevance to the block input's gradient and multiplies it
    by the input again, mixing relevance with gradient: its attributions do not sum to the
    score (tests/explain/test_lrp.py measures it), and we do not reproduce that.
Conservation (ε rule): each layer z = Wa + b keeps Σ_i R_i = Σ_j R_j · (z_j − b_j) /
(z_j + ε·sign z_j): biases and ε absorb relevance, so Σ relevance = S(x) exactly only for a
network without biases as ε → 0 (e.g. ReLU nets: then LRP-ε equals gradient × input).
"""
from typing import Any, Callable

import flax.linen as nn
import jax

from cnnviz_jax.explain import targets
from cnnviz_jax.explain.guided import swap
from cnnviz_jax.explain.lrp_rules import (Rule, interceptor, relevance_act,
                                          relevance_max_pool)


def _rule_of(rule: str | Callable[[str], str], epsilon: float, gamma: float,
             zero_bias: bool) -> Callable[[str, nn.Module], Rule]:
  def make(name: str) -> Rule:
    return Rule(name, epsilon, gamma, zero_bias)

  if callable(rule):
    return lambda path, module: make(rule(path))
  chosen, plain = make(rule), make("epsilon")  # the name is checked now
  return lambda path, module: plain if isinstance(module, nn.BatchNorm) else chosen


def lrp(model: nn.Module, variables, x: jax.Array, target: Any = None, *,
        rule: str | Callable[[str], str] = "epsilon", epsilon: float = 1e-9,
        gamma: float = 0.25, zero_bias: bool = False) -> jax.Array:
  """Relevance of each input value: (B, H, W, C), or (B, K, H, W, C) for several targets.

  rule: 'epsilon' (Captum's default everywhere), 'gamma' or 'alpha1_beta0' for every conv
  and dense layer, BatchNorm keeping ε (Captum's default for it; α1β0 "does not work for
  BatchNorm"); or a function of each layer's path ('layer1/block0/conv1') to a rule name,
  for composite LRP (e.g. γ low, ε in the middle). epsilon: the ε rule's stabilizer; gamma:
  the γ rule's; zero_bias: the γ and α1β0 rules drop the bias (Captum's set_bias_to_zero).
  Targets: every form of targets.py (a `neuron(layer, channel)`: the unit's relevance).
  """
  forward, target = targets.scores_fn(swap(model, relevance_act, relevance_max_pool),
                                      variables, target)
  intercept = interceptor(_rule_of(rule, epsilon, gamma, zero_bias))

  def ruled(z):
    with nn.intercept_methods(intercept):
      return forward(z)

  outputs, pull = jax.vjp(ruled, x)
  resolved = targets.resolve(target, outputs)
  relevance = targets.pull_targets(pull, outputs, resolved) * x[:, None]
  return relevance if resolved.multi else relevance[:, 0]
