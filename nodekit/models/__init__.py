"""Models built on nodekit's solvers: the ODE block, classifiers, CNFs, augmented ODEs and neural SDEs.

Vector fields live in :mod:`nodekit.fields`.
"""

from .averaging import MeanPrediction, mean_prediction
from .augmented import AugmentedODE, conv_anode, mlp_anode, readout_axes
from .classifiers import (
    MNIST_MODELS,
    ODENet,
    ResBlock,
    TisODENet,
    conv_odenet,
    count_parameters,
    mnist_model,
    mnist_odenet,
    mnist_resnet,
    mnist_rknet,
    small_mnist_odenet,
    tisode,
    yan_cnn,
    yan_odenet,
)
from .cnf import CNF
from .modes import eval_mode
from .ode_block import ODEBlock, at_end_time, backward_nfe, forward_nfe, ode_blocks, with_solver
from .sde import DropoutDiffusion, MultiplicativeNoise, SDEBlock, reseed, sde_blocks

__all__ = [
    "AugmentedODE",
    "CNF",
    "DropoutDiffusion",
    "MeanPrediction",
    "MultiplicativeNoise",
    "MNIST_MODELS",
    "ODEBlock",
    "ODENet",
    "ResBlock",
    "SDEBlock",
    "TisODENet",
    "at_end_time",
    "backward_nfe",
    "conv_anode",
    "conv_odenet",
    "count_parameters",
    "eval_mode",
    "forward_nfe",
    "mean_prediction",
    "mlp_anode",
    "mnist_model",
    "mnist_odenet",
    "mnist_resnet",
    "mnist_rknet",
    "ode_blocks",
    "readout_axes",
    "reseed",
    "sde_blocks",
    "small_mnist_odenet",
    "tisode",
    "with_solver",
    "yan_cnn",
    "yan_odenet",
]
