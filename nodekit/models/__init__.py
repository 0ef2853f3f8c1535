"""Models of the book: ODE blocks, fields and classifiers built on nodekit's solvers."""

from .augmented import AugmentedConvField, AugmentedODE, conv_anode, mlp_anode
from .classifiers import ODENet, count_parameters, small_mnist_odenet
from .cnf import CNF, ConcatTimeMLP
from .fields import ConcatConv2d, ConvField, MLPField, group_norm
from .ode_block import ODEBlock, forward_nfe, ode_blocks

__all__ = [
    "AugmentedConvField",
    "AugmentedODE",
    "CNF",
    "ConcatConv2d",
    "ConcatTimeMLP",
    "ConvField",
    "MLPField",
    "ODEBlock",
    "ODENet",
    "conv_anode",
    "count_parameters",
    "forward_nfe",
    "group_norm",
    "mlp_anode",
    "ode_blocks",
    "small_mnist_odenet",
]
