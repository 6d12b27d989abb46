r"""Right for the right reasons (Ross et al. 2017) on the decoy shapes.

Run:   python -m cnnviz_jax.main --config configs/right_reasons.py:plain \
           --workdir workdir/right_reasons/plain
       every variant side by side (each run's report has the in-mask Grad-CAM mass):
       python -m experiments.right_reasons --workdir workdir/right_reasons --report
       the λ sweep (each penalized variant × region × λ; the table below):
       python -m experiments.right_reasons --workdir workdir/rr_sweep \
           --weights 1e3,1e4,100,1e5,10,1,1e-1,1e-2,1e-3 --regions annotated \
           --grid variant=plain,decoy_free,input_gradient
Variants (after ':'; the first is the default):
  plain                 the demo CNN on the decoy shapes, cross-entropy only
  input_gradient        + λ Σ (A ∂/∂x Σ_k log p_k)², Ross et al.'s term, A = the patch
                        (region 'annotated', as Ross et al.'s annotation), λ = 1e3 (the
                        sweep's best test accuracy)
  grad_cam              + λ (1 − Grad-CAM mass in the mask at block4_conv1, 8×8)², λ = 1
  integrated_gradients  + λ (share of the integrated-gradients energy outside the mask)²,
                        the label's logit, one random point of the path per step, λ = 1
  decoy_free            plain training on the same images without the patch (the reference)
Data:  configs/demo.py's shapes (5 classes, 32 px, 6,000 / 1,000 / 1,000) with decoy=4: a
       4×4 patch in a random corner, colored by the class in train and validation, by a
       random class in test (cnnviz_jax/data/shapes_decoy.py). The object masks are the
       "right reasons"; the patch is the ignore mask (region 'annotated').
Measured, the λ sweep with region 'annotated' (experiments/right_reasons.py; one run each,
seed 0, 10 epochs, 2 shared CPU cores; test_no_patch: test accuracy on the decoy-free twin;
Grad-CAM of the predicted class at block4_conv1 and its mass in the object mask, a uniform
map 14.8%; gradient in patch: the share of the predicted logit's input-gradient energy on
the patch, 1.6% of the pixels; all on the 1,000 decoy test images):
  variant / λ           val     test    test_no_patch  Grad-CAM in mask  gradient in patch
  plain                 100.0%  19.0%   23.9%           4.9%             31.1%
  decoy_free            98.8%   98.7%   98.7%          35.9%              0.5%
  input_gradient 1e-1   100.0%  19.1%   20.2%           5.5%             42.0%
                 1      100.0%  19.0%   20.2%           4.9%             50.7%
                 10     100.0%  19.2%   32.6%           4.2%             40.9%
                 100    98.4%   29.9%   42.2%          13.7%             25.7%
                 1e3    92.9%   32.0%   44.4%          12.0%             16.6%
                 1e4    68.0%   26.2%   26.3%          17.1%              2.9%
                 1e5    31.4%   21.7%   21.6%          19.7%              1.1%
  (λ 1e-2: val 99.9%, test 19.1%, finished after the table; λ 1e-3 not run: time.)
Region 'outside_object' (1 − object mask), earlier runs: λ 1e-3 test 19.0%, 1e-2 19.0%
(val 99.9%); issue 32's: λ 10 train 99.3% val 99.6% test 19.1%, λ 1e3 train 43.1% val
40.3% test 20.1%. Other variants (region 'outside_object', earlier runs):
  grad_cam              100.0%  20.9%   38.1%          62.0%   (λ 10: val 47.9%)
  integrated_gradients  100.0%  19.3%   22.4%           8.8%
Expect: plain falls for the decoy (test at chance, 1/5); no penalty fixes it here — the goal
of test accuracy within 5 points of decoy_free is NOT met: the annotated region, Ross et
al.'s setting, lifts test accuracy to 30-32% at λ 100-1e3 (the shape is half learnt: 42-44%
without any patch), and above that nothing is learnt. Yet the same term recovers the decoy
digits (configs/decoy_digits.py). The last column points at why: the penalty acts on the
gradient of Σ_k log p_k on the patch, yet the predicted class's own logit keeps 17-26% of
its gradient energy on 1.6% of the pixels. With p_top ≈ 1 that gradient is Σ_k ∇z_k −
K ∇z_top: it vanishes whenever ∇z_top is the mean of the ∇z_k, which leaves each logit
free to depend on the patch (our reading, not proven). Penalizing the label's or the
predicted logit's gradient (target='label' | 'predicted') would close that; not swept. Each
penalty does what it is told (Grad-CAM at its layer moves onto the object: 4.9% -> 62.0%),
and the network keeps the shortcut out of the penalized explanation's sight: it hides it in
Grad-CAM's channel-averaged weights (grad_cam at block2_conv1: 60% in the mask there, test
19.1%) or in negative evidence (layer_cam at block2_conv1: test 19.1%), or makes it
scale-invariant along integrated gradients' path. Other settings tried, all with test
19.0-19.3%: input gradient of the label's logit with normalize=True (region
'outside_object'); a fixed 4-node quadrature for integrated gradients. Step cost:
benchmarks/explanation_loss.py.
"""
import ml_collections

from configs import default

VARIANTS = ("plain", "input_gradient", "grad_cam", "integrated_gradients", "decoy_free")
PENALTIES = {
    "input_gradient": dict(kind="input_gradient", weight=1e3, target="log_prob_sum",
                           region="annotated"),
    "grad_cam": dict(kind="grad_cam", weight=1.0, layer="block4_conv1", target="label"),
    "integrated_gradients": dict(kind="integrated_gradients", weight=1.0, target="label",
                                 normalize=True),
}


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  variant = default.variant_of(VARIANTS, variant, "right_reasons")
  config = default.get_config()
  config.model.options.filters = (16, 32, 64, 96)  # configs/demo.py's network and training
  config.stages = [default.stage(epochs=10, optimizer="adamw", lr=3e-3)]
  config.data.shapes.decoy = 0 if variant == "decoy_free" else 4
  if variant in PENALTIES:
    config.explanation_loss.update(PENALTIES[variant])
  return config
