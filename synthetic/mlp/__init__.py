"""The small-MLP task: a pretrained teacher network, a shifted target, adapters trained by Adam.

- ``task``: ``MLPTask``, the networks and the data (inputs, labels, the target's shift);
- ``backprop``, ``kernel``, ``train``: batched training of many trials at once (a fused C
  kernel where it is available, PyTorch otherwise);
- ``engine``: Monte Carlo over training sets (``mlp_trial_losses``);
- ``geometry``: the input covariance Σ and output metric G of a layer inside the network, and the
  prediction of which factor to train (docs/THEORY.md §1b);
- ``advantage``: the measured advantage of ``b_only`` over ``a_only``;
- ``similarity``: CCA similarity of learned factors across tasks and inits (Section 3 of the paper);
- ``learners``: training from a shared init, and the supersample experiment of the CMI bounds.
"""

from synthetic.mlp.advantage import AdvantageMeasurement, measure_advantage
from synthetic.mlp.engine import mlp_trial_losses
from synthetic.mlp.geometry import AsymmetryPrediction, layer_geometry, predict_asymmetry
from synthetic.mlp.learners import mlp_fit, mlp_supersample
from synthetic.mlp.similarity import similarity_grid
from synthetic.mlp.task import MLPTask

__all__ = [
    "AdvantageMeasurement",
    "AsymmetryPrediction",
    "MLPTask",
    "layer_geometry",
    "measure_advantage",
    "mlp_fit",
    "mlp_supersample",
    "mlp_trial_losses",
    "predict_asymmetry",
    "similarity_grid",
]
