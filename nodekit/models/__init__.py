"""Models of the book: ODE blocks, fields and classifiers built on nodekit's solvers."""

from .classifiers import ODENet, count_parameters, small_mnist_odenet
from .fields import ConcatConv2d, ConvField, MLPField, group_norm
from .ode_block import ODEBlock, forward_nfe, ode_blocks

__all__ = [
    "ConcatConv2d",
    "ConvField",
    "MLPField",
    "ODEBlock",
    "ODENet",
    "count_parameters",
    "forward_nfe",
    "group_norm",
    "ode_blocks",
    "small_mnist_odenet",
]
